"""CCA-ITQ and LSH: retrieval above chance, the ITQ rotation, config errors.
(Shapes, seeds, persistence and bad input: test_contract.py.)"""

import numpy as np
import pytest

from crossmodal.data import get_dataset
from crossmodal.errors import ConfigError, DataError
from crossmodal.methods import get_method
from crossmodal.retrieval.evaluate import evaluate


def _fit_eval(ds, method, bits, **cfg):
    h = get_method(method)(bits, seed=0, **cfg).fit(ds.part("train"))
    return h, evaluate(h, ds)


def test_cca_itq_beats_lsh_on_toy(toy_small):
    _, lsh = _fit_eval(toy_small, "lsh", 16)
    _, cca = _fit_eval(toy_small, "cca-itq", 16)
    for d in ("i2t", "t2i"):
        assert cca.results[d]["mAP@all"] > lsh.results[d]["mAP@all"] + 0.1


@pytest.mark.parametrize("bits", [16, 64])
def test_cca_itq_beats_lsh_on_wiki(wiki_dir, bits):
    ds = get_dataset("wiki", root=wiki_dir)
    _, lsh = _fit_eval(ds, "lsh", bits)
    _, cca = _fit_eval(ds, "cca-itq", bits)
    for d in ("i2t", "t2i"):
        assert cca.results[d]["mAP@all"] > lsh.results[d]["mAP@all"] + 0.05


def test_itq_rotation_is_orthogonal_and_lowers_quantisation_error(rng):
    from crossmodal.methods.baselines import itq_rotation

    V = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8))
    R = itq_rotation(V, 50, rng=0)
    assert np.allclose(R @ R.T, np.eye(8), atol=1e-8)
    err = lambda M: np.linalg.norm(np.where(M >= 0, 1, -1) - M)
    assert err(V @ R) < err(V @ itq_rotation(V, 0, rng=0))


def test_config_errors():
    with pytest.raises(ConfigError, match="did you mean 'reg'"):
        get_method("cca-itq")(16, regg=0.1)
    with pytest.raises(ConfigError, match="not a valid int"):
        get_method("cca-itq")(16, itq_iters="many")
    with pytest.raises(ConfigError, match="unknown method"):
        get_method("ccaitq-x")
    with pytest.raises(DataError, match="bits must be"):
        get_method("lsh")(0)
