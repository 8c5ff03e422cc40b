"""CVH, IMH and FSH: each core step against a small dense reference, FSH's unified codes, CLI.
(Shapes, seeds and persistence: test_contract.py.)"""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import linalg

from crossmodal.errors import ConfigError, DataError
from crossmodal.methods import get_method
from crossmodal.retrieval.codes import unpack
from crossmodal.retrieval.evaluate import evaluate


def _paired(rng, n=40, dx=6, dy=4):
    Z = rng.standard_normal((n, 3))
    X = Z @ rng.standard_normal((3, dx)) + 0.3 * rng.standard_normal((n, dx))
    Y = Z @ rng.standard_normal((3, dy)) + 0.3 * rng.standard_normal((n, dy))
    return X - X.mean(0), Y - Y.mean(0)


# -- CVH ------------------------------------------------------------------------------------
def test_cvh_trace_form_equals_the_brute_force_double_sum(rng):
    from crossmodal.methods.cvh import cvh_objective

    X, Y = _paired(rng, n=12)
    W = rng.random((12, 12))
    W = (W + W.T) / 2
    A = rng.standard_normal((X.shape[1] + Y.shape[1], 3))
    views = [X @ A[:6], Y @ A[6:]]              # codes of every object in each view
    brute = 0.0
    for i in range(12):
        for j in range(12):
            for u in views:
                for v in views:
                    brute += W[i, j] * np.sum((u[i] - v[j]) ** 2)
    assert cvh_objective(A, X, Y, W) == pytest.approx(brute / (2 * 12), rel=1e-10)


def test_cvh_with_identity_similarity_is_cca(rng):
    from crossmodal.methods.baselines import cca
    from crossmodal.methods.cvh import cvh_matrices

    X, Y = _paired(rng, n=200)
    M, C = cvh_matrices(X, Y, None, 0.0)
    evals, A = linalg.eigh(M, C)
    _, _, rho = cca(X, Y, reg=0.0)
    assert np.allclose(evals[:4], 1 - rho, atol=1e-8)       # eigenvalues 1 - canonical correlations
    assert np.allclose(evals[-4:], (1 + rho)[::-1], atol=1e-8)
    Wx, Wy, _ = cca(X, Y, reg=0.0)
    for j in range(4):                                       # same directions (up to sign and scale)
        c = np.corrcoef(X @ A[:6, j], X @ Wx[:, j])[0, 1]
        assert abs(c) == pytest.approx(1.0, abs=1e-6)


def test_cvh_fit_solves_the_generalised_eigenproblem(rng, toy_small):
    from crossmodal.methods.cvh import cvh_matrices

    h = get_method("cvh")(8, graph="knn", n_neighbours=4).fit(toy_small.part("train"))
    tr = toy_small.part("train")
    X = tr.image.astype(np.float64) - h.state["image_mean"]
    Y = tr.text_dense().astype(np.float64) - h.state["text_mean"]
    from crossmodal.methods.cvh import knn_affinity

    W = (knn_affinity(X, 4) + knn_affinity(Y, 4)) * 0.5 + sp.identity(len(X))
    M, C = cvh_matrices(X, Y, W, h.config["reg"])
    A = np.vstack([h.state["image_W"], h.state["text_W"]])
    assert np.allclose(M @ A, C @ A * h.state["eigenvalues"], atol=1e-6 * np.abs(M).max())
    assert np.allclose(A.T @ C @ A, np.eye(8), atol=1e-6)     # uncorrelated unit-variance bits
    assert np.allclose(h.state["eigenvalues"], linalg.eigvalsh(M, C)[:8], atol=1e-8)


def test_cvh_released_eigenproblem_is_the_released_codes(rng):
    """eigenproblem=released: the ``bits`` largest eigenpairs of Cxy Cyy Cxyᵀ a = λ Cxx a on un-centred
    data with an absolute ridge, Wy = Cyy⁻¹ Cxyᵀ Wx Λ^-1/2, no centring; a column with λ <= 0 codes
    every text as 0 (MATLAB's comparison of its imaginary projection)."""
    from crossmodal.data import PairedData

    X, Y = _paired(rng, n=50, dx=6, dy=3)
    X, Y = X + 2.0, Y - 1.0                      # un-centred: the released code does not centre
    h = get_method("cvh")(5, eigenproblem="released", reg=1e-3).fit(
        PairedData(image=X.astype(np.float32), text=Y.astype(np.float32), labels=None))
    X, Y = X.astype(np.float32).astype(np.float64), Y.astype(np.float32).astype(np.float64)
    Cxx, Cyy, Cxy = X.T @ X + 1e-3 * np.eye(6), Y.T @ Y + 1e-3 * np.eye(3), X.T @ Y
    A = Cxy @ Cyy @ Cxy.T                        # Cyy not inverted, as CVHtrainCCA.m
    Wx, Wy, lam = h.state["image_W"], h.state["text_W"], h.state["eigenvalues"]
    assert np.allclose(A @ Wx, Cxx @ Wx * lam, atol=1e-8 * np.abs(A).max())
    assert np.allclose(lam, linalg.eigvalsh(A, Cxx)[::-1][:5], rtol=1e-8, atol=1e-8 * lam[0])
    pos = lam > 0
    assert pos[:3].all()                          # rank 3 (the text dimension): 3 real directions
    np.testing.assert_allclose(Wy[:, pos], np.linalg.solve(Cyy, Cxy.T @ Wx[:, pos]) / np.sqrt(lam[pos]))
    assert not np.any(h.state["image_mean"]) and not np.any(h.state["text_mean"])
    h.state["eigenvalues"] = np.array([*lam[:4], -1e-12])
    bits = unpack(h.encode_text(Y.astype(np.float32)), 5)
    assert not bits[:, 4].any() and bits[:, :3].any()
    # the default (paper) is unchanged: centred joint eigenproblem
    assert get_method("cvh")(5).config["eigenproblem"] == "paper"


def test_cvh_refuses_more_bits_than_directions(toy_small):
    with pytest.raises(ConfigError, match="at most"):
        get_method("cvh")(1024).fit(toy_small.part("train"))


# -- IMH ------------------------------------------------------------------------------------
def test_imh_regression_residual_is_the_ridge_minimum(rng):
    from crossmodal.methods.imh import regression_residual

    X, _ = _paired(rng, n=30)
    Yc = rng.standard_normal((30, 3))
    beta = 0.7
    # min_W ||X W - Y||^2 + beta ||W||^2 by least squares on the augmented system
    Xa = np.vstack([X, np.sqrt(beta) * np.eye(X.shape[1])])
    Ya = np.vstack([Yc, np.zeros((X.shape[1], 3))])
    W, *_ = np.linalg.lstsq(Xa, Ya, rcond=None)
    best = np.sum((X @ W - Yc) ** 2) + beta * np.sum(W ** 2)
    assert np.trace(Yc.T @ regression_residual(X, beta) @ Yc) == pytest.approx(best, rel=1e-9)


def test_imh_eigen_matrix_is_the_objective_with_y2_at_its_optimum(rng):
    from crossmodal.methods.imh import imh_matrices, imh_objective, laplacian

    X1, X2 = _paired(rng, n=25)
    L1, L2 = laplacian(X1, 3), laplacian(X2, 3)
    args = (0.5, 0.3, 2.0)                    # beta, lambda, u
    C, E = imh_matrices(X1, X2, L1, L2, *args)
    Y1 = rng.standard_normal((25, 4))
    f = imh_objective(Y1, E @ Y1, X1, X2, L1, L2, *args)
    assert np.trace(Y1.T @ C @ Y1) == pytest.approx(f, rel=1e-9)     # C = objective after eliminating Y2
    for _ in range(5):                                                 # Y2 = E Y1 is the minimiser
        Y2 = E @ Y1 + 1e-3 * rng.standard_normal((25, 4))
        assert imh_objective(Y1, Y2, X1, X2, L1, L2, *args) > f


def test_imh_fit_takes_the_smallest_eigenvectors(toy_small):
    from crossmodal.methods.imh import imh_matrices, laplacian

    tr = toy_small.part("train")
    h = get_method("imh")(6, n_neighbours=5).fit(tr)
    X1 = tr.image.astype(np.float64) - h.state["image_mean"]
    X2 = tr.text_dense().astype(np.float64) - h.state["text_mean"]
    c = h.config
    C, _ = imh_matrices(X1, X2, laplacian(X1, 5), laplacian(X2, 5), c["beta"], c["intra_weight"], c["inter_weight"])
    assert np.allclose(h.state["eigenvalues"], np.linalg.eigvalsh(C)[1:7], rtol=1e-6, atol=1e-9)
    # median thresholds: every bit is balanced on the training set
    bits = h.project("image", tr.image) >= 0
    assert np.all(np.abs(bits.mean(0) - 0.5) <= 1 / len(tr.image) + 1e-12)


def test_imh_released_options_raw_features_and_batch_medians(toy_small):
    """centre=false trains on the raw features (the BMC-SDNU IMH_learn.m); threshold=batch codes each
    batch at its own per-bit medians with '>' (IMH_compress.m): any batch of even size gets exactly
    half ones per bit, and a subset is coded differently from inside the whole."""
    from crossmodal.methods.imh import imh_matrices, laplacian

    tr, q = toy_small.part("train"), toy_small.part("query")
    h = get_method("imh")(6, n_neighbours=5, centre=False, skip_first=False, threshold="batch").fit(tr)
    assert not np.any(h.state["image_mean"]) and not np.any(h.state["text_mean"])
    X1, X2 = tr.image.astype(np.float64), tr.text_dense().astype(np.float64)
    c = h.config
    C, _ = imh_matrices(X1, X2, laplacian(X1, 5), laplacian(X2, 5), c["beta"], c["intra_weight"], c["inter_weight"])
    assert np.allclose(h.state["eigenvalues"], np.linalg.eigvalsh(C)[:6], rtol=1e-6, atol=1e-9)
    n = len(q.image) // 2 * 2
    bits = unpack(h.encode_image(q.image[:n]), 6)
    np.testing.assert_array_equal(bits.sum(0), np.full(6, n // 2))
    raw = q.image[:n].astype(np.float64) @ h.state["image_W"]
    np.testing.assert_array_equal(bits, raw > np.median(raw, axis=0))
    half = unpack(h.encode_image(q.image[: n // 2]), 6)
    assert np.any(half != bits[: n // 2])               # the median moves with the batch
    d = get_method("imh")(6).config                      # defaults unchanged
    assert (d["centre"], d["skip_first"], d["threshold"]) == (True, True, "train")


# -- FSH ------------------------------------------------------------------------------------
def _matlab_fusion(X, Y, ax, ay, k):
    """The released trainFSH.m double loop, transcribed (tiny sizes only)."""
    dist = lambda A, B: np.sqrt(np.maximum(((A[:, None] - B[None]) ** 2).sum(-1), 0))
    indx = np.argsort(dist(X, ax), 1, kind="stable")[:, :k]
    indy = np.argsort(dist(Y, ay), 1, kind="stable")[:, :k]
    D3, D4 = dist(ax, ax), dist(ay, ay)
    indax = np.argsort(D3, 1, kind="stable")[:, :k]
    inday = np.argsort(D4, 1, kind="stable")[:, :k]
    D3, D4 = np.exp(-D3 / 2), np.exp(-D4 / 2)
    A1 = np.zeros((len(X), len(ax)))
    A2 = np.zeros_like(A1)
    for m1 in range(len(X)):
        for m2 in range(len(ax)):
            A1[m1, m2] = D3[np.ix_(indx[m1], inday[m2])].sum() / k ** 2
            A2[m1, m2] = D4[np.ix_(indy[m1], indax[m2])].sum() / k ** 2
    return A1, A2


def test_fsh_fusion_graph_equals_the_released_double_loop(rng):
    from crossmodal.methods.fsh import fusion_graphs

    X, Y = _paired(rng, n=30)
    pick = rng.permutation(30)[:8]
    A1, A2, *_ = fusion_graphs(X, Y, X[pick], Y[pick], k=3)
    R1, R2 = _matlab_fusion(X, Y, X[pick], Y[pick], 3)
    assert np.allclose(A1, R1) and np.allclose(A2, R2)


def test_fsh_hash_function_step_is_least_squares(rng):
    X, _ = _paired(rng, n=50)
    B = np.where(rng.standard_normal((5, 50)) >= 0, 1.0, -1.0)
    h = get_method("fsh")(5, ridge=0.0)
    W = h._lsq(X, B)
    ref, *_ = np.linalg.lstsq(X, B.T, rcond=None)
    assert np.allclose(W, ref, atol=1e-10)


def test_fsh_code_steps_maximise_the_objective(rng):
    """The B step maximises the FSH objective over binary B (checked against every single-bit
    flip, with the objective written out with its norms); the Bs step maximises Tr(Bs^T B S)."""
    from crossmodal.methods.fsh import _sign, b_step_scores

    X, Y = _paired(rng, n=15)
    Wx, Wy = rng.standard_normal((6, 4)), rng.standard_normal((4, 4))
    Bs = _sign(rng.standard_normal((4, 5)))
    S = rng.random((15, 5))
    lam = 0.3
    obj = lambda B: np.trace(Bs @ S.T @ B.T) - lam * (np.sum((B - (X @ Wx).T) ** 2) + np.sum((B - (Y @ Wy).T) ** 2))
    B = _sign(b_step_scores(Bs, S, X, Y, Wx, Wy, lam))
    best = obj(B)
    for i in range(4):
        for j in range(15):
            flip = B.copy()
            flip[i, j] *= -1
            assert obj(flip) <= best + 1e-12
    Bs_new = _sign(B @ S)
    for i in range(4):
        for j in range(5):
            flip = Bs_new.copy()
            flip[i, j] *= -1
            assert np.trace(flip.T @ B @ S) <= np.trace(Bs_new.T @ B @ S) + 1e-12


def test_fsh_eta_update_follows_the_released_formula():
    from crossmodal.methods.fsh import eta_update

    Kx, Ky = np.eye(3), 2 * np.eye(3)
    B = np.ones((2, 4))
    Bs = np.ones((2, 3))
    A1, A2 = np.full((4, 3), 0.1), np.full((4, 3), 0.2)
    p1 = 3 - 2 * 4 * 3 * 0.1
    p2 = 6 - 2 * 4 * 3 * 0.2
    want = (0.5 * p1) ** 2 / (0.5 * p1 + 0.5 * p2) ** 2
    assert eta_update(Kx, Ky, B, Bs, A1, A2, 0.5, 0.5) == pytest.approx(min(max(want, 0), 1))


def test_fsh_unified_codes(toy_small):
    tr = toy_small.part("train")
    h = get_method("fsh")(16, seed=1, iters=5, n_anchors=20, n_neighbours=3).fit(tr)
    assert h.unified_codes
    codes = h.encode_pair(tr.image, tr.text_dense())
    assert codes.shape == (len(tr.image), 2) and codes.dtype == np.uint8
    # unified codes of the training pairs agree with the learned training codes B for most bits
    B = np.unpackbits(codes, axis=1)[:, :16].astype(int) * 2 - 1
    assert np.mean(B == h.state["train_codes"]) > 0.8
    uni = evaluate(h, toy_small, database_codes="unified").results
    per = evaluate(h, toy_small, database_codes="per-modality").results
    assert uni["t2i"]["mAP@all"] > 0.35 and uni["i2t"]["mAP@all"] > 0.2  # LSH: 0.18 and 0.23
    assert uni["i2t"]["mAP@all"] != per["i2t"]["mAP@all"]  # the database is coded otherwise
    with pytest.raises(DataError, match="unified"):
        evaluate(get_method("cvh")(8).fit(tr), toy_small, database_codes="unified")


# -- all three ------------------------------------------------------------------------------
FAST = {"cvh": {}, "imh": {"n_neighbours": 5}, "fsh": {"iters": 5, "n_anchors": 20, "n_neighbours": 3}}


@pytest.mark.parametrize("name", sorted(FAST))
def test_beats_chance_on_toy(toy_small, name):
    h = get_method(name)(16, seed=0, **FAST[name]).fit(toy_small.part("train"))
    lsh = get_method("lsh")(16, seed=0).fit(toy_small.part("train"))
    ours, base = evaluate(h, toy_small), evaluate(lsh, toy_small)
    assert np.mean([ours.results[d]["mAP@all"] for d in ("i2t", "t2i")]) > \
        np.mean([base.results[d]["mAP@all"] for d in ("i2t", "t2i")]) + 0.05


@pytest.mark.parametrize("name,extra", [("cvh", []), ("imh", ["max_train=300"]), ("fsh", ["iters=3"])])
def test_cli_train_on_wiki(tmp_path, wiki_dir, name, extra):
    from crossmodal.cli import main

    argv = ["train", name, "--dataset", "wiki", "--data-root", str(wiki_dir), "--bits", "32",
            "--out", str(tmp_path), "--tracker", "none", *extra]
    if name == "fsh":
        argv += ["--database-codes", "unified"]
    assert main(argv) == 0
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1
    assert (runs[0] / "model" / "hasher.json").is_file()
    import json

    report = json.loads((runs[0] / "report.json").read_text())
    assert report["meta"]["database_codes"] == ("unified" if name == "fsh" else "per-modality")
    assert 0.1 < report["results"]["t2i"]["mAP@all"] < 1


def test_options_paths_run(toy_small):
    tr, q = toy_small.part("train"), toy_small.part("query")
    a = get_method("imh")(8, seed=3, max_train=100, n_neighbours=4).fit(tr)
    b = get_method("imh")(8, seed=3, max_train=100, n_neighbours=4).fit(tr)
    assert np.array_equal(a.encode_image(q.image), b.encode_image(q.image))   # seeded subset
    f = get_method("fsh")(8, seed=0, iters=3, n_anchors=15, n_neighbours=3, anchors="kmeans", init="cca").fit(tr)
    assert f.encode_pair(q.image, q.text_dense()).shape == (len(q.image), 1)
    assert 0.0 <= float(f.state["eta"]) <= 1.0


def test_reproduction_script_on_uci(capsys, tmp_path):
    from tests.conftest import _data_dir

    uci = _data_dir("uci-handwritten", "uci_all.mat")
    from experiments.classic_a import load_uci, main

    ds = load_uci(uci)
    assert (len(ds.split.train), len(ds.split.query), len(ds.split.database)) == (1500, 500, 1500)
    assert main(["--uci-root", str(uci), "--methods", "cvh", "--bits", "16", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "| uci-fsh-released | cvh | per-modality | mAP@100 | I→T | 0." in out
    import json

    rows = json.loads((tmp_path / "r.json").read_text())
    assert {r["metric"] for r in rows} == {"mAP@all", "mAP@100"} and len(rows) == 4


def test_cvh_codes_do_not_depend_on_the_blas_thread_count():
    """Past the text rank CVH's eigenvalues are near-equal; its solve runs at one BLAS thread, so
    the codes are the same whatever the thread setting (toy, 32 bits: they differed before)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from crossmodal.data import get_dataset

    ds = get_dataset("toy", seed=0)
    train, query = ds.part("train"), ds.part("query")
    codes = []
    for n in (1, 2):
        with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
            h = get_method("cvh")(32, seed=0).fit(train)
        codes.append((h.encode_image(query.image), h.encode_text(query.text_dense())))
    assert np.array_equal(codes[0][0], codes[1][0]) and np.array_equal(codes[0][1], codes[1][1])
