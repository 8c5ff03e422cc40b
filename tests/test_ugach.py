import numpy as np
import pytest
import torch
from scipy import stats

from crossmodal.errors import ConfigError
from crossmodal.methods import get_method, load_hasher
from crossmodal.methods.ugach import UGACH, sample_from_scores
from crossmodal.runs import validation_set

TINY = dict(hidden=32, pretrain_epochs=1, epochs=2, batch_size=64, optimizer="adam", lr_d=1e-3, lr_g=1e-3,
            weight_decay=1e-4, standardize="zscore", init_std=0.0, progress=False, pool_fraction=0.05)


def _fit(ds, bits=16, seed=0, ckdir=None, tracker=None, **cfg):
    h = UGACH(bits, seed=seed, **{**TINY, **cfg})
    h.checkpoint_dir = ckdir
    return h.fit(ds.part("train"), valid=validation_set(ds), tracker=tracker)


def test_d_step_lowers_its_loss_on_a_fixed_batch(rng):
    h = UGACH(16, seed=0, hidden=32, optimizer="sgd", lr_d=2.0, weight_decay=0.0, init_std=0.0, progress=False)
    h.dims = {"image": 6, "text": 4}
    h._build()
    h.X = {"image": torch.as_tensor(rng.standard_normal((40, 6)), dtype=torch.float32),
           "text": torch.as_tensor(rng.standard_normal((40, 4)), dtype=torch.float32)}
    opt = h._optim(h.D, 2.0)
    q, pos, neg = torch.arange(20), torch.arange(20), torch.arange(20, 40)
    losses = []
    for _ in range(30):
        loss = h._hinge(h.D, "image", q, pos, neg).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_generator_sampling_follows_its_softmax():
    scores = torch.tensor([[0.0, -1.0, -2.0, 1.0, -0.5, -4.0]])
    gen = torch.Generator().manual_seed(0)
    draws = sample_from_scores(scores.expand(4000, -1), 5, gen).reshape(-1)
    counts = np.bincount(draws.numpy(), minlength=6)
    p = torch.softmax(scores[0].double(), 0).numpy()
    expected = p / p.sum() * draws.numel()
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # and it is not uniform: the chi-square against uniform must reject
    assert stats.chisquare(counts, np.full(6, draws.numel() / 6)).pvalue < 1e-6


def test_ugach_learns_on_toy_and_beats_lsh(toy_small):
    from crossmodal.retrieval.evaluate import evaluate

    h = _fit(toy_small, epochs=3, pretrain_epochs=3)
    lsh = get_method("lsh")(16).fit(toy_small.part("train"))
    ours, base = evaluate(h, toy_small).results, evaluate(lsh, toy_small).results
    for d in ("i2t", "t2i"):
        assert ours[d]["mAP@all"] > base[d]["mAP@all"] + 0.05
    assert [r["epoch"] for r in h.history] == [0, 1, 2, 3]
    assert all("loss_d" in r and "score" in r for r in h.history)


def test_same_seed_same_codes_and_save_load(toy_small, tmp_path):
    a, b = _fit(toy_small, seed=3), _fit(toy_small, seed=3)
    q = toy_small.part("query")
    assert np.array_equal(a.encode_image(q.image), b.encode_image(q.image))
    assert np.array_equal(a.encode_text(q.text), b.encode_text(q.text))
    c = _fit(toy_small, seed=4)
    assert not np.array_equal(a.encode_image(q.image), c.encode_image(q.image))
    a.save(tmp_path / "m")
    back = load_hasher(tmp_path / "m")
    assert np.array_equal(back.encode_image(q.image), a.encode_image(q.image))
    assert np.array_equal(back.encode_text(q.text), a.encode_text(q.text))


class _Killer:
    """A tracker that interrupts training right after epoch ``at`` has been checkpointed."""

    def __init__(self, at):
        self.at = at

    def log(self, rec, step=None):
        if rec.get("epoch") == self.at and "event" not in rec:
            raise KeyboardInterrupt


def test_resume_after_interruption_gives_the_same_codes(toy_small, tmp_path):
    full = _fit(toy_small, epochs=3, ckdir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _fit(toy_small, epochs=3, ckdir=tmp_path / "b", tracker=_Killer(1))
    assert sorted(p.name for p in (tmp_path / "b").iterdir())[-1] == "epoch-0001.pt"
    resumed = _fit(toy_small, epochs=3, ckdir=tmp_path / "b")
    q = toy_small.part("query")
    assert np.array_equal(full.encode_image(q.image), resumed.encode_image(q.image))
    assert np.array_equal(full.encode_text(q.text), resumed.encode_text(q.text))
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3]


def test_resume_refuses_another_config(toy_small, tmp_path):
    _fit(toy_small, epochs=1, ckdir=tmp_path / "c")
    with pytest.raises(ConfigError, match="another config"):
        _fit(toy_small, epochs=2, ckdir=tmp_path / "c", lr_d=5e-4)


def test_codes_from_generator(toy_small):
    h = _fit(toy_small, codes_from="generator", epochs=1)
    q = toy_small.part("query")
    g = h.encode_image(q.image)
    assert g.shape == (q.n, 2)
    h.config["codes_from"] = "discriminator"
    assert not np.array_equal(h.encode_image(q.image), g)


def test_bad_config():
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        UGACH(16, epoch=3)
    with pytest.raises(ConfigError, match="codes_from"):
        UGACH(16, codes_from="both")
    with pytest.raises(ConfigError, match="g_temperature"):
        UGACH(16, g_temperature=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_shapes(toy_small):
    h = _fit(toy_small, device="cuda", amp=True)
    q = toy_small.part("query")
    assert h.encode_image(q.image).shape == (q.n, 2)
    assert next(h.D.parameters()).device.type == "cuda"
