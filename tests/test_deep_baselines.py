"""Deep unsupervised cross-modal baselines (DJSRH, JDSH, DGCPN, UCCH) on the shared base:
each loss against a NumPy reference written from the official code's formulas, steps that
lower the loss, end-to-end mode (determinism, save/load and resume with a trained backbone; the
features mode is in test_contract.py), and one CLI run per method."""

import json

import numpy as np
import pytest
import torch

from crossmodal.errors import ConfigError
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

# end-to-end: the toy rows are 16 x 16 RGB pixels in HWC order; a tiny conv backbone + fc_encode
E2E = dict(mode="end2end", image_shape=[3, 16, 16], image_layout="hwc", backbone="tiny", hidden=[])


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


def _half_gauss_half_laplace(rng, n, mode, sigma, b):
    """Samples of the density ``c exp(-(x-mode)²/2σ²)`` left of the mode, ``c exp(-(x-mode)/b)``
    right of it (continuous at the mode: side masses σ sqrt(π/2) : b)."""
    left = rng.random(n) < sigma * np.sqrt(np.pi / 2) / (sigma * np.sqrt(np.pi / 2) + b)
    return np.where(left, mode - np.abs(rng.normal(0, sigma, n)), mode + rng.exponential(b, n))


def test_jdsh_fit_dsdw_peak_recovers_the_core_and_ignores_a_broad_left_shoulder():
    rng = np.random.default_rng(3)
    core = _half_gauss_half_laplace(rng, 400000, -0.5, 0.02, 0.09)
    for method in ("moments", "peak"):  # a clean sample: both fits recover σ_l and b_r
        fit = fit_dsdw(core, bins=400, method=method)
        assert fit["loc_left"] == pytest.approx(-0.5, abs=0.005)
        assert fit["scale_left"] == pytest.approx(0.02, rel=0.15)
        assert fit["scale_right"] == pytest.approx(0.09, rel=0.1)
        assert (fit["min"], fit["max"]) == (core.min(), core.max())
    # 10 % of the mass in a broad bump well below the mode: the moments (one-sided ML) σ_l
    # follows the bump, the half-maximum width of the peak does not
    shoulder = np.concatenate([core, rng.normal(-0.8, 0.1, 40000)])
    moments = fit_dsdw(shoulder, bins=400, method="moments")
    peak = fit_dsdw(shoulder, bins=400, method="peak")
    assert moments["scale_left"] > 0.1
    assert peak["scale_left"] == pytest.approx(0.02, rel=0.15)
    assert peak["scale_right"] == pytest.approx(0.09, rel=0.1)
    # the mode at the bottom edge (no left side): σ_l falls back to loc - min, under two bins
    edge = fit_dsdw(-0.5 + rng.exponential(0.09, 100000), bins=400, method="peak")
    assert 0 <= edge["scale_left"] == pytest.approx(edge["loc_left"] - edge["min"])
    assert edge["scale_left"] < 2 * (edge["max"] - edge["min"]) / 400
    assert edge["scale_right"] == pytest.approx(0.09, rel=0.1)
    with pytest.raises(ConfigError, match="dsdw_fit"):
        fit_dsdw(core, method="mle")


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


def test_dgcpn_neighbours_are_a_share_of_the_training_set(toy_small, crossmodal_records):
    """k = round(neighbour_share · n) unless n_neighbours fixes it, clamped to [1, n - 1]; a k that
    keeps every other item is a logged warning (the graph term is then the same for every pair)."""
    import logging

    cls = get_method("dgcpn")
    assert cls(16).n_neighbours(5000) == 2000  # the paper's k at its 5,000 training pairs
    assert cls(16).n_neighbours(1620) == 648 and cls(16, neighbour_share=0.1).n_neighbours(1620) == 162
    assert cls(16, n_neighbours=600).n_neighbours(1620) == 600
    assert cls(16, n_neighbours=2000).n_neighbours(1620) == 1619 and cls(16, neighbour_share=0.01).n_neighbours(20) == 1
    tr = toy_small.part("train")
    h = cls(16, **{**TINY["dgcpn"], "n_neighbours": None, "epochs": 1})
    h._setup(tr)
    assert h.k == round(0.4 * tr.n)
    with crossmodal_records.at_level(logging.WARNING, logger="crossmodal"):
        cls(16, **{**TINY["dgcpn"], "n_neighbours": 5000, "epochs": 1})._setup(tr)
    assert any("keeps every other one" in r.getMessage() for r in crossmodal_records.records)


def test_dgcpn_text_hash_layer_starts_from_the_official_normal(toy_small):
    """text_head_init_std: the text tower's last layer starts from N(0, std) (official 0.3, the
    paper preset's), every other layer as with 0 (PyTorch's default), which is the method's
    default; a saved model's weights still replace the start."""
    tr = toy_small.part("train")
    tiny = {**TINY["dgcpn"], "hidden_text": [256], "epochs": 1}
    plain, official = get_method("dgcpn")(64, **tiny), get_method("dgcpn")(64, **tiny, text_head_init_std=0.3)
    for h in (plain, official):
        h._setup(tr)
    head = official.towers["text"].body[-1].weight
    assert abs(float(head.std()) - 0.3) < 0.02 and abs(float(head.mean())) < 0.02
    assert float(plain.towers["text"].body[-1].weight.std()) < 0.1  # PyTorch's uniform(±1/sqrt(256))
    for name, w in official.towers.state_dict().items():
        if name != "text.body.3.weight":
            assert torch.equal(w, plain.towers.state_dict()[name]), name
    from crossmodal.config import load_config_file, preset_path

    assert load_config_file(preset_path("dgcpn"), "toy", "dgcpn")["text_head_init_std"] == 0.3
    with pytest.raises(ConfigError):
        get_method("dgcpn")(16, text_head_init_std=-1.0)


def test_dgcpn_target_with_every_item_a_neighbour_says_every_pair_is_similar(toy_small):
    """The old paper setting on a small set (k = 2000 >= n - 1): P Pᵀ is about 1/k everywhere, so
    S_gn is about 2 for every pair and the target S > 0 for every pair of a toy batch; with
    k = 40 % of n the target separates (some pairs negative)."""
    tr = toy_small.part("train")
    idx = torch.arange(64)
    targets = {}
    for k in (5000, None):
        h = get_method("dgcpn")(16, **{**TINY["dgcpn"], "n_neighbours": k, "epochs": 1})
        h._setup(tr)
        targets[k] = h._target(idx)
    off = ~torch.eye(64, dtype=torch.bool)
    assert bool((targets[5000][off] > 0).all())
    assert float((targets[None][off] < 0).float().mean()) > 0.2


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


def test_jdsh_prepare_fits_with_the_configured_method_and_keeps_set_constants(toy_small):
    train = toy_small.part("train")
    fits = {}
    for method in ("moments", "peak"):
        h = get_method("jdsh")(16, seed=0, **TINY["jdsh"], dsdw_fit=method, progress=False)
        h._setup(train)
        vals = h.dsdw_values()
        assert vals.shape == (20 * 63 * 64,)  # 20 batches of min(64, n) = 64, off-diagonal only
        assert h.dsdw_constants == fit_dsdw(vals, method=method)
        fits[method] = h.dsdw_constants
    assert fits["peak"]["loc_left"] == fits["moments"]["loc_left"]
    assert fits["peak"]["scale_left"] != fits["moments"]["scale_left"]
    h = get_method("jdsh")(16, seed=0, **TINY["jdsh"], dsdw_fit="peak", scale_left=0.019, progress=False)
    h._setup(train)  # a constant set in the config is kept, the others fitted
    assert h.dsdw_constants == {**fits["peak"], "scale_left": 0.019}


def test_dsdw_effect_counts_marked_pairs_and_the_move(toy_small):
    from experiments.jdsh_dsdw import effect

    train = toy_small.part("train")
    lab = train.labels.astype(np.float64)
    h = get_method("jdsh")(16, seed=0, **TINY["jdsh"], left_sigmas=50.0, right_sigmas=50.0, progress=False)
    h._setup(train)
    same = np.concatenate([((lab[b] @ lab[b].T) > 0)[~np.eye(len(b), dtype=bool)]
                           for b in (i.numpy() for i in h.dsdw_batches())])
    none = effect(h, train.labels)  # thresholds beyond the range: nothing marked, nothing moved
    assert (none["dis"], none["sim"], none["move"]) == (0.0, 0.0, 0.0)
    assert none["base_same"] == pytest.approx(same.mean())
    h.config.update(left_sigmas=0.0, right_sigmas=0.0)  # thresholds at the mode: every pair but ties
    vals = h.dsdw_values()
    loc = h.dsdw_constants["loc_left"]
    every = effect(h, train.labels)
    assert every["dis"] == pytest.approx(np.mean(vals < loc))
    assert every["sim"] == pytest.approx(np.mean(vals > loc))
    assert every["sim_same"] == pytest.approx(same[vals > loc].mean())
    assert every["move"] > 0 and every["move_rel"] > 0


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("mode", ("features", "end2end"))
@pytest.mark.parametrize("name", METHODS)
def test_steps_on_a_fixed_batch_lower_the_loss(name, mode, toy_small):
    # end2end: a conv backbone from scratch moves slower; UCCH's loss is noisy (fresh negatives each step)
    extra, steps = (dict(E2E, lr=3e-3), 30) if mode == "end2end" else ({}, 15)
    h = get_method(name)(16, seed=0, **{**TINY[name], "dropout": 0.0, **extra}, progress=False)
    train = toy_small.part("train")
    h._setup(train)
    h.epoch = 3
    idx = torch.arange(64)
    xi = torch.as_tensor(train.image[:64]) if mode == "end2end" else h.X["image"][idx]
    losses = [h._train_step(idx, xi, h.X["text"][idx])["loss"] for _ in range(steps)]
    last = float(np.mean(losses[-3:]))
    assert last < 0.9 * losses[0] if losses[0] > 0 else last < losses[0] - 0.05, losses


@pytest.mark.parametrize("name", METHODS)
def test_end2end_same_seed_same_codes_save_load_and_resume(name, toy_small, tmp_path):
    """End-to-end mode (a backbone trained with the towers, its weights in the saved state and
    the checkpoints); features mode is checked for every method in test_contract.py."""
    extra = E2E

    def fit(seed, ck=None, tracker=None):
        h = get_method(name)(16, seed=seed, **{**TINY[name], **extra}, progress=False)
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


def test_end2end_tower_reads_both_layouts_and_similarity_uses_initial_backbone(toy_small):
    from crossmodal.nets import ImageTower

    train = toy_small.part("train")
    h = get_method("djsrh")(16, seed=0, **{**TINY["djsrh"], **E2E}, progress=False)
    h._setup(train)
    tower = h.towers["image"]
    assert isinstance(tower, ImageTower)
    hwc = torch.as_tensor(train.image[:5])
    img = hwc.reshape(5, 16, 16, 3).permute(0, 3, 1, 2)  # (B, C, H, W) by hand
    torch.testing.assert_close(tower.images(hwc), img)
    chw = img.reshape(5, -1)  # the same images flattened in CHW order
    tower.layout = "chw"
    torch.testing.assert_close(tower.images(chw), img)
    tower.layout = "hwc"
    with torch.no_grad():  # F["image"]: the untrained backbone's features, L2-normalised
        want = torch.nn.functional.normalize(tower.eval().backbone(img), dim=1)
    torch.testing.assert_close(h.F["image"][:5], want, rtol=1e-5, atol=1e-6)
    assert h.F["image"].shape == (train.n, 32)  # the tiny backbone's 32-d output
    before = [p.detach().clone() for p in tower.backbone.parameters()]
    h.towers.train()
    h._train_step(torch.arange(64), torch.as_tensor(train.image[:64]), h.X["text"][:64])
    assert any(not torch.equal(a, b) for a, b in zip(before, tower.backbone.parameters()))  # trained end to end


def test_end2end_bad_shapes_are_one_line_errors(toy_small):
    from crossmodal.errors import ConfigError, DataError

    with pytest.raises(ConfigError, match="image_shape"):
        get_method("ucch")(16, mode="end2end")
    h = get_method("ucch")(16, **{**E2E, "image_shape": [3, 8, 8]}, progress=False)
    with pytest.raises(DataError, match="192 values but the image rows have 768"):
        h.fit(toy_small.part("train"))


def test_end2end_bad_shape_fails_before_a_run_folder_exists(tmp_path, capsys):
    from crossmodal.cli import main

    rc = main(["train", "djsrh", "--preset", "alexnet", "--dataset", "toy", "--bits", "16",
               "--out", str(tmp_path / "runs"), "--tracker", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "150528 values but the image rows have 768" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_torchvision_backbone_without_torchvision_is_one_line_error(toy_small):
    from crossmodal.errors import DataError

    try:
        import torchvision  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("torchvision is importable here")
    h = get_method("djsrh")(16, **{**E2E, "backbone": "alexnet"}, progress=False)
    with pytest.raises(DataError, match="backbone alexnet .* needs torchvision.*tiny or hf:PATH"):
        h.fit(toy_small.part("train"))


def test_alexnet_backbone_is_cut_after_fc7():
    pytest.importorskip("torchvision", exc_type=ImportError)
    from crossmodal.methods.backbones import build_backbone

    net, dim = build_backbone("alexnet", 3)
    assert dim == 4096 and net(torch.rand(2, 3, 224, 224)).shape == (2, 4096)


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
    """Every preset of the four methods loads for every dataset block, and each value it sets
    reaches the hasher's config; DJSRH's per-dataset BETA follows the official settings.py."""
    from crossmodal.config import load_config, preset_path, presets_of

    assert {name: presets_of(name) for name in METHODS} == {
        "djsrh": ["paper", "alexnet", "fast"], "jdsh": ["paper", "alexnet", "fast"], "dgcpn": ["paper", "fast"],
        "ucch": ["paper", "fast", "vgg11"]}
    for name in METHODS:
        for preset in presets_of(name):
            for ds in ("toy", "wiki", "mirflickr25k", "nuswide-tc10"):
                cfg, _ = load_config(preset_path(name, None if preset == "paper" else preset), ds, name)
                assert cfg, (name, preset, ds)
                h = get_method(name)(16, **cfg)
                assert {k: h.config[k] for k in cfg} == cfg, (name, preset, ds)
    beta = {ds: load_config(preset_path("djsrh", None), ds, "djsrh")[0]["beta"]
            for ds in ("mirflickr25k", "wiki", "nuswide-tc10")}
    assert beta == {"mirflickr25k": 0.9, "wiki": 0.3, "nuswide-tc10": 0.6}


def test_prepare_pixels_then_train_end2end_and_query_by_image(tmp_path, capsys):
    """The end-to-end path a user takes: raw images -> a pixels dataset -> train -> query."""
    from PIL import Image

    import fakes
    from crossmodal.cli import main

    fakes.make_mirflickr(tmp_path / "raw")
    ds = tmp_path / "ds"
    rc = main(["datasets", "prepare", "mirflickr25k", "--root", str(tmp_path / "raw"), "--out", str(ds),
               "--image-features", "pixels", "--pixel-size", "16", "--query", "2", "--train", "0",
               "--validation", "0", "--min-tag-count", "2", "--allow-count-mismatch"])
    assert rc == 0, capsys.readouterr().err
    image = np.load(ds / "image.npy")
    with Image.open(tmp_path / "raw" / "mirflickr" / "im1.jpg") as im:  # the first kept pair
        want = np.asarray(im.convert("RGB").resize((16, 16), Image.BILINEAR), np.float32).reshape(-1) / 255
    assert image.shape == (7, 768)
    np.testing.assert_allclose(image[0], want, atol=1e-6)
    rc = main(["train", "djsrh", "--dataset", str(ds), "--bits", "16", "--out", str(tmp_path / "runs"),
               "--tracker", "none", "mode=end2end", "image_shape=[3,16,16]", "image_layout=hwc", "hidden=[]",
               "hidden_text=[8]", "epochs=2", "batch_size=4", "progress=false"])
    assert rc == 0, capsys.readouterr().err
    (run,) = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "run.json").read_text())["config"]["mode"] == "end2end"
    capsys.readouterr()
    rc = main(["query", str(run), "--image", str(tmp_path / "raw" / "mirflickr" / "im2.jpg"), "-k", "3"])
    out = capsys.readouterr().out
    assert rc == 0 and len([ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]) == 3, out


@pytest.mark.parametrize("frozen,changed", [(0, (True, True)), (1, (False, True)), (-1, (False, False))])
def test_backbone_frozen_epochs(frozen, changed, toy_small):
    """The backbone trains from epoch ``frozen + 1`` (never with -1); the head always trains."""
    h = get_method("ucch")(16, seed=0, **{**TINY["ucch"], **E2E, "backbone_frozen_epochs": frozen,
                                           "epochs": 2}, progress=False)
    h._setup(toy_small.part("train"))
    tower = h.towers["image"]
    for epoch, want in zip((1, 2), changed):
        bb = [p.detach().clone() for p in tower.backbone.parameters()]
        head = [p.detach().clone() for p in tower.head.parameters()]
        h._run_epoch(epoch)
        assert any(not torch.equal(a, b) for a, b in zip(bb, tower.backbone.parameters())) == want
        assert tower.backbone.training == want
        assert any(not torch.equal(a, b) for a, b in zip(head, tower.head.parameters()))


def test_end2end_with_a_local_transformers_backbone(tiny_clip, toy_small, tmp_path):
    """``backbone: hf:PATH``: the CLIP vision tower from a local folder, fed at the processor's
    size and normalisation; trains, saves and loads to the same codes."""
    h = get_method("djsrh")(16, seed=0, **{**TINY["djsrh"], **E2E, "backbone": f"hf:{tiny_clip}",
                                            "epochs": 1}, progress=False)
    h.fit(toy_small.part("train"))
    q = toy_small.part("query")
    codes = h.encode_image(q.image)
    assert codes.shape == (q.n, 2)  # 16 bits, packed
    F = h.backbone_features(q.image)  # the CLIP vision tower's pooled output, at 32 x 32 from 16 x 16 rows
    assert F.shape == (q.n, 16) and F.std(0).mean() > 1e-3
    h.save(tmp_path / "m")
    assert np.array_equal(load_hasher(tmp_path / "m").encode_image(q.image), codes)


def test_dgcpn_with_every_item_a_neighbour_collapses_and_the_report_says_so(toy_small):
    """The collapse the old graph size caused, end to end: trained with k >= n - 1 the image codes
    keep almost every bit constant, the evaluation states it (report meta ``collapse``) and the
    query mAP falls to about chance; the same training with k = 40 % of n keeps most bits alive and
    ranks far better."""
    from crossmodal.retrieval.evaluate import evaluate

    out = {}
    for k in (5000, None):
        h = get_method("dgcpn")(16, seed=0, hidden=[32], hidden_text=[32], epochs=30, batch_size=64, dropout=0.1,
                                n_neighbours=k, progress=False, optimizer="adam", lr=1e-3)
        h.fit(toy_small.part("train"), valid=validation_set(toy_small))
        out[k] = evaluate(h, toy_small)
    every, share = out[5000], out[None]
    assert every.meta["collapse"]["constant_bits"]["query image"] >= 12
    assert every.meta["collapse"]["statement"].startswith("degenerate codes: constant bits: ")
    assert share.meta.get("collapse", {}).get("constant_bits", {}).get("query image", 0) <= 4
    for d in ("i2t", "t2i"):
        assert every.results[d]["mAP@all"] < 0.25 < share.results[d]["mAP@all"] - 0.05
