"""Image-only branch: losses on hand-computable inputs, the distillation steps against brute
force, EMA arithmetic, training lowers the loss, classic baselines, URPH search, CIFAR and
image-list loaders, end-to-end mode."""

import math
import pickle

import numpy as np
import pytest
import torch

from crossmodal.data import get_dataset
from crossmodal.data import PairedData
from crossmodal.errors import ConfigError, DataError
from crossmodal.methods import get_method
from crossmodal.methods.unimodal import DMUH, DSG, ITQ, PCAH, SH, URPH, DistillHash, URPHIndex
from crossmodal.methods.losses import pairwise_nll, quantization
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


def test_distillhash_keeps_exactly_the_pairs_whose_neighbour_vote_agrees(rng):
    X = np.concatenate([rng.normal(0, 1, (20, 5)) + 4 * np.eye(5)[i % 3] for i in range(3)]).astype(np.float32)
    data = PairedData(image=X)
    h = DistillHash(16, alpha=0.5, beta=0.5, n_neighbours=3, progress=False, standardize="none",
                    estimate_noise=False, noise_rate=0.2)
    h.prep, h.dims, h.n_train = {}, {"image": 5}, len(X)
    h._build()
    h._prepare(X, data)
    idx = torch.arange(len(X))
    s, mask = h.distilled(idx)
    F = X / np.linalg.norm(X, axis=1, keepdims=True)
    d = 1 - F @ F.T
    init = (d <= h.thr["t_sim"]).astype(int) - (d >= h.thr["t_dis"]).astype(int)
    nb = h.nbrs.numpy()
    assert not any(i in nb[i] for i in range(len(X)))  # an item is not its own neighbour
    want = np.zeros_like(init, dtype=bool)
    for i in range(len(X)):
        for j in range(len(X)):
            if i == j or init[i, j] == 0:
                continue
            votes = [init[a, b] for a in nb[i] for b in nb[j] if a != b and not (a == j and b == i)]
            share = sum(v == init[i, j] for v in votes) / max(len(votes), 1)
            want[i, j] = share > 0.6  # (1 + rho) / 2 with rho = 0.2
    assert np.array_equal(mask.numpy().astype(bool), want)
    assert np.array_equal(s.numpy(), (init == 1).astype(np.float32))
    assert 0 < want.sum() < (init != 0).sum() - len(X)  # some pairs kept, some distilled away


def test_distillation_on_and_off_differ_on_digits(digits):
    cfg = dict(FAST, epochs=2, standardize="center")
    on, off = DistillHash(16, seed=0, **cfg), DistillHash(16, seed=0, distill=False, **cfg)
    on.fit(digits.part("train"))
    off.fit(digits.part("train"))
    idx = torch.arange(256)
    _, m_on = on.distilled(idx)
    _, m_off = off.distilled(idx)
    assert m_on.sum() < 0.95 * m_off.sum() and bool((m_on <= m_off).all())  # a strict subset, > 5 % removed
    rec = on.history[-1]
    assert 0.05 < rec["distilled_away"] < 0.9 and off.history[-1]["distilled_away"] == 0.0
    assert rec["label_acc_kept"] > rec["label_acc_removed"]  # the diagnostic: kept pairs are cleaner
    q = digits.part("query").image
    assert not np.array_equal(on.encode_image(q), off.encode_image(q))


def test_distillation_warns_when_it_removes_almost_nothing(digits, caplog, monkeypatch):
    import logging

    # an earlier CLI call (configure_logging) stops the crossmodal logger propagating to caplog's handler
    monkeypatch.setattr(logging.getLogger("crossmodal"), "propagate", True)
    # 4 groups of identical one-hot rows: every neighbour pair carries its pair's own label
    h = DistillHash(16, seed=0, **dict(FAST, epochs=1), alpha=0.5, beta=0.0, standardize="none")
    with caplog.at_level(logging.WARNING):
        h.fit(PairedData(image=np.repeat(np.eye(4, dtype=np.float32), 20, axis=0)))
    assert h.history[0]["labelled_fraction"] == 1.0 and h.history[0]["distilled_away"] == 0.0
    assert "barely acts" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        DistillHash(16, seed=0, **dict(FAST, epochs=1)).fit(digits.part("train"))
    assert "barely acts" not in caplog.text


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("cls", [DistillHash, DSG, DMUH, URPH])
def test_short_training_lowers_the_loss(cls, digits):
    h = cls(16, seed=0, **{**FAST, "epochs": 4})
    h.fit(digits.part("train"))
    losses = [r["loss"] for r in h.history]
    assert losses[-1] < losses[0], losses
    codes = h.encode_image(digits.part("query").image)
    assert codes.shape == (500, 2)


def test_image_method_end_to_end_run(digits, tmp_path):
    """A run of an image-only method scores I→I only and keeps its checkpoints and image index
    (resuming is checked for every method in test_contract.py)."""
    run = train_run("dsg", "digits", 16, seed=1, config=FAST, out=tmp_path, tracker="jsonl", log=lambda *_: None)
    import json

    rep = json.loads((run / "report.json").read_text())
    assert list(rep["results"]) == ["i2i"] and rep["results"]["i2i"]["mAP@all"] > 0.3
    assert (run / "checkpoints").is_dir() and (run / "index-image.npz").is_file()


def test_end2end_pseudo_labels_come_from_backbone_features(digits):
    seen = {}

    class Spy(DistillHash):
        def _prepare(self, X, train):
            seen["X"] = X
            super()._prepare(X, train)

    h = Spy(16, seed=0, mode="end2end", image_shape=[1, 8, 8], hidden=32, epochs=1, batch_size=128, progress=False)
    train = digits.part("train")
    h.fit(train)
    X = seen["X"]
    assert X.shape == (train.n, h.net.backbone.out_dim) and h.net.backbone.out_dim != train.image_dim
    # the backbone's features at initialisation, centred (standardize: center), not the raw pixels
    torch.manual_seed(0)
    fresh = Spy(16, seed=0, mode="end2end", image_shape=[1, 8, 8], hidden=32, progress=False)
    fresh.dims = {"image": train.image_dim}
    fresh._build()
    with torch.no_grad():
        F = fresh.net.backbone(torch.as_tensor(train.image).reshape(-1, 1, 8, 8)).numpy()
    np.testing.assert_allclose(X, F - F.mean(0), rtol=1e-4, atol=1e-5)


def test_backbone_input_resizes_and_normalises():
    from crossmodal.methods.backbones import IMAGENET_MEAN, IMAGENET_STD, backbone_input

    x = torch.full((2, 1, 8, 8), 0.5)
    y = backbone_input("resnet18")(x)
    assert y.shape == (2, 3, 224, 224)
    want = (0.5 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(y[:, :, 100, 37], want.expand(2, 3))
    assert torch.equal(backbone_input("tiny")(x), x)


def test_end2end_mode_with_a_tiny_backbone(digits):
    h = DSG(16, seed=0, mode="end2end", image_shape=[1, 8, 8], hidden=32, epochs=2, batch_size=128, progress=False,
            num_workers=0)
    h.fit(digits.part("train"))
    assert h.net.backbone is not None and len(h.history) == 2
    assert h.encode_image(digits.part("query").image).shape == (500, 2)
    with pytest.raises(ConfigError, match="image_shape"):
        DSG(16, mode="end2end")


def test_urph_reconstructions_survive_save_and_load(digits, tmp_path):
    from crossmodal.methods import load_hasher

    h = URPH(16, seed=0, **FAST).fit(digits.part("train"))
    h.save(tmp_path / "m")
    back = load_hasher(tmp_path / "m")
    codes = h.encode_image(digits.part("query").image[:5])
    rec = h.reconstruct(codes)
    assert rec.shape == (5, digits.part("train").image_dim) and rec.std() > 1e-3
    np.testing.assert_allclose(back.reconstruct(codes), rec, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ classic baselines


def test_itq_quantises_better_than_pcah(digits):
    X = np.asarray(digits.part("train").image, dtype=np.float64)
    p, i = PCAH(16).fit(digits.part("train")), ITQ(16).fit(digits.part("train"))

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
    from crossmodal.data.sources.images import load_cifar10

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
    from crossmodal.data.sources.images import read_cifar_batch

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match="only NumPy arrays are allowed"):
        read_cifar_batch(p)


def test_image_list_parser(tmp_path):
    from crossmodal.data.sources.images import parse_image_list

    (tmp_path / "multi.txt").write_text("img/a.jpg 0 1 1\nimg/b.jpg 1 0 0\n")
    paths, lab = parse_image_list(tmp_path / "multi.txt")
    assert paths == ["img/a.jpg", "img/b.jpg"] and lab.tolist() == [[0, 1, 1], [1, 0, 0]]
    (tmp_path / "cls.txt").write_text("x.jpg 2\ny.jpg 0\n")
    assert parse_image_list(tmp_path / "cls.txt", n_classes=4)[1].tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]
    (tmp_path / "bad.txt").write_text("x.jpg 0 1\ny.jpg zero\n")
    with pytest.raises(DataError, match="bad.txt:2: expected 'path label...'"):
        parse_image_list(tmp_path / "bad.txt")


def test_every_image_method_is_registered():
    from crossmodal.methods import method_key
    from crossmodal.methods.baselines import LSH

    image_only = {"distillhash": DistillHash, "dsg": DSG, "dmuh": DMUH, "urph": URPH, "pcah": PCAH, "itq": ITQ,
                  "sh": SH}
    for name, cls in image_only.items():
        assert get_method(name) is cls and method_key(cls) == name
        assert cls.modalities == ("image",) and not cls.unified_codes
    assert [n for n, c in image_only.items() if c.uses_labels] == ["dmuh"]  # the one supervised method
    assert get_method("lsh") is LSH and LSH.text_optional  # LSH hashes images of image-only data too


# ------------------------------------------------------------------ model selection


@pytest.mark.parametrize("rule", ["validation", "last", "loss"])
def test_selection_rules(rule, digits):
    h = DSG(16, seed=0, **dict(FAST, epochs=3), selection=rule)
    h.fit(digits.part("train"), valid=validation_set(digits, directions=("i2i",)))
    hist = h.history
    if rule == "validation":
        want = max(hist, key=lambda r: r["score"])["epoch"]
        assert h.model_selection.startswith("labelled validation")
    elif rule == "loss":
        want = min(hist, key=lambda r: r["loss"])["epoch"]
        assert h.model_selection.startswith("label-free: lowest training loss")
    else:
        want = 3
        assert h.model_selection.startswith("fixed epochs")
    assert h.selected == {"rule": rule, "epoch": want}
    assert f"epoch {want}" in h.model_selection
    # the kept networks are those of the selected epoch: re-scoring them gives that epoch's score
    if rule == "validation":
        again = validation_set(digits, directions=("i2i",)).score(h)["score"]
        assert again == pytest.approx(hist[want - 1]["score"], abs=1e-9)


def test_selection_without_validation_data_falls_back_to_the_last_epoch(digits):
    h = DSG(16, seed=0, **dict(FAST, epochs=2)).fit(digits.part("train"))
    assert h.selected == {"rule": "last", "epoch": 2} and "no validation data" in h.model_selection
    with pytest.raises(ConfigError, match="selection must be one of"):
        DSG(16, selection="best")


# ------------------------------------------------------------------ ranked evaluation, URPH's own retrieval


def test_ranked_evaluation_equals_evaluate_codes_on_the_hamming_ranking(rng):
    from crossmodal.retrieval.codes import pack
    from crossmodal.retrieval.metrics import evaluate_codes
    from crossmodal.retrieval.ranked import evaluate_ranking, hamming_ranking

    bits = 8  # few bits: many ties, broken by database index in both
    q, db = pack(rng.integers(0, 2, (30, bits))), pack(rng.integers(0, 2, (200, bits)))
    ql, dl = rng.integers(0, 2, (30, 4)), rng.integers(0, 2, (200, 4))
    ql[0] = 0  # a query without any relevant item scores 0 and is counted
    ks = (1, 10, 50, 500)
    for norm in ("retrieved", "min"):
        want = evaluate_codes(q, db, ql, dl, bits, ks=ks, norm=norm)
        got = evaluate_ranking(hamming_ranking(q, db, bits), ql, dl, ks=ks, norm=norm)
        for key in ["mAP@all"] + [f"mAP@{k}" for k in ks] + [f"P@{k}" for k in ks]:
            assert got[key] == pytest.approx(want[key], abs=1e-12), (norm, key)
    # a truncated ranking: relevant items past its end count as never retrieved
    full = hamming_ranking(q, db, bits)
    cut = np.where(np.arange(200) < 20, full, -1)
    got = evaluate_ranking(cut, ql, dl, ks=(10,))
    rel = (ql @ dl.T) > 0
    hits = np.take_along_axis(rel, full[:, :20], 1)
    ap = [(np.cumsum(h) / np.arange(1, 21))[h].sum() / r.sum() if r.sum() else 0.0 for h, r in zip(hits, rel)]
    assert got["mAP@all"] == pytest.approx(np.mean(ap), abs=1e-12)
    assert got["mAP@10"] == pytest.approx(evaluate_codes(q, db, ql, dl, bits, ks=(10,))["mAP@10"], abs=1e-12)


def test_urph_evaluates_with_the_papers_retrieval(digits):
    from crossmodal.retrieval.evaluate import evaluate

    h = URPH(16, seed=0, **FAST, n_candidates=300).fit(digits.part("train"))
    ham = evaluate(h, digits, directions=("i2i",), ks=(10,))
    pap = evaluate(h, digits, directions=("i2i",), ks=(10,), retrieval="paper")
    assert ham.meta["retrieval"] == "hamming ranking" and pap.meta["retrieval"].startswith("paper: HNSW")
    assert pap.results["i2i"]["depth"] == 300 and 0.2 < pap.results["i2i"]["mAP@10"] <= 1.0
    assert pap.results["i2i"]["mAP@10"] != ham.results["i2i"]["mAP@10"]
    assert ham.meta["model_selection"].startswith("fixed epochs")
    with pytest.raises(DataError, match="no retrieval of its own"):
        evaluate(DSG(16, **FAST).fit(digits.part("train")), digits, directions=("i2i",), retrieval="paper")


# ------------------------------------------------------------------ DSG priority, DMUH momentum network


def test_dsg_priority_weights_up_weight_hard_pairs_by_hand():
    from crossmodal.methods.unimodal.dsg import priority_weights

    g = torch.tensor([[0.5, -0.5]])
    s = torch.tensor([[1.0, 1.0]])
    # q = (1 + s g) / 2 = [0.75, 0.25]; (1 - q)^2 = [0.0625, 0.5625]: the pair the codes get wrong weighs more
    torch.testing.assert_close(priority_weights(g, s, 2.0), torch.tensor([[0.0625, 0.5625]]))
    assert torch.equal(priority_weights(g, s, 0.0), torch.ones(1, 2))


def test_dmuh_momentum_network_stays_in_eval_mode(digits):
    h = DMUH(16, seed=0, **dict(FAST, epochs=1))
    h.fit(digits.part("train"))
    assert not h.momentum_net.training
    assert not any(p.requires_grad for p in h.momentum_net.parameters())


def test_cli_evaluate_with_the_papers_retrieval(digits, tmp_path, capsys):
    import json

    from crossmodal.cli import main

    run = train_run("urph", "digits", 16, seed=0, config=dict(FAST, epochs=1, n_candidates=200), out=tmp_path,
                    tracker="none", log=lambda *_: None)
    first = json.loads((run / "report.json").read_text())
    assert first["meta"]["retrieval"] == "hamming ranking" and first["meta"]["model_selection"]
    assert main(["evaluate", str(run), "--retrieval", "paper"]) == 0
    assert json.loads((run / "report.json").read_text()) == first  # the run's own report is untouched
    rep = json.loads((run / "evaluations" / "eval-0001" / "report.json").read_text())
    assert rep["meta"]["retrieval"].startswith("paper:") and rep["results"]["i2i"]["depth"] == 200
    assert "I→I" in capsys.readouterr().out


def test_end2end_image_layout_hwc_equals_chw_of_the_same_images(toy_small):
    """Rows of the same images flattened in HWC order (pixels featurizer, toy) with
    ``image_layout: hwc`` train to the same codes as the CHW rows with ``chw``."""
    from crossmodal.data import PairedData

    train = toy_small.part("train")
    hwc = np.asarray(train.image, np.float32)
    chw = hwc.reshape(-1, 16, 16, 3).transpose(0, 3, 1, 2).reshape(len(hwc), -1)
    kw = dict(mode="end2end", image_shape=[3, 16, 16], hidden=16, epochs=1, batch_size=64, progress=False)
    logits = []
    for X, layout in ((hwc, "hwc"), (chw, "chw")):
        h = DSG(16, seed=0, image_layout=layout, **kw).fit(PairedData(image=X, text=None, labels=train.labels))
        logits.append(h.project("image", X[:50]))
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-5, atol=1e-6)
    assert logits[0].std(axis=0).mean() > 1e-4  # the images give different outputs
