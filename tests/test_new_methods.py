"""UCMFH, CIRH and DAEH: each loss term against a NumPy hand computation written from the released
code's formulas, the fusion / graph networks' shapes, steps that lower the loss, DAEH's end-to-end
mode (save -> load -> same codes); fit / encode / save / resume are in test_contract.py."""

import numpy as np
import pytest
import torch

from crossmodal.data import PairedData
from crossmodal.methods import get_method, load_hasher
from crossmodal.methods.cirh import GraphNet, cirh_similarity, neighbour_mix
from crossmodal.methods.daeh import daeh_similarity, gaussian_thresholds, mutual_information, pair_terms
from crossmodal.methods.ucmfh import nt_xent

BITS = 16


def _norm(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _cos(a, b=None):
    return _norm(a) @ _norm(a if b is None else b).T


def _t(a):
    return torch.tensor(a, dtype=torch.float64)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(1)
    n, c = 160, 4
    labels = np.eye(c, dtype=np.uint8)[rng.integers(0, c, n)]
    z = labels + 0.3 * rng.standard_normal((n, c))
    image = (z @ rng.standard_normal((c, 20)) + 0.3 * rng.standard_normal((n, 20))).astype(np.float32)
    text = np.abs(z @ rng.standard_normal((c, 12)) + 0.3 * rng.standard_normal((n, 12))).astype(np.float32)
    return PairedData(image=image, text=text, labels=labels)


SMALL = {
    "ucmfh": dict(hidden=[32], epochs=1, batch_size=32, fusion_ff=32, progress=False),
    "cirh": dict(hidden=[32], epochs=1, batch_size=64, progress=False),
    "daeh": dict(hidden=[32], epochs=1, batch_size=18, progress=False),
}


# ------------------------------------------------------------------ UCMFH


def test_nt_xent_by_hand():
    rng = np.random.default_rng(0)
    a, b, tau = rng.normal(size=(4, 5)), rng.normal(size=(4, 5)), 0.5
    z = _norm(np.vstack([a, b]))
    sim = np.exp(z @ z.T / tau)
    n = len(a)
    want = 0.0
    for i in range(2 * n):
        pos = sim[i, (i + n) % (2 * n)]
        want += -np.log(pos / (sim[i].sum() - sim[i, i]))
    got = float(nt_xent(_t(a), _t(b), tau))
    assert got == pytest.approx(want / (2 * n), rel=1e-9)


def test_ucmfh_tokens_embeddings_and_codes_shapes(pairs):
    h = get_method("ucmfh")(BITS, seed=0, **SMALL["ucmfh"]).fit(pairs)
    width, half = h._width()
    assert width == 32 and half == 16  # 20 + 12 = 32, a multiple of 2 * 4 heads
    xi, xt = torch.as_tensor(pairs.image[:6]), torch.as_tensor(pairs.text[:6])
    tok = h._tokens(xi, None)
    assert tok.shape == (6, 32) and torch.all(tok[:, 20:] == 0) and torch.equal(tok[:, :20], xi)
    for mode in ("single", "paired"):
        h.config["fusion_input"] = mode
        ei, et = h.embeddings(xi, xt)
        assert ei.shape == et.shape == (6, half)
    # per item: an image's code does not depend on the other rows it is encoded with
    full = h.encode_image(pairs.image[:10])
    np.testing.assert_array_equal(full[3:4], h.encode_image(pairs.image[3:4]))


def test_ucmfh_lr_grows_at_the_released_batch_counts(pairs):
    h = get_method("ucmfh")(BITS, seed=0, **{**SMALL["ucmfh"], "lr_growth_steps": [2, 3]})
    h.dims = {"image": 20, "text": 12}
    h._setup(pairs)
    rates = []
    for _ in range(4):
        h._set_rates()
        rates.append(h.opts["image"].param_groups[0]["lr"])
        h.step_count += 1
    assert rates == pytest.approx([1e-3, 1e-3, 1.2e-3, 1.44e-3])
    assert h.opts["fusion"].param_groups[0]["lr"] == pytest.approx(1e-4)
    assert h.opts["fusion"].param_groups[0]["betas"] == (0.5, 0.999)


# ------------------------------------------------------------------ CIRH


def test_cirh_similarity_by_hand():
    rng = np.random.default_rng(2)
    fi, ft = rng.normal(size=(6, 5)), rng.normal(size=(6, 3))
    a1, a2, sparsity = 0.6, 0.6, 0.5
    s1 = a1 * _cos(fi) + (1 - a1) * _cos(ft)
    for row in s1:
        row[np.argsort(row)[:3]] = 0.0  # 0.5 of 6 entries, the smallest
    s2 = 2 / (1 + np.exp(-s1)) - 1 + np.eye(6)
    want = a2 * s1 + (1 - a2) * (s2 + s2.T) / 2
    np.testing.assert_allclose(cirh_similarity(_t(fi), _t(ft), a1, a2, sparsity).numpy(), want, atol=1e-12)


def test_cirh_neighbour_mix_uses_the_third_and_fourth_most_similar_rows():
    s = torch.tensor([[9.0, 1, 2, 3, 8, 7], [1, 9, 8, 7, 2, 3], [1, 2, 9, 3, 4, 8],
                      [1, 2, 3, 9, 8, 7], [1, 2, 3, 8, 9, 7], [1, 2, 3, 8, 7, 9]])
    x = torch.arange(6, dtype=torch.float32)[:, None] * torch.ones(1, 2)
    got = neighbour_mix(x, s)
    # row 0: sorted by similarity 0 (9), 4 (8), 5 (7), 3 (3): 3rd = row 5, 4th = row 3
    assert got[0].tolist() == pytest.approx([0.7 * 0 + 0.2 * 5 + 0.1 * 3] * 2)


def test_cirh_graph_network_shapes():
    net = GraphNet(BITS, 20, 12)
    s = torch.rand(8, 8)
    hi, ht, h, di, dt = net(torch.randn(8, 20), torch.randn(8, 12), (s + s.T) / 2)
    assert hi.shape == ht.shape == h.shape == (8, BITS)
    assert di.shape == (8, 20) and dt.shape == (8, 12)
    assert torch.all(h.abs() <= 1)


def test_cirh_released_hashfunc_similarity_reads_the_block_at_the_batch_position():
    h = get_method("cirh")(BITS, seed=0, **SMALL["cirh"])
    h.S = torch.arange(36, dtype=torch.float32).reshape(6, 6)
    h.config["device"] = "cpu"
    idx = torch.tensor([4, 1])
    assert h.hashfunc_block(idx, 2).tolist() == [[28.0, 25.0], [10.0, 7.0]]
    h.config["hashfunc_similarity"] = "released"
    assert h.hashfunc_block(idx, 2).tolist() == [[14.0, 15.0], [20.0, 21.0]]


# ------------------------------------------------------------------ DAEH


def test_daeh_gaussian_thresholds_by_hand():
    rng = np.random.default_rng(3)
    d = np.clip(rng.normal(0.5, 0.1, size=(30, 30)), 0, 1)
    hist = [np.count_nonzero((d > i * 0.01) & (d < i * 0.01 + 0.01)) for i in range(100)]
    mode = float(np.argmax(hist)) * 0.01
    left, right = d[d <= mode], d[d > mode]
    near = mode - 2 * np.sqrt(np.mean((left - mode) ** 2))
    far = mode + 2 * np.sqrt(np.mean((right - mode) ** 2))
    got = gaussian_thresholds(d, 2.0, 2.0)
    assert got == pytest.approx((near, far), abs=1e-6)


def test_daeh_similarity_decisive_and_blended_pairs():
    fi = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1, 0.01], [0, 1], [-1, 0.1]]), dim=1)
    text = torch.tensor([[1.0, 0], [1.0, 0.5], [0, 9], [0, 1]])
    ft = torch.nn.functional.normalize(text, dim=1)
    c = dict(near_std=0.0, far_std=0.0, text_near=1.0, text_far=5.0, text_share=0.3)
    s = daeh_similarity(fi, ft, text, c)
    assert torch.allclose(s, s.T)
    assert s[0, 2] == -1  # text distance >= 5
    undecided = (s != 1) & (s != -1)
    pair = 2 * (0.3 * ft @ ft.T + 0.7 * fi @ fi.T) - 1
    assert torch.allclose(s[undecided], pair[undecided])


def test_daeh_pair_terms_by_hand():
    rng = np.random.default_rng(4)
    a, b, s = rng.normal(size=(5, 6)), rng.normal(size=(5, 6)), rng.uniform(-1, 1, size=(5, 5))
    ab, off = _cos(a, b), 1 - np.eye(5)
    want = (np.mean((np.diag(ab) - 1.5) ** 2), np.mean((ab * off - s * off) ** 2), np.mean((_cos(a) - _cos(b)) ** 2))
    got = pair_terms(_t(a), _t(b), _t(s))
    assert [float(g) for g in got] == pytest.approx(want, rel=1e-9)


def test_daeh_mutual_information_is_the_released_formula():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-1, 1, size=(6, 6)), np.tanh(rng.normal(size=(6, 4)))

    def kernel(v):  # released guassianMatrix with sigma 1: exp((2G_ij - G_jj) - G_jj) / 2)
        g = v @ v.T
        return np.exp(0.5 * ((2 * g - np.diag(g)[None, :]) - np.diag(g)[None, :]))

    def entropy(k):
        ev = np.linalg.eigvals(k)
        return -np.log(np.sum(np.abs(ev.real) ** 2) + np.sum(np.abs(ev.imag) ** 2))

    kx, ky = kernel(x) / 6, kernel(y) / 6
    want = entropy(kx) + entropy(ky) - entropy(kx * ky * 6)
    assert mutual_information(_t(x), _t(y)) == pytest.approx(want, rel=1e-5)


# ------------------------------------------------------------------ every method: the loss drops


@pytest.mark.parametrize("name", ["ucmfh", "cirh", "daeh"])
def test_training_lowers_the_loss(name, pairs):
    h = get_method(name)(BITS, seed=0, **{**SMALL[name], "epochs": 4, "selection": "last"}).fit(pairs)
    losses = [r["loss"] for r in h.history]
    assert losses[-1] < losses[0], losses


def test_daeh_end_to_end_save_load_same_codes(tmp_path):
    rng = np.random.default_rng(6)
    n = 60
    images = rng.random((n, 8 * 8 * 3)).astype(np.float32)
    text = rng.random((n, 10)).astype(np.float32)
    data = PairedData(image=images, text=text)
    cfg = dict(mode="end2end", image_shape=[3, 8, 8], image_layout="hwc", backbone="tiny", hidden=[16],
               epochs=2, batch_size=18, progress=False, selection="last")
    h = get_method("daeh")(BITS, seed=0, **cfg).fit(data)
    assert "frozen" in h.towers and not any(p.requires_grad for p in h.towers["frozen"].parameters())
    before = h.towers["frozen"].inner.backbone.state_dict()
    codes = h.encode_image(images)
    h.save(tmp_path)
    g = load_hasher(tmp_path)
    np.testing.assert_array_equal(codes, g.encode_image(images))
    np.testing.assert_array_equal(h.encode_text(text), g.encode_text(text))
    for k, v in g.towers["frozen"].inner.backbone.state_dict().items():
        assert torch.equal(v, before[k])
    # the teacher's backbone trained, the frozen copy did not
    assert any(not torch.equal(v, before[k]) for k, v in h.towers["image"].backbone.state_dict().items())


def _entry(method, variant, i2t, t2i, seed=0, dataset="toy"):
    figs = {"i2t": {"mAP@all": i2t, "mAP@100": i2t}, "t2i": {"mAP@all": t2i, "mAP@100": t2i}}
    return {"method": method, "dataset": dataset, "bits": 32, "seed": seed, "variant": variant,
            "figures": {"per-modality": figs}}


def test_released_code_table_compares_like_for_like_and_runs_against_lsh(tmp_path, monkeypatch):
    """benchmarks/official/new_methods_table.py: UCMFH's gap is port-paired - official-permodality
    (not port - official), CIRH's port-released - official; the runs table subtracts LSH of the same
    seed; the three files are written."""
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks" / "official"))
    sys.modules.pop("new_methods_table", None)
    from new_methods_table import write_table

    data = {"about": {}, "entries": [
        _entry("ucmfh", "official", 0.9, 0.9), _entry("ucmfh", "port", 0.5, 0.5),
        _entry("ucmfh", "official-permodality", 0.30, 0.30), _entry("ucmfh", "port-paired", 0.32, 0.305),
        _entry("cirh", "official", 0.20, 0.20), _entry("cirh", "port", 0.90, 0.90),
        _entry("cirh", "port-released", 0.20, 0.25),
        _entry("lsh", "run:lsh", 0.20, 0.19), _entry("daeh", "run:daeh", 0.43, 0.44)]}
    write_table(data, tmp_path / "t.md")
    text = (tmp_path / "t.md").read_text(encoding="utf-8")
    assert "- toy ucmfh 32 bits I→T, port-paired − official-permodality: +0.0200" in text
    assert "T→I, port-paired" not in text  # +0.005 is under the 0.01 gap
    assert "- toy cirh 32 bits T→I, port-released − official: +0.0500" in text
    assert "I→T, port-released" not in text
    assert "cirh" not in (tmp_path / "t_ucmfh.md").read_text(encoding="utf-8")
    runs = (tmp_path / "t_runs.md").read_text(encoding="utf-8")
    assert "| toy | daeh | 32 | 0 | 0.4300 | 0.4400 | +0.2300 | +0.2500 |" in runs
