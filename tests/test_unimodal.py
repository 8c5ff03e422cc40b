"""Image-only branch: losses on hand-computable inputs, the distillation steps against brute
force, EMA arithmetic, training lowers the loss, classic baselines, URPH search, CIFAR and
image-list loaders, end-to-end mode."""

import math
import pickle

import numpy as np
import pytest
import torch

from crossmodal.data import get_dataset
from crossmodal.data.core import PairedData
from crossmodal.errors import DataError
from crossmodal.methods import get_method
from crossmodal.methods.unimodal import DMUH, DSG, ITQ, PCAH, SH, URPH, DistillHash, URPHIndex
from crossmodal.methods.unimodal.base import pairwise_nll, quantization
from crossmodal.methods.unimodal.distillhash import half_gaussian_thresholds
from crossmodal.methods.unimodal.dmuh import ema_update, uncertainty_weights
from crossmodal.methods.unimodal.dsg import cluster_consistent, smooth_targets
from crossmodal.methods.unimodal.urph import listwise_loss
from crossmodal.runs import train_run, validation_set

FAST = dict(hidden=64, epochs=3, batch_size=64, progress=False)


@pytest.fixture(scope="module")
def digits():
    return get_dataset("digits")


# ------------------------------------------------------------------ losses by hand


def test_pairwise_nll_by_hand():
    theta = torch.tensor([[0.0, 2.0], [2.0, 0.0]])
    s = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    w = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    # both off-diagonal pairs are similar with Θ = 2: nll = log(1 + e^2) − 2 = log(1 + e^−2)
    assert float(pairwise_nll(theta, s, w)) == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)
    s0 = torch.zeros(2, 2)  # dissimilar: nll = log(1 + e^2)
    assert float(pairwise_nll(theta, s0, w)) == pytest.approx(math.log1p(math.exp(2.0)), rel=1e-6)


def test_quantization_by_hand():
    h = torch.tensor([[0.5, -1.0], [0.0, 1.0]])
    assert float(quantization(h)) == pytest.approx((0.25 + 0 + 1 + 0) / 4)
    assert float(quantization(h, torch.tensor([[2.0, 1.0], [1.0, 1.0]]))) == pytest.approx((0.5 + 0 + 1 + 0) / 4)


def test_listwise_loss_by_hand():
    d = torch.tensor([[0.0, 1.0, 2.0]])
    # median 1, tau_f 1 -> P = softmax(−d); codes with the same distances and tau_h 1 -> Q = P -> KL 0
    assert float(listwise_loss(d, d.clone(), 1.0, 1.0)) == pytest.approx(0.0, abs=1e-7)
    p = torch.softmax(-d, 1)
    q = torch.softmax(-torch.tensor([[2.0, 1.0, 0.0]]), 1)
    want = float((p * (p.log() - q.log())).sum())
    assert float(listwise_loss(d, torch.tensor([[2.0, 1.0, 0.0]]), 1.0, 1.0)) == pytest.approx(want, rel=1e-6)


def test_dsg_targets_and_cluster_distillation_by_hand():
    t = smooth_targets(torch.tensor([0.5, 0.5 + 0.1 * math.sqrt(2)]), tau=0.5, sigma=0.1)
    assert float(t[0]) == 0.0 and float(t[1]) == pytest.approx(math.erf(1.0), rel=1e-6)
    tt = torch.tensor([[1.0, 0.5, -0.5], [0.5, 1.0, 0.2], [-0.5, 0.2, 1.0]])
    keep = cluster_consistent(tt, torch.tensor([0, 0, 1]))
    # (0,1) similar & same cluster: kept; (0,2) dissimilar & different: kept; (1,2) similar but different: dropped
    assert keep.tolist() == [[True, True, True], [True, True, False], [True, False, True]]


def test_uncertainty_weights_by_hand():
    h = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    hm = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    pair, bit = uncertainty_weights(h, hm, gamma=1.0)
    # u = [[1, 0], [0, 0]], u_i = [0.5, 0], mean u = 0.25
    assert bit.tolist() == [[5.0, 1.0], [1.0, 1.0]]
    assert pair.tolist() == [[3.0, 2.0], [2.0, 1.0]]


def test_ema_update_arithmetic():
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        a.weight.fill_(1.0), a.bias.fill_(0.0), b.weight.fill_(3.0), b.bias.fill_(10.0)
    ema_update(a, b, 0.9)
    assert torch.allclose(a.weight, torch.full((1, 2), 1.2)) and torch.allclose(a.bias, torch.tensor([1.0]))


# ------------------------------------------------------------------ distillation against brute force


def test_half_gaussian_thresholds_on_constructed_distances():
    d = np.concatenate([np.full(1000, 0.5), np.full(100, 0.3), np.full(100, 0.8)])
    thr = half_gaussian_thresholds(d, alpha=2.0, beta=1.0, bins=50)
    assert thr["mode"] == pytest.approx(0.5, abs=0.01)
    left = np.concatenate([np.full(1000, 0.5), np.full(100, 0.3)]) - thr["mode"]
    assert thr["sigma_l"] == pytest.approx(np.sqrt(np.mean(left[left <= 0] ** 2)), rel=0.1)
    assert thr["t_sim"] < thr["mode"] < thr["t_dis"]


def test_distillhash_keeps_exactly_the_pairs_agreeing_with_the_bayes_label(rng):
    X = np.concatenate([rng.normal(0, 1, (20, 5)) + 4 * np.eye(5)[i % 3] for i in range(3)]).astype(np.float32)
    data = PairedData(image=X)
    h = DistillHash(16, alpha=0.5, beta=0.5, n_neighbours=3, progress=False, standardize="none")
    h.prep, h.dims, h.n_train = {}, {"image": 5}, len(X)
    h._build()
    h._prepare(X, data)
    idx = torch.arange(len(X))
    s, mask = h.distilled(idx)
    F = X / np.linalg.norm(X, axis=1, keepdims=True)
    d = 1 - F @ F.T
    init = (d <= h.thr["t_sim"]).astype(int) - (d >= h.thr["t_dis"]).astype(int)
    nb = h.nbrs.numpy()
    want = np.zeros_like(init, dtype=bool)
    for i in range(len(X)):
        for j in range(len(X)):
            labs = [init[a, b] for a in nb[i] for b in nb[j]]
            labelled = [v for v in labs if v != 0]
            if i == j or init[i, j] == 0 or not labelled:
                continue
            post = sum(v == 1 for v in labelled) / len(labelled)
            bayes = 1 if post > h.thr["bayes"] else (-1 if post < h.thr["bayes"] else 0)
            want[i, j] = bayes == init[i, j]
    assert np.array_equal(mask.numpy().astype(bool), want)
    assert np.array_equal(s.numpy(), (init == 1).astype(np.float32))
    assert want.sum() > 0 and (init != 0).sum() > want.sum() - 1


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("cls", [DistillHash, DSG, DMUH, URPH])
def test_short_training_lowers_the_loss(cls, digits):
    h = cls(16, seed=0, **{**FAST, "epochs": 4})
    h.fit(digits.part("train"))
    losses = [r["loss"] for r in h.history]
    assert losses[-1] < losses[0], losses
    codes = h.encode_image(digits.part("query").image)
    assert codes.shape == (500, 2)


def test_dmuh_needs_labels(digits):
    with pytest.raises(DataError, match="supervised"):
        DMUH(16, **FAST).fit(PairedData(image=digits.data.image[:100]))


def test_image_method_end_to_end_run_with_checkpoint_resume(digits, tmp_path):
    run = train_run("dsg", "digits", 16, seed=1, config=FAST, out=tmp_path, tracker="jsonl", log=lambda *_: None)
    import json

    rep = json.loads((run / "report.json").read_text())
    assert list(rep["results"]) == ["i2i"] and rep["results"]["i2i"]["mAP@all"] > 0.3
    assert (run / "checkpoints").is_dir() and (run / "index-image.npz").is_file()
    # interrupted after epoch 2, resumed: identical codes
    full = DSG(16, seed=2, **FAST)
    full.checkpoint_dir = tmp_path / "a"
    full.fit(digits.part("train"), valid=validation_set(digits, directions=("i2i",)))

    class Killer:
        def log(self, rec, step=None):
            if rec.get("epoch") == 2 and "event" not in rec:
                raise KeyboardInterrupt

    part = DSG(16, seed=2, **FAST)
    part.checkpoint_dir = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        part.fit(digits.part("train"), valid=validation_set(digits, directions=("i2i",)), tracker=Killer())
    resumed = DSG(16, seed=2, **FAST)
    resumed.checkpoint_dir = tmp_path / "b"
    resumed.fit(digits.part("train"), valid=validation_set(digits, directions=("i2i",)))
    q = digits.part("query").image
    assert np.array_equal(full.encode_image(q), resumed.encode_image(q))


def test_end2end_mode_with_a_tiny_backbone(digits):
    h = DSG(16, seed=0, mode="end2end", image_shape=[1, 8, 8], hidden=32, epochs=2, batch_size=128, progress=False,
            num_workers=0)
    h.fit(digits.part("train"))
    assert h.net.backbone is not None and len(h.history) == 2
    assert h.encode_image(digits.part("query").image).shape == (500, 2)
    with pytest.raises(Exception, match="image_shape"):
        DSG(16, mode="end2end")


def test_saved_image_model_round_trip(digits, tmp_path):
    from crossmodal.methods import load_hasher

    h = URPH(16, seed=0, **FAST).fit(digits.part("train"))
    h.save(tmp_path / "m")
    back = load_hasher(tmp_path / "m")
    q = digits.part("query").image
    assert np.array_equal(h.encode_image(q), back.encode_image(q))
    codes = h.encode_image(q[:5])
    np.testing.assert_allclose(h.reconstruct(codes), back.reconstruct(codes), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ classic baselines


def test_itq_quantises_better_than_pcah(digits):
    X = np.asarray(digits.part("train").image, dtype=np.float64)
    p, i = PCAH(16).fit(digits.part("train")), ITQ(16).fit(digits.part("train"))

    def qerr(h):
        V = h.project("image", X)
        return np.linalg.norm(np.sign(V) - V / np.abs(V).mean()) / np.sqrt(V.size)

    def quant_err(h):  # ||B − V||² with V scaled to unit mean magnitude
        V = h.project("image", X)
        V = V / np.abs(V).mean()
        return ((np.where(V >= 0, 1.0, -1.0) - V) ** 2).mean()

    assert quant_err(i) < quant_err(p)


def test_spectral_hashing_picks_the_smallest_eigenvalues(digits):
    h = SH(8).fit(digits.part("train"))
    s = h.state
    eig = s["omega"] ** 2
    assert np.all(np.diff(eig) >= -1e-12)  # chosen in increasing order
    # brute force: the 8 smallest (m pi / span_d)^2 over directions d and modes m >= 1
    allv = sorted((m * np.pi / sp) ** 2 for sp in s["span"] for m in range(1, 20))
    np.testing.assert_allclose(eig, allv[:8], rtol=1e-9)


def test_lsh_on_image_only_data(digits, tmp_path):
    run = train_run("lsh", "digits", 16, out=tmp_path, tracker="none", log=lambda *_: None)
    import json

    assert list(json.loads((run / "report.json").read_text())["results"]) == ["i2i"]
    from crossmodal.methods import load_hasher

    assert load_hasher(run / "model").modalities == ("image",)


# ------------------------------------------------------------------ URPH search


def test_urph_index_rerank_with_all_candidates_is_exact_on_reconstructions(digits):
    h = URPH(16, seed=0, **FAST).fit(digits.part("train"))
    db, q = digits.part("database").image, digits.part("query").image[:20]
    idx = URPHIndex(h, kind="flat").add(db)
    D, I = idx.search(q, k=10, n_candidates=len(db))
    rec = h.reconstruct(h.encode_image(db)).astype(np.float16).astype(np.float32)
    xq = h._prep_input(q)  # reconstructions live in the model's preprocessed space
    d = ((rec[None, :, :] - xq[:, None, :]) ** 2).sum(-1)
    want = np.argsort(d, axis=1, kind="stable")[:, :10]
    np.testing.assert_allclose(D, np.take_along_axis(d, want, 1), rtol=1e-4)
    assert (I == want).mean() > 0.95  # equal up to float ties
    D2, I2 = idx.search(q, k=10, rerank=False)
    assert I2.shape == (20, 10)


# ------------------------------------------------------------------ loaders


def _fake_cifar(root, per_batch_per_class=2, test_per_class=4):
    """5 training batches of 20 images and a test batch of 40, in the python-pickle layout."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        y = np.tile(np.arange(10), per_batch_per_class)
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (len(y), 3072), dtype=np.uint8), b"labels": y.tolist()}, f)
    yt = np.tile(np.arange(10), test_per_class)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": rng.integers(0, 255, (len(yt), 3072), dtype=np.uint8), b"labels": yt.tolist()}, f)
    return d


def test_cifar_loader_protocols_on_fake_batches(tmp_path):
    from crossmodal.data.images import load_cifar10

    _fake_cifar(tmp_path)
    with pytest.raises(DataError, match="expected 50,000 training \\+ 10,000 test images, found 100 \\+ 40"):
        load_cifar10(tmp_path)
    ds = load_cifar10(tmp_path, protocol="10k", strict_counts=False)
    assert (len(ds.split.query), len(ds.split.database)) == (40, 100)
    assert set(ds.split.query) == set(range(100, 140))
    ds1 = load_cifar10(tmp_path, protocol="1k", strict_counts=False)
    y = ds1.data.labels.argmax(1)
    assert len(ds1.split.query) == 10 and np.bincount(y[ds1.split.query], minlength=10).tolist() == [1] * 10
    assert len(ds1.split.query) + len(ds1.split.database) == 140
    assert np.bincount(y[ds1.split.train], minlength=10).tolist() == [1] * 10  # 500 per class, scaled
    assert ds1.data.image.shape == (140, 3072) and float(ds1.data.image.max()) <= 1.0
    assert ds1.extras["pixels"].shape == (140, 32, 32, 3)


def test_cifar_loader_refuses_a_pickle_that_runs_code(tmp_path):
    from crossmodal.data.images import read_cifar_batch

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match="only NumPy arrays are allowed"):
        read_cifar_batch(p)


def test_image_list_parser(tmp_path):
    from crossmodal.data.images import parse_image_list

    (tmp_path / "multi.txt").write_text("img/a.jpg 0 1 1\nimg/b.jpg 1 0 0\n")
    paths, lab = parse_image_list(tmp_path / "multi.txt")
    assert paths == ["img/a.jpg", "img/b.jpg"] and lab.tolist() == [[0, 1, 1], [1, 0, 0]]
    (tmp_path / "cls.txt").write_text("x.jpg 2\ny.jpg 0\n")
    assert parse_image_list(tmp_path / "cls.txt", n_classes=4)[1].tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]
    (tmp_path / "bad.txt").write_text("x.jpg 0 1\ny.jpg zero\n")
    with pytest.raises(DataError, match="bad.txt:2: expected 'path label...'"):
        parse_image_list(tmp_path / "bad.txt")


def test_every_image_method_is_registered():
    for name in ("distillhash", "dsg", "dmuh", "urph", "pcah", "itq", "sh", "lsh"):
        get_method(name)
