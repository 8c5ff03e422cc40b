"""Deep unsupervised cross-modal baselines (DJSRH, JDSH, DGCPN, UCCH) on the shared base:
each loss against a NumPy reference written from the official code's formulas, steps that
lower the loss, determinism, save/load, resume, and one CLI run per method."""

import json

import numpy as np
import pytest
import torch

from crossmodal.methods import get_method, load_hasher
from crossmodal.methods.dgcpn import coherence, dgcpn_loss, neighbour_graph
from crossmodal.methods.djsrh import djsrh_loss, joint_semantics
from crossmodal.methods.jdsh import dsdw, fit_dsdw, jdsh_loss, joint_modal_similarity
from crossmodal.methods.ucch import contrast_logits, nce_softmax_loss, ranking_loss
from crossmodal.runs import validation_set

METHODS = ("djsrh", "jdsh", "dgcpn", "ucch")
TINY = {
    "djsrh": dict(hidden=[32], hidden_text=[32], epochs=3, batch_size=64, optimizer="adam", lr=1e-3),
    "jdsh": dict(hidden=[32], hidden_text=[32], epochs=3, batch_size=64, optimizer="adam", lr=1e-3),
    "dgcpn": dict(hidden=[32], hidden_text=[32], epochs=3, batch_size=64, optimizer="adam", lr=1e-3,
                  n_neighbours=40, dropout=0.1),
    "ucch": dict(hidden=[32], hidden_text=[32], epochs=3, batch_size=64, lr=1e-3, n_negatives=64),
}


def _norm(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _cos(a, b=None):
    return _norm(a) @ _norm(a if b is None else b).T


def _mse(a, b):
    return float(np.mean((a - b) ** 2))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    B = 5
    return {"fi": rng.random((B, 7)), "ft": rng.random((B, 4)), "hi": np.tanh(rng.normal(size=(B, 6))),
            "ht": np.tanh(rng.normal(size=(B, 6)))}


def _t(*arrays):
    return [torch.tensor(a, dtype=torch.float64) for a in arrays]


# ------------------------------------------------------------------ losses against references


def test_djsrh_target_and_loss_by_hand(batch):
    fi, ft, hi, ht = batch["fi"], batch["ft"], batch["hi"], batch["ht"]
    B = len(fi)
    st = 0.3 * (2 * _cos(fi) - 1) + 0.7 * (2 * _cos(ft) - 1)
    S_ref = 1.5 * (0.6 * st + 0.4 * st @ st / B)  # S~ is symmetric: S~ S~ᵀ = S~ S~
    S = joint_semantics(*_t(fi, ft), beta=0.3, eta=0.4, mu=1.5)
    np.testing.assert_allclose(S.numpy(), S_ref, rtol=1e-10)
    loss, _ = djsrh_loss(*_t(hi, ht), S, 0.1, 0.2)
    ref = 0.1 * _mse(_cos(hi), S_ref) + _mse(_cos(hi, ht), S_ref) + 0.2 * _mse(_cos(ht), S_ref)
    assert float(loss) == pytest.approx(ref, rel=1e-10)


def test_jdsh_similarity_dsdw_and_loss_by_hand(batch):
    fi, ft, hi, ht = batch["fi"], batch["ft"], batch["hi"], batch["ht"]
    si, st = 2 * _cos(fi) - 1, 2 * _cos(ft) - 1
    sh = _norm(si) @ _norm(st).T
    s_ref = 0.5 * si + 0.1 * st + 0.4 * (sh + sh.T) / 2
    s = joint_modal_similarity(*_t(fi, ft), 0.5, 0.1, 0.4)
    np.testing.assert_allclose(s.numpy(), s_ref, rtol=1e-10)
    c = dict(loc_left=0.3, scale_left=0.05, loc_right=0.3, scale_right=0.05, min=-0.2, max=1.0,
             left_sigmas=2.0, right_sigmas=4.0, left_weight=0.1, right_weight=0.2)
    ref = s_ref.copy()
    for i in range(ref.shape[0]):  # the official masked updates, one entry at a time
        for j in range(ref.shape[1]):
            v = s_ref[i, j]
            if v < 0.3 - 2 * 0.05:
                ref[i, j] = (1 + 0.1 * np.exp(-(v + 0.2))) * v
            elif v > 0.3 + 4 * 0.05:
                ref[i, j] = (1 + 0.2 * np.exp(v - 1.0)) * v
    assert (ref != s_ref).any() and (ref == s_ref).any()  # both sides and the middle occur
    out = dsdw(s, c)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    loss, _ = jdsh_loss(*_t(hi, ht), 1.4 * out, 0.1)
    S = 1.4 * ref
    it = _cos(hi, ht)
    want = (0.1 * _mse(_cos(hi), S) + _mse(it, S) + _mse(it.T, S) - np.mean(np.diag(it)) + 0.1 * _mse(_cos(ht), S))
    assert float(loss) == pytest.approx(want, rel=1e-10)


def test_jdsh_fit_dsdw_recovers_a_known_mode_and_scales():
    rng = np.random.default_rng(1)
    left = -np.abs(rng.normal(0, 0.02, 200000))
    right = rng.exponential(0.09, 200000)
    fit = fit_dsdw(np.concatenate([left, right]) - 0.5, bins=400)
    assert fit["loc_left"] == pytest.approx(-0.5, abs=0.01)
    assert fit["scale_left"] == pytest.approx(0.02, abs=0.006)
    assert fit["scale_right"] == pytest.approx(0.09, abs=0.01)


def test_dgcpn_graph_equals_the_official_dense_construction():
    rng = np.random.default_rng(2)
    n, k, a1, scale = 30, 8, 0.2, 3.0
    fi, ft = _norm(rng.random((n, 6))), _norm(rng.random((n, 4)))
    pro = a1 * ft @ ft.T + (1 - a1) * fi @ fi.T  # official cal_similarity
    order = np.argsort(pro, axis=1, kind="stable")
    for i in range(n):
        pro[i, order[i, : n - k - 1]] = 0.0  # drop the smallest knn_number = n - k - 1 ...
        pro[i, order[i, -1]] = 0.0  # ... and the largest (the item itself)
    pro /= pro.sum(1, keepdims=True)
    ref = pro @ pro.T
    idx, w = neighbour_graph(*_t(fi, ft), a1, k, block=7)
    assert idx.shape == (n, k) and not (idx == torch.arange(n)[:, None]).any()
    sub = np.array([3, 17, 0, 29])
    np.testing.assert_allclose(coherence(idx[sub], w[sub], n).numpy(), ref[np.ix_(sub, sub)], rtol=1e-9, atol=1e-12)
    S = torch.as_tensor(ref[np.ix_(sub, sub)] * scale)
    hi, ht = np.tanh(rng.normal(size=(4, 5))), np.tanh(rng.normal(size=(4, 5)))
    loss, _ = dgcpn_loss(*_t(hi, ht), S, 1.5, 0.7, 0.3)
    off = 1 - np.eye(4)
    ii, tt, it = _cos(hi), _cos(ht), _cos(hi, ht)
    Sn = S.numpy()
    want = (_mse(np.diag(it), 1.5) + 0.7 * (_mse(tt * off, Sn * off) + _mse(it * off, Sn * off) + _mse(ii * off, Sn * off))
            + 0.3 * (_mse(it, ii) + _mse(it, tt) + _mse(ii, tt) + _mse(it, it.T)))
    assert float(loss) == pytest.approx(want, rel=1e-10)


def test_ucch_ranking_and_contrastive_losses_by_hand(batch):
    oi, ot = _norm(batch["hi"]), _norm(batch["ht"])
    B, m, shift = len(oi), 0.2, 0.1
    s = oi @ ot.T
    ref = 0.0
    for i in range(B):  # rows: image i against every text; columns: text j against every image
        row = [s[i, j] if s[i, j] >= s[i, i] - m else s[i, j] - shift for j in range(B)]
        col = [s[j, i] if s[j, i] >= s[i, i] - m else s[j, i] - shift for j in range(B)]
        ref += (-s[i, i] + np.log(np.sum(np.exp(row))) + m) / B
        ref += (-s[i, i] + np.log(np.sum(np.exp(col))) + m) / B
    assert float(ranking_loss(*_t(oi, ot), m, shift)) == pytest.approx(ref, rel=1e-10)
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(size=(B, 6)), rng.normal(size=(9, 6))
    logits = contrast_logits(*_t(oi, pos, neg), temperature=0.9)
    scale = 0.9 * np.sqrt(6)
    want = np.concatenate([(oi * np.sign(pos)).sum(1, keepdims=True), oi @ np.sign(neg).T], 1) / scale
    np.testing.assert_allclose(logits.numpy(), want, rtol=1e-10)
    lse = np.log(np.exp(want).sum(1))
    assert float(nce_softmax_loss(logits)) == pytest.approx(np.mean(lse - want[:, 0]), rel=1e-10)


def test_ucch_memory_update_arithmetic(toy_small):
    h = get_method("ucch")(16, seed=0, **TINY["ucch"], progress=False)
    h._setup(toy_small.part("train"))
    h.epoch = 5  # past the warm-up: momentum 0.4
    idx = torch.tensor([2, 7])
    old = h.memory[idx].clone()
    hi, ht = torch.nn.functional.normalize(torch.randn(2, 16), dim=1), torch.nn.functional.normalize(torch.randn(2, 16), dim=1)
    h._after_step(idx, hi, ht)
    new = torch.nn.functional.normalize((hi + ht) / 2, dim=1)
    want = torch.nn.functional.normalize(0.4 * old + 0.6 * new, dim=1)
    torch.testing.assert_close(h.memory[idx], want)
    h.epoch = 1  # warm-up: the bank takes the batch's outputs
    h._after_step(idx, hi, ht)
    torch.testing.assert_close(h.memory[idx], new)


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("name", METHODS)
def test_steps_on_a_fixed_batch_lower_the_loss(name, toy_small):
    h = get_method(name)(16, seed=0, **{**TINY[name], "dropout": 0.0}, progress=False)
    h._setup(toy_small.part("train"))
    h.epoch = 3
    idx = torch.arange(64)
    losses = [h._train_step(idx, h.X["image"][idx], h.X["text"][idx])["loss"] for _ in range(15)]
    assert losses[-1] < 0.9 * losses[0] if losses[0] > 0 else losses[-1] < losses[0] - 0.05, losses


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_same_codes_save_load_and_resume(name, toy_small, tmp_path):
    def fit(seed, ck=None, tracker=None):
        h = get_method(name)(16, seed=seed, **TINY[name], progress=False)
        h.checkpoint_dir = ck
        return h.fit(toy_small.part("train"), valid=validation_set(toy_small), tracker=tracker)

    q = toy_small.part("query")
    a, b = fit(3), fit(3)
    for m, X in (("image", q.image), ("text", q.text_dense())):
        assert np.array_equal(a.encode(m, X), b.encode(m, X))
    assert not np.array_equal(a.encode_image(q.image), fit(4).encode_image(q.image))
    a.save(tmp_path / "m")
    back = load_hasher(tmp_path / "m")
    assert np.array_equal(a.encode_text(q.text_dense()), back.encode_text(q.text_dense()))
    assert np.array_equal(a.encode_image(q.image), back.encode_image(q.image))

    class Killer:
        def log(self, rec, step=None):
            if rec.get("epoch") == 2 and "event" not in rec:
                raise KeyboardInterrupt

    full = fit(5, ck=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(5, ck=tmp_path / "b", tracker=Killer())
    resumed = fit(5, ck=tmp_path / "b")
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert np.array_equal(full.encode_image(q.image), resumed.encode_image(q.image))
    assert np.array_equal(full.encode_text(q.text_dense()), resumed.encode_text(q.text_dense()))


@pytest.mark.parametrize("name", METHODS)
def test_cli_train_on_toy(name, tmp_path, capsys):
    from crossmodal.cli import main

    over = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in TINY[name].items()]
    rc = main(["train", name, "--dataset", "toy", "--bits", "16", "--out", str(tmp_path), "--tracker", "none",
               "epochs=2", *[o for o in over if not o.startswith("epochs=")]])
    assert rc == 0, capsys.readouterr().err
    (run,) = list(tmp_path.iterdir())
    rep = json.loads((run / "report.json").read_text())
    assert rep["results"]["i2t"]["mAP@all"] > 0.15 and rep["results"]["t2i"]["mAP@all"] > 0.15
    assert (run / "model" / "state.npz").is_file()


def test_configs_load_for_every_dataset():
    from crossmodal.runs import load_config, preset_path, presets_of

    for name in METHODS:
        for preset in presets_of(name):
            for ds in ("toy", "wiki", "mirflickr25k", "nuswide-tc10"):
                cfg, _ = load_config(preset_path(name, None if preset == "paper" else preset), ds, name)
                get_method(name)(16, **cfg)
