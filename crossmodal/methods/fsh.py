"""FSH -- Fusion Similarity Hashing (H. Liu, R. Ji, Y. Wu, F. Huang, B. Zhang, "Cross-Modality
Binary Code Learning via Fusion Similarity Hashing", CVPR 2017).

Fusion graph. M anchor pairs ``(a_m, b_m)`` are drawn from the training pairs. Per view, a
Gaussian kernel between anchors, ``K_x = exp(-||a_p - a_q|| / (2 sigma^2))`` (M, M) (and
``K_y`` on the text anchors), and kNN indicator matrices: ``S_x (N, M)`` (the k nearest image
anchors of each training image, each entry 1/k), ``S_y (N, M)`` likewise in text space, and
``T_x, T_y (M, M)`` the same for the anchors themselves. The asymmetric fusion similarity of
item i to anchor m diffuses through the *other* view's neighbourhood of the anchor:

    A_1 = S_x K_x T_y^T,   A_2 = S_y K_y T_x^T,   S = eta A_1 + (1 - eta) A_2     (N, M)

Objective (unified code ``B (bits, N)`` per training pair, anchor codes ``Bs (bits, M)``,
linear hash functions ``W_x (Di, bits)``, ``W_y (Dt, bits)``)::

    max  Tr(Bs S^T B^T) - lambda sum_v ||B - W_v^T X_v||^2      B, Bs in {-1, 1}

solved by alternating closed-form steps (the released MATLAB ``trainFSH.m``, final version):

1. ``B  = sign(Bs S^T + 2 lambda (W_x^T X + W_y^T Y))``
2. ``Bs = sign(B S)``
3. ``W_v = (X_v X_v^T)^-1 X_v B^T`` (least squares; a tiny ridge ``ridge`` is added)
4. view weight: ``P_v = Tr(K_v - Bs^T B A_v)``, ``g = 1 / (1 - lam)``,
   ``eta = (lam P_1)^g / (lam P_1 + lam P_2)^g`` (the code's formula, clipped to [0, 1]).

Codes. A query of one modality: ``sign(W_v^T x)``. A database *pair* (``unified_codes``):
the B-step applied to it, ``sign(Bs s^T + 2 lambda (W_x^T x + W_y^T y))`` with ``s`` its fused
similarity to the anchors (computed from its features exactly as for training items).

Choices the paper leaves open / the released code fixes (ours follow the code):

* Rows L2-normalised then centred by the training means (``testFSH.m``).
* Anchors: ``anchors=random`` samples ``n_anchors`` training pairs (the code's default,
  ``opt.km = 1``); ``kmeans`` clusters the concatenated features (10 Lloyd iterations, as
  ``litekmeans(..., 'MaxIter', 10)``).
* Kernel on the (unsquared) Euclidean distance with sigma = 1, as ``EuDist2(.., 1)`` then
  ``exp(-D / 2)`` in the code.
* Initialisation: random Gaussian ``W_x, W_y`` (``opt.cca = 0``); ``init=cca`` starts from CCA.
* ``eta`` starts at 0.5; the update is the code's (it is not a normalised weighting); values
  outside [0, 1] (P_1 and P_2 of opposite signs) are clipped.

Sources: the paper (section 3); the authors' MATLAB re-implementation Lyn-L/FSH (``trainFSH.m``,
``testFSH.m`` with ``k = 10, Nsamp = 50, iter = 100, lambda = 300, lam = 0.5`` on UCI; its
``mAP.m`` is mAP@100 over the training set as database, coded per modality). The README says
the original code could not be released and this version "gives similar results".

Differs from the paper / official code: the double loop building A_1, A_2 is the matrix product
above (equal, tested); a ridge of ``ridge`` times the mean variance in the least-squares steps;
eta clipped; a fixed seed for anchors and initialisation.

Ablation (``experiments/classic_a.py`` protocols, 32 bits, mean of 3 seeds; notes/classic-a.md):
at the released ``lambda = 300`` the fusion-graph term changes nothing measurable (Wikipedia
mAP@all I->T 0.2487 / T->I 0.2542 vs 0.2482 / 0.2552 with ``lambda = 1e9``, i.e. graph off):
``2 lambda (W_x^T x + W_y^T y)`` (mean magnitude 658 on Wikipedia, 32 bits) swamps ``Bs s^T``
(mean 29; the fused similarities lie in [0.55, 0.71]): 99.6 % of the B step's signs are those of
the regression term alone. With ``lambda <= 1`` the
graph term dominates and, the fused similarity being non-negative, ``Bs = sign(B S)`` gives every
anchor the same code and every item follows: mAP falls to chance (0.11 on Wikipedia and UCI).
FSH as released therefore behaves as alternating discrete regression to one code per pair.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from crossmodal.data import PairedData
from crossmodal.methods._registry import register_method
from crossmodal.methods.base import Hasher
from crossmodal.methods.params import Choice, Param, Range


def sqdist(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, m)`` float64 between rows of ``A (n, d)`` and ``B (m, d)``."""
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T
    return np.maximum(d, 0)


def knn_indicator(D: np.ndarray, k: int) -> np.ndarray:
    """``(n, m)`` float64: 1/k at the k smallest entries of each row of the distances ``D (n, m)``
    (ties broken by column index, as MATLAB's stable ``sort``)."""
    idx = np.argsort(D, axis=1, kind="stable")[:, :k]
    S = np.zeros(D.shape)
    np.put_along_axis(S, idx, 1.0 / k, axis=1)
    return S


def fusion_graphs(X, Y, ax, ay, k: int, sigma: float = 1.0):
    """FSH's asymmetric fusion similarities of items ``X (N, Di)``, ``Y (N, Dt)`` to the anchors
    ``ax (M, Di)``, ``ay (M, Dt)``.

    Returns ``(A1, A2, Kx, Ky, G1, G2)``: ``A1 = S_x G1``, ``A2 = S_y G2`` (N, M) with
    ``G1 = K_x T_y^T``, ``G2 = K_y T_x^T`` (M, M) and the anchor kernels ``K_x, K_y`` (M, M).
    """
    Dax, Day = np.sqrt(sqdist(ax, ax)), np.sqrt(sqdist(ay, ay))
    Kx, Ky = np.exp(-Dax / (2 * sigma ** 2)), np.exp(-Day / (2 * sigma ** 2))
    G1 = Kx @ knn_indicator(Day, k).T
    G2 = Ky @ knn_indicator(Dax, k).T
    A1 = knn_indicator(sqdist(X, ax), k) @ G1
    A2 = knn_indicator(sqdist(Y, ay), k) @ G2
    return A1, A2, Kx, Ky, G1, G2


def kmeans(Z: np.ndarray, m: int, iters: int, rng) -> np.ndarray:
    """Lloyd's k-means of the rows of ``Z (N, D)``: ``(m, D)`` centres (empty clusters keep their centre)."""
    C = Z[rng.choice(Z.shape[0], m, replace=False)].copy()
    for _ in range(iters):
        lab = np.argmin(sqdist(Z, C), axis=1)
        counts = np.bincount(lab, minlength=m)
        sums = np.zeros_like(C)
        np.add.at(sums, lab, Z)
        ok = counts > 0
        C[ok] = sums[ok] / counts[ok, None]
    return C


def eta_update(Kx, Ky, B, Bs, A1, A2, lam: float, eta: float) -> float:
    """The released code's view-weight step: ``P_v = Tr(K_v - Bs^T B A_v)``,
    ``eta = (lam P_1)^g / (lam (P_1 + P_2))^g``, ``g = 1 / (1 - lam)``; clipped to [0, 1]
    (``eta`` is returned unchanged when ``P_1 + P_2 = 0``). B (bits, N), Bs (bits, M)."""
    p1 = np.trace(Kx) - float(np.sum((B @ A1) * Bs))
    p2 = np.trace(Ky) - float(np.sum((B @ A2) * Bs))
    if p1 + p2 == 0:
        return eta
    g = 1.0 / (1.0 - lam)
    ratio = p1 / (p1 + p2)          # (lam P1)^g / (lam (P1 + P2))^g: lam cancels
    val = ratio ** round(g) if float(g).is_integer() else abs(ratio) ** g
    return float(np.clip(val, 0.0, 1.0))


def _sign(A: np.ndarray) -> np.ndarray:
    return np.where(A >= 0, 1.0, -1.0)


def b_step_scores(Bs, S, X, Y, Wx, Wy, lam: float) -> np.ndarray:
    """``(bits, N)`` real scores whose signs maximise ``Tr(Bs S^T B^T) - lam sum_v ||B - W_v^T X_v||^2``
    over ``B`` in {-1, 1}: ``Bs S^T + 2 lam (W_x^T X + W_y^T Y)``. Bs (bits, M), S (N, M),
    X (N, Di), Y (N, Dt), W_x (Di, bits), W_y (Dt, bits)."""
    return Bs @ S.T + 2 * lam * (X @ Wx + Y @ Wy).T


@register_method
class FSH(Hasher):
    """Fusion Similarity Hashing: anchor fusion graph, alternating discrete optimisation."""

    name = "fsh"
    unified_codes = True
    params = (
        Param("n_anchors", 50, int, Range(2, None), "M: anchor pairs of the fusion graph (Nsamp)"),
        Param("n_neighbours", 10, int, Range(1, None), "k: nearest anchors per item and per anchor"),
        Param("iters", 100, int, Range(1, None), "alternating-optimisation iterations"),
        Param("regression_weight", 300.0, float, Range(0, None), "λ: weight of the linear hash-function fit"),
        Param("fusion_exponent", 0.5, float, Range(0, 1, low_open=True, high_open=True),
              "λ' of the view-weight update, g = 1/(1-λ')"),
        Param("sigma", 1.0, float, Range(0, None, low_open=True), "bandwidth of the anchor Gaussian kernels"),
        Param("anchors", "random", str, Choice("random", "kmeans"), "anchor choice: random pairs or k-means centres"),
        Param("init", "random", str, Choice("random", "cca"), "initial hash functions"),
        Param("normalize", True, bool, None, "L2-normalise feature rows before centring (released code)"),
        Param("ridge", 1e-6, float, Range(0, None), "ridge of the least-squares steps, relative to the mean variance"),
    )

    # -- preprocessing -------------------------------------------------------------------
    def _prep(self, modality: str, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.config["normalize"]:
            norm = np.linalg.norm(X, axis=1, keepdims=True)
            X = X / np.where(norm > 0, norm, 1.0)
        return X - self.state[f"{modality}_mean"]

    def _lsq(self, X: np.ndarray, B: np.ndarray) -> np.ndarray:
        """``(X^T X + r I)^-1 X^T B^T`` for ``X (N, D)``, ``B (bits, N)``: ``(D, bits)``."""
        C = X.T @ X
        C = C + self.config["ridge"] * max(np.trace(C) / C.shape[0], 1e-12) * np.eye(C.shape[0])
        return linalg.solve(C, X.T @ B.T, assume_a="pos")

    def _fit(self, train: PairedData, valid, tracker) -> None:
        c = self.config
        rng = np.random.default_rng(self.seed)
        self.state = {"image_mean": 0.0, "text_mean": 0.0}      # _prep then only normalises
        X, Y = self._prep("image", train.image), self._prep("text", train.text_dense())
        self.state = {"image_mean": X.mean(0), "text_mean": Y.mean(0)}
        X, Y = X - self.state["image_mean"], Y - self.state["text_mean"]
        n, m, k = X.shape[0], min(c["n_anchors"], X.shape[0]), c["n_neighbours"]
        k = min(k, m)
        if c["anchors"] == "random":
            pick = rng.permutation(n)[:m]
            ax, ay = X[pick], Y[pick]
        else:
            Z = kmeans(np.hstack([X, Y]), m, 10, rng)
            ax, ay = Z[:, : X.shape[1]], Z[:, X.shape[1]:]
        A1, A2, Kx, Ky, G1, G2 = fusion_graphs(X, Y, ax, ay, k, c["sigma"])
        if c["init"] == "cca":
            from crossmodal.methods.cvh import cvh_matrices

            M, C = cvh_matrices(X, Y, None, 1e-6)
            _, V = linalg.eigh(M, C, subset_by_index=[0, min(self.bits, M.shape[0]) - 1])
            if V.shape[1] < self.bits:
                V = np.hstack([V, rng.standard_normal((V.shape[0], self.bits - V.shape[1]))])
            Wx, Wy = V[: X.shape[1]], V[X.shape[1]:]
        else:
            Wx = rng.standard_normal((X.shape[1], self.bits))
            Wy = rng.standard_normal((Y.shape[1], self.bits))
        Bs = (ay @ Wy).T                   # (bits, M): real-valued at the start, as in the code
        lam, eta = c["regression_weight"], 0.5
        self.history = []
        for it in range(c["iters"]):
            S = eta * A1 + (1 - eta) * A2
            B = _sign(b_step_scores(Bs, S, X, Y, Wx, Wy, lam))
            Bs = _sign(B @ S)
            Wx, Wy = self._lsq(X, B), self._lsq(Y, B)
            eta = eta_update(Kx, Ky, B, Bs, A1, A2, c["fusion_exponent"], eta)
            if tracker is not None and (it + 1) % 10 == 0:
                tracker.log({"fsh/eta": eta}, step=it + 1)
        self.history.append({"eta": eta})
        self.state.update({"image_W": Wx, "text_W": Wy, "anchor_codes": Bs, "anchor_image": ax, "anchor_text": ay,
                           "graph_image": G1, "graph_text": G2, "eta": np.array(eta),
                           "train_codes": B.T.astype(np.int8)})

    def fused_similarity(self, Xi: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        """``(N, M)`` fused similarity of preprocessed pairs to the anchors (the ``S`` of training)."""
        s = self.state
        k = min(self.config["n_neighbours"], s["anchor_image"].shape[0])
        eta = float(s["eta"])
        A1 = knn_indicator(sqdist(Xi, s["anchor_image"]), k) @ s["graph_image"]
        A2 = knn_indicator(sqdist(Xt, s["anchor_text"]), k) @ s["graph_text"]
        return eta * A1 + (1 - eta) * A2

    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        return self._prep(modality, X) @ self.state[f"{modality}_W"]

    def _project_pair(self, Xi: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        Pi, Pt = self._prep("image", Xi), self._prep("text", Xt)
        S = self.fused_similarity(Pi, Pt)
        s = self.state
        lam = self.config["regression_weight"]
        return b_step_scores(s["anchor_codes"], S, Pi, Pt, s["image_W"], s["text_W"], lam).T

    def _get_state(self):
        """Saved arrays: ``image_mean (Di,)``, ``text_mean (Dt,)``, ``image_W (Di, bits)``,
        ``text_W (Dt, bits)``, ``anchor_codes (bits, M)``, ``anchor_image (M, Di)``,
        ``anchor_text (M, Dt)``, ``graph_image``, ``graph_text (M, M)`` (K_x T_y^T, K_y T_x^T),
        ``eta ()`` float64, ``train_codes (N, bits)`` int8 (the learned B); float64 unless noted."""
        return {k: np.asarray(v) for k, v in self.state.items()}

    def _set_state(self, state):
        self.state = dict(state)
