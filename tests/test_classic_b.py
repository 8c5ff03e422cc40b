"""CMFH and LSSH: core updates against dense references, CLI, unified codes.
(Shapes, seeds and persistence: test_contract.py.)"""

import json

import numpy as np
import pytest

from crossmodal.data import PairedData
from crossmodal.methods import get_method
from crossmodal.methods import cmfh as C
from crossmodal.methods import lssh as L
from crossmodal.retrieval.codes import unpack
from crossmodal.retrieval.evaluate import evaluate


def _pairs(rng, n=60, di=12, dt=5, k=3):
    """Paired data with a shared low-rank factor (so both modalities carry the same signal)."""
    Z = rng.standard_normal((n, k))
    Xi = Z @ rng.standard_normal((k, di)) + 0.1 * rng.standard_normal((n, di))
    Xt = Z @ rng.standard_normal((k, dt)) + 0.1 * rng.standard_normal((n, dt))
    labels = np.eye(3, dtype=np.uint8)[np.argmax(Z, axis=1)]
    return PairedData(image=Xi.astype(np.float32), text=Xt.astype(np.float32), labels=labels)


# -- CMFH ------------------------------------------------------------------------------------
def test_cmfh_objective_decreases_monotonically_after_every_block(rng):
    lam, mu, gam = 0.5, 100.0, 0.01
    X1 = rng.standard_normal((40, 8))
    X2 = rng.standard_normal((40, 4))
    X1 -= X1.mean(0)
    X2 -= X2.mean(0)
    V, P1, P2 = rng.random((40, 6)), rng.random((8, 6)), rng.random((4, 6))
    U1, U2 = rng.random((6, 8)), rng.random((6, 4))
    obj = lambda: C.cmfh_objective(X1, X2, V, U1, U2, P1, P2, lam, mu, gam)  # noqa: E731
    trace = [obj()]
    for _ in range(15):
        U1, U2 = C.update_bases(V, X1, X2, lam, gam)
        trace.append(obj())
        V = C.update_latent(X1, X2, U1, U2, P1, P2, lam, mu, gam)
        trace.append(obj())
        P1, P2 = C.update_projections(V, X1, X2, mu, gam)
        trace.append(obj())
    steps = np.diff(trace)
    assert np.all(steps <= 1e-9 * np.abs(trace[:-1])), steps.max()
    assert trace[-1] < 0.01 * trace[0]


def test_cmfh_fit_history_is_monotone(rng):
    h = get_method("cmfh")(8, seed=0, iters=30, tol=0.0).fit(_pairs(rng))
    obj = np.array([r["objective"] for r in h.history])
    assert len(obj) == 30 and np.all(np.diff(obj) <= 1e-9 * obj[:-1])


def test_cmfh_released_updates_minimise_the_released_objective_blockwise(rng):
    """updates=released (BMC-SDNU CMFH_learn.m): its U and V steps are the least-squares minimisers
    of O_rel = Σ_t α_t (‖X_t - V U_t‖² + μ ‖V - X_t P_t‖² + γ ‖U_t‖² + γ ‖P_t‖²) + γ ‖V‖²
    (α = (λ, 1 - λ)); its P step is the exact minimiser divided by μ² (MATLAB's left-to-right \\)."""
    lam, mu, gam = 0.3, 2.0, 0.05
    X1, X2 = rng.standard_normal((7, 5)), rng.standard_normal((7, 3))
    U1, U2 = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    P1, P2 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    V = rng.standard_normal((7, 4))
    a1, a2 = np.sqrt(lam), np.sqrt(1 - lam)
    design = np.concatenate([a1 * U1.T, a2 * U2.T, a1 * np.sqrt(mu) * np.eye(4), a2 * np.sqrt(mu) * np.eye(4),
                             np.sqrt(gam) * np.eye(4)])
    want = np.stack([np.linalg.lstsq(design, np.concatenate([a1 * x1, a2 * x2, a1 * np.sqrt(mu) * x1 @ P1,
                                                              a2 * np.sqrt(mu) * x2 @ P2, np.zeros(4)]), rcond=None)[0]
                     for x1, x2 in zip(X1, X2)])
    np.testing.assert_allclose(C.released_latent(X1, X2, U1, U2, P1, P2, lam, mu, gam), want, atol=1e-10)
    aug = np.concatenate([V, np.sqrt(gam) * np.eye(4)])   # α_t cancels: ridge γ on U_t
    want_U1 = np.linalg.lstsq(aug, np.concatenate([X1, np.zeros((4, 5))]), rcond=None)[0]
    np.testing.assert_allclose(C.released_bases(V, X1, X2, gam)[0], want_U1, atol=1e-10)

    # P step as MATLAB parses mu * (mu * X1' * X1 + gamma * eye(col)) \ X1' * Y (left to right)
    lhs = mu * (mu * X1.T @ X1 + gam * np.eye(5))
    np.testing.assert_allclose(C.released_projections(V, X1, X2, mu, gam)[0], np.linalg.solve(lhs, X1.T @ V),
                               rtol=1e-10)
    np.testing.assert_allclose(C.released_projections(V, X1, X2, mu, gam)[1] * mu ** 2,
                               C.update_projections(V, X1, X2, mu, gam)[1], rtol=1e-10)


def test_cmfh_released_mode_runs_fixed_sweeps_and_codes_as_released(rng):
    data = _pairs(rng)
    h = get_method("cmfh")(8, seed=0, updates="released", iters=25, tol=0.5).fit(data)
    assert len(h.history) == 25                  # fixed sweeps: tol is not used
    s = h.state
    Xi = data.image.astype(np.float64) - s["image_mean"]
    np.testing.assert_allclose(h.project("image", data.image), Xi @ s["image_P"])   # no mean(V)
    Xt = data.text_dense().astype(np.float64) - s["text_mean"]
    V = C.released_latent(Xi, Xt, s["image_U"], s["text_U"], s["image_P"], s["text_P"], 0.5, 100.0, 0.01)
    np.testing.assert_allclose(h._project_pair(data.image, data.text_dense()), V - s["code_mean"])
    assert get_method("cmfh")(8).config["updates"] == "paper"


def test_cmfh_uniform_init_collapses_on_rows_of_varying_sum_centred_init_does_not():
    """Count-like features whose row sums vary (an item holds 1-3 objects): the official
    all-positive init projects every bit onto the row-sum direction and V stays rank one
    (mAP near chance); the centred init learns the classes."""
    from crossmodal.retrieval.metrics import mean_average_precision

    rng = np.random.default_rng(0)
    n, c = 300, 6
    y = rng.integers(0, c, n)
    count = rng.integers(1, 4, n).astype(float)[:, None]
    Xi = count * rng.random((c, 100))[y] + 0.1 * rng.random((n, 100))
    Xt = count * np.eye(c)[y] + 0.1 * rng.random((n, c))
    data = PairedData(image=Xi.astype(np.float32), text=Xt.astype(np.float32),
                      labels=np.eye(c, dtype=np.uint8)[y])
    share, mAP = {}, {}
    for init in ("uniform", "centred"):
        h = get_method("cmfh")(16, seed=0, init=init, iters=30).fit(data)
        V = h._project_pair(data.image, data.text_dense())
        sv = np.linalg.svd(V - V.mean(0), compute_uv=False) ** 2
        share[init] = sv[0] / sv.sum()
        mAP[init] = mean_average_precision(h.encode_image(data.image), h.encode_text(data.text_dense()),
                                           data.labels, data.labels, 16)
    assert share["uniform"] > 0.98 and share["centred"] < 0.5, share
    assert mAP["uniform"] < 0.3 and mAP["centred"] > 0.7, mAP  # chance: about 1/6


def test_cmfh_closed_form_steps_equal_numpy_least_squares(rng):
    lam, mu, gam = 0.3, 2.0, 0.05
    X1, X2 = rng.standard_normal((7, 5)), rng.standard_normal((7, 3))
    U1, U2 = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    P1, P2 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    V = rng.standard_normal((7, 4))
    # V step, one stacked least-squares problem per row
    design = np.concatenate([np.sqrt(lam) * U1.T, np.sqrt(1 - lam) * U2.T, np.sqrt(mu) * np.eye(4),
                             np.sqrt(mu) * np.eye(4), np.sqrt(gam) * np.eye(4)])
    want = np.stack([np.linalg.lstsq(design, np.concatenate([np.sqrt(lam) * x1, np.sqrt(1 - lam) * x2,
                                                              np.sqrt(mu) * x1 @ P1, np.sqrt(mu) * x2 @ P2,
                                                              np.zeros(4)]), rcond=None)[0]
                     for x1, x2 in zip(X1, X2)])
    np.testing.assert_allclose(C.update_latent(X1, X2, U1, U2, P1, P2, lam, mu, gam), want, atol=1e-10)
    # P step: ridge regression of V on X1
    aug = np.concatenate([X1, np.sqrt(gam / mu) * np.eye(5)])
    want_P1 = np.linalg.lstsq(aug, np.concatenate([V, np.zeros((5, 4))]), rcond=None)[0]
    np.testing.assert_allclose(C.update_projections(V, X1, X2, mu, gam)[0], want_P1, atol=1e-10)
    # U step: ridge regression of X2 on V with weight (1 - λ)
    aug = np.concatenate([V, np.sqrt(gam / (1 - lam)) * np.eye(4)])
    want_U2 = np.linalg.lstsq(aug, np.concatenate([X2, np.zeros((4, 3))]), rcond=None)[0]
    np.testing.assert_allclose(C.update_bases(V, X1, X2, lam, gam)[1], want_U2, atol=1e-10)


# -- LSSH ------------------------------------------------------------------------------------
def test_lssh_sparse_coding_matches_sklearn_lasso(rng):
    from sklearn.linear_model import Lasso

    p, M = 12, 20
    D = rng.standard_normal((p, M))
    X = rng.standard_normal((5, p))
    lam = L.relative_l1_weights(D, X, 0.2)
    S = L.lasso_fista(D, X, lam, iters=4000)
    for x, l, s in zip(X, lam, S):
        # sklearn: (1 / (2 n)) ||x - D w||² + α ||w||₁ with n = p rows  ->  α = λ / p
        ref = Lasso(alpha=l / p, fit_intercept=False, tol=1e-12, max_iter=200000).fit(D, x).coef_
        np.testing.assert_allclose(s, ref, atol=1e-6)
    assert 0 < np.mean(S != 0) < 1


def test_lssh_relative_weight_one_gives_all_zero_codes(rng):
    """At lam = ||Dᵀx||∞ (relative weight 1) the lasso solution is exactly zero: FISTA from zero
    must never leave it; just below, some code is non-zero."""
    D, X = rng.standard_normal((6, 9)), rng.standard_normal((4, 6))
    assert not np.any(L.lasso_fista(D, X, L.relative_l1_weights(D, X, 1.0), iters=50))
    assert np.any(L.lasso_fista(D, X, L.relative_l1_weights(D, X, 0.9), iters=50))


def test_lssh_basis_step_meets_kkt_and_beats_feasible_points(rng):
    X = 3.0 * rng.standard_normal((30, 5))
    S = rng.standard_normal((30, 4))
    B, lam = L.learn_basis(X, S, c=1.0)
    norms = np.sum(B * B, axis=1)
    assert np.all(norms <= 1 + 1e-8) and np.all(lam >= 0)
    # stationarity of the Lagrangian and complementary slackness
    np.testing.assert_allclose((S.T @ S + np.diag(lam)) @ B, S.T @ X, atol=1e-5)
    assert np.all(np.abs(lam * (norms - 1)) < 1e-5)
    assert np.any(lam > 0)  # the constraint binds here (large X)
    f = lambda Bm: np.sum((X - S @ Bm) ** 2)  # noqa: E731
    for _ in range(20):
        R = rng.standard_normal(B.shape)
        R /= np.maximum(np.linalg.norm(R, axis=1, keepdims=True), 1.0)
        assert f(B) <= f(R) + 1e-9
    B_ls = np.linalg.lstsq(S, X, rcond=None)[0]
    assert f(B) <= f(B_ls / np.linalg.norm(B_ls, axis=1, keepdims=True).clip(1.0))


def test_lssh_basis_step_is_least_squares_when_unconstrained(rng):
    X, S = 0.01 * rng.standard_normal((30, 5)), rng.standard_normal((30, 4))
    B, lam = L.learn_basis(X, S, c=1.0)
    np.testing.assert_allclose(B, np.linalg.lstsq(S, X, rcond=None)[0], atol=1e-10)
    assert not np.any(lam)


def test_lssh_pair_code_is_the_latent_step_for_that_pair(rng):
    train = _pairs(rng, n=50)
    h = get_method("lssh")(8, seed=0, n_atoms=16, iters=3, sparse_iters=200).fit(train)
    r = h.config["link_weight"] / h.config["text_weight"]
    Sx = h._image_codes(h._prep_image(train.image))
    T = h._prep_text(train.text)
    A, R = h.state["A"], h.state["R"]
    # Y minimising γ||Y - S R||² + μ||T - Y A||², row by row, via least squares
    design = np.concatenate([np.sqrt(r) * np.eye(8), A.T])
    want = np.stack([np.linalg.lstsq(design, np.concatenate([np.sqrt(r) * s @ R, t]), rcond=None)[0]
                     for s, t in zip(Sx, T)])
    np.testing.assert_allclose(h._project_pair(train.image, train.text), want, atol=1e-8)
    np.testing.assert_allclose(h.project("text", train.text), T @ A.T @ np.linalg.inv(A @ A.T + r * np.eye(8)),
                               atol=1e-10)
    assert all(np.all(np.sum(M * M, axis=1) <= 1 + 1e-8) for M in (h.state["B"], h.state["R"], h.state["A"]))
    assert h.state["image_pca"].shape == (12, 8)


# -- shared behaviour ------------------------------------------------------------------------
FAST = {"cmfh": {"iters": 20}, "lssh": {"n_atoms": 32, "iters": 2, "sparse_iters": 20}}


@pytest.mark.parametrize("method", ["cmfh", "lssh"])
def test_unified_and_per_modality_database_codes_differ_and_both_evaluate(method, toy_small):
    h = get_method(method)(16, seed=0, **FAST[method]).fit(toy_small.part("train"))
    db = toy_small.part("database")
    pair = unpack(h.encode_pair(db.image, db.text_dense()), 16)
    img = unpack(h.encode_image(db.image), 16)
    txt = unpack(h.encode_text(db.text_dense()), 16)
    # a pair code mixes both modalities: it differs from at least one single-modality code
    assert np.any(pair != img) and np.any(pair != txt)
    # (on toy the modalities agree closely; the Wikipedia test below shows the size of the effect)
    uni = evaluate(h, toy_small, database_codes="unified").results
    per = evaluate(h, toy_small, database_codes="per-modality").results
    for d in ("i2t", "t2i"):
        assert 0 < uni[d]["mAP@all"] <= 1 and 0 < per[d]["mAP@all"] <= 1
    assert (uni["i2t"]["mAP@all"], uni["t2i"]["mAP@all"]) != (per["i2t"]["mAP@all"], per["t2i"]["mAP@all"])


def test_cmfh_unified_codes_lift_text_to_image_on_wiki(wiki_dir):
    """The paper's convention matters: on Wikipedia, coding the database pairs from both modalities
    roughly doubles T->I mAP (0.25 -> 0.5)."""
    from crossmodal.data.sources.wiki import load_wiki

    ds = load_wiki(wiki_dir, seed=0, validation_fraction=0.0)
    h = get_method("cmfh")(32, seed=0).fit(ds.part("database"))
    uni = evaluate(h, ds, ks=(50,), database_codes="unified").results
    per = evaluate(h, ds, ks=(50,), database_codes="per-modality").results
    assert uni["t2i"]["mAP@all"] > per["t2i"]["mAP@all"] + 0.2
    assert uni["t2i"]["mAP@50"] > 0.6 and uni["i2t"]["mAP@50"] > 0.23


@pytest.mark.parametrize("method,extra", [("cmfh", []), ("lssh", ["n_atoms=64", "iters=1", "sparse_iters=10"])])
def test_cli_train_on_wiki(method, extra, wiki_dir, tmp_path, capsys):
    from crossmodal.cli import main

    out = tmp_path / "runs"
    argv = ["train", method, *extra, "--dataset", "wiki", "--data-root", str(wiki_dir), "--bits", "32",
            "--out", str(out), "--tracker", "none", "--database-codes", "unified"]
    assert main(argv) == 0, capsys.readouterr().err
    run = next(out.iterdir())
    rep = json.loads((run / "report.json").read_text())
    assert rep["meta"]["method"] == method and rep["meta"]["database_codes"] == "unified"
    assert rep["results"]["t2i"]["mAP@all"] > 0.3
    assert main(["train", method, *extra, "--dataset", "wiki", "--data-root", str(wiki_dir), "--bits", "32",
                 "--out", str(out), "--tracker", "none"]) == 0
