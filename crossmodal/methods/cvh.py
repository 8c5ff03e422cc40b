"""CVH -- Cross-View Hashing (S. Kumar and R. Udupa, "Learning Hash Functions for Cross-View
Similarity Search", IJCAI 2011).

Objective. N training objects, each seen in K = 2 views (image ``x_i``, text ``y_i``, centred),
an object similarity ``W (N, N)`` (diagonal degrees ``D``, Laplacian ``L = D - W``). Each view
gets a linear hash function ``h_k(v) = sign(A_k^T v)``. CVH minimises the similarity-weighted
Hamming distance between the codes of similar objects, summed over every pair of views
(within a view and across views)::

    d = sum_ij W_ij sum_{k,k'} || A_k^T v_i^(k) - A_k'^T v_j^(k') ||^2

relaxed by dropping the sign and kept non-degenerate by uncorrelated unit-variance bits
(``sum_k A_k^T C_kk A_k = I``). Expanding the sum (derivation in the test, which checks it
against the brute-force double sum) gives the trace problem::

    min_A Tr(A^T M A)   s.t.  A^T C A = I,      A = [A_x; A_y]  ((Di + Dt), bits)
    M = [[X^T (L + D) X,   -X^T W Y],            C = [[X^T X + r I,      0     ],
         [-Y^T W X,        Y^T (L + D) Y]] / N        [     0,       Y^T Y + r I]] / N

(up to a factor 2), solved by the generalised symmetric eigenproblem ``M a = lambda C a``:
the ``bits`` eigenvectors of smallest eigenvalue are the columns of A. With ``W = I`` (each
object similar only to itself: the paired training data of the paper's experiments) ``L = 0``
and the eigenvalues are ``1 - rho`` for the canonical correlations ``rho``: CVH is then CCA,
as the paper notes (checked by the tests against :func:`crossmodal.methods.baselines.cca`).

Choices the paper leaves open (ours):

* ``graph``: ``identity`` (default; W = I, the paired-data case = the CCA special case, which is
  also what the MATLAB CVH baseline found in public code collections solves) or
  ``knn``: W = I + (G_image + G_text) / 2 with G the symmetrised binary kNN graph of each view
  (``n_neighbours``), i.e. objects close in either view count as similar.
* ``reg``: ridge on the constraint covariances, relative to their mean variance (the released
  MATLAB code adds 1e-4 to the un-normalised covariance).
* Thresholds at zero after centring by the training means (the paper assumes zero-mean views).
* More bits than canonical directions: the eigenproblem has Di + Dt eigenvectors; beyond the
  r = min(Di, Dt) correlated directions (10 on Wikipedia, whose texts are 10-d LDA) the next
  eigenvectors have ``lambda`` close to 1 and live in one view only (the other view's bit is
  then constant). That is what the relaxation gives; we keep it (no random lift). ``bits``
  must not exceed Di + Dt.

Saved state: ``image_mean (Di,)``, ``text_mean (Dt,)``, ``image_W (Di, bits)``, ``text_W (Dt, bits)``,
``eigenvalues (bits,)``, all float64; codes ``sign((x - mean) @ W)``.

Sources: the paper (sections 3-4); the MATLAB CVH baseline distributed with cross-modal hashing
code collections (e.g. BMC-SDNU/Cross-Modal-Hashing-Retrieval, ``CVH_learn.m`` /
``CVHtrainCCA.m``: CCA-style generalised eigenproblem ``eigs(Cxy Cyy Cxy', Cxx)``).

Differs from the paper / official code:

* The released baseline code (``CVH_learn.m`` / ``CVHtrainCCA.m``) departs from the paper: it
  builds the image eigenproblem ``Cxy Cyy Cxyᵀ a = λ Cxx a`` with Cyy *not* inverted (CCA needs
  ``Cxy Cyy⁻¹ Cxyᵀ``), on un-centred data with an absolute ridge (``Cxx = XᵀX + 1e-4 I``), takes
  the ``bits`` largest eigenvalues with ``eigs``, sets ``Wy = Cyy⁻¹ Cxyᵀ Wx Λ^-1/2`` and thresholds
  un-centred projections at zero. Its eigenproblem has rank Dt (10 on Wikipedia): past the text
  dimension its eigenvalues are ~0, it prints "Retrieved eigenvectors wrong!" when one is <= 0,
  and those bits are arbitrary directions of the null space (text bits: signs of rounding noise).
  The first bit is the mean direction of the un-centred data, constant for every item. We keep the
  paper's method (``eigenproblem: paper``, default); ``eigenproblem: released`` runs the released
  computation (``reg`` is then its absolute ridge on the un-normalised covariances; a
  non-positive eigenvalue's text bit is 0 for every text, as MATLAB's ``>`` compares the real part,
  0, of that column's imaginary projection), checked against the released code under Octave in
  benchmarks/official: bit for bit where every bit is determined (UCI, 64-d texts, up to 64 bits);
  past the text dimension the option's dense symmetric solver and Octave's ``eigs`` (ARPACK's
  non-symmetric path, as the rounded ``Cxy Cyy Cxyᵀ`` is not exactly symmetric) return different,
  equally optimal null-space directions (benchmarks/official/cvh_null_space.py).
* Dense eigen-solver (scipy ``eigh``) on a (Di+Dt)-square problem: exact, no ``eigs``.
* The solve runs at one BLAS thread: past the text rank the eigenvalues are near-equal and
  their eigenvectors followed the order of the sums (toy, 32 bits, seed 0: i2t mAP@all .2983 at
  1 thread, .2978 at 2), so the codes now do not depend on the thread setting.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import linalg

from crossmodal.data import PairedData
from crossmodal.errors import ConfigError
from crossmodal.methods._registry import register_method
from crossmodal.methods.baselines import LinearHasher
from crossmodal.methods.params import Choice, Param, Range
from crossmodal.threads import one_blas_thread


def released_projections(X: np.ndarray, Y: np.ndarray, bits: int, reg: float) -> tuple[np.ndarray, ...]:
    """The released code's CVH (``CVHtrainCCA.m``) on un-centred ``X (N, Di)``, ``Y (N, Dt)``:
    the ``bits`` largest eigenpairs of ``Cxy Cyy Cxyᵀ a = λ Cxx a`` with ``Cxx = XᵀX + reg I``,
    ``Cyy = YᵀY + reg I``, ``Cxy = XᵀY``. Returns ``(Wx (Di, bits), Wy (Dt, bits), λ (bits,))``,
    float64, ``Wy = Cyy⁻¹ Cxyᵀ Wx Λ^-1/2``; a column with λ <= 0 gets ``Wy = 0`` (the released code's
    column is imaginary there; see :meth:`CVH._project`)."""
    Cxx = X.T @ X + reg * np.eye(X.shape[1])
    Cyy = Y.T @ Y + reg * np.eye(Y.shape[1])
    Cxy = X.T @ Y
    A = Cxy @ Cyy @ Cxy.T
    n = X.shape[1]
    evals, Wx = linalg.eigh((A + A.T) / 2, Cxx, subset_by_index=[n - bits, n - 1])
    evals, Wx = evals[::-1], Wx[:, ::-1]
    pos = evals > 0
    Wy = linalg.solve(Cyy, Cxy.T @ Wx, assume_a="pos")
    Wy = np.where(pos, Wy / np.sqrt(np.where(pos, evals, 1.0)), 0.0)
    return Wx, Wy, evals


def knn_affinity(X: np.ndarray, k: int) -> sp.csr_matrix:
    """Symmetrised binary kNN graph of the rows of ``X (N, D)``: ``(N, N)`` CSR float64 with
    ``G_ij = 1`` if j is among the k nearest of i and i among those of j, ``1/2`` if only one
    way; zero diagonal (an item is not its own neighbour)."""
    from crossmodal.graph import knn

    n = X.shape[0]
    k = min(int(k), n - 1)
    idx, _ = knn(np.asarray(X, dtype=np.float32), k + 1)
    rows = np.repeat(np.arange(n), k)
    cols = idx[:, 1:k + 1].reshape(-1)
    G = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    G.setdiag(0)
    G.eliminate_zeros()
    G.data[:] = 1.0
    return ((G + G.T) * 0.5).tocsr()


def cvh_matrices(X: np.ndarray, Y: np.ndarray, W, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """The CVH generalised eigenproblem ``M a = lambda C a`` for centred ``X (N, Di)``,
    ``Y (N, Dt)`` and a symmetric object similarity ``W (N, N)`` (dense or sparse; None = I).

    Returns ``(M, C)``, both ``(Di + Dt, Di + Dt)`` float64 symmetric, divided by N; C is
    block-diagonal (each view's covariance plus ``reg`` times its mean variance).
    """
    n, dx = X.shape
    if W is None:
        WX, WY = X, Y
        deg = np.ones(n)
    else:
        W = sp.csr_matrix(W)
        WX, WY = W @ X, W @ Y
        deg = np.asarray(W.sum(axis=1)).reshape(-1)
    # (L + D) = 2 D - W
    Mxx = 2 * (X * deg[:, None]).T @ X - X.T @ WX
    Myy = 2 * (Y * deg[:, None]).T @ Y - Y.T @ WY
    Mxy = -X.T @ WY
    M = np.block([[Mxx, Mxy], [Mxy.T, Myy]]) / n
    M = (M + M.T) / 2
    Cxx, Cyy = X.T @ X / n, Y.T @ Y / n
    Cxx = Cxx + reg * max(np.trace(Cxx) / dx, 1e-12) * np.eye(dx)
    Cyy = Cyy + reg * max(np.trace(Cyy) / Y.shape[1], 1e-12) * np.eye(Y.shape[1])
    C = linalg.block_diag(Cxx, Cyy)
    return M, C


def cvh_objective(A: np.ndarray, X: np.ndarray, Y: np.ndarray, W) -> float:
    """Relaxed CVH objective ``sum_ij W_ij sum_{k,k'} ||A_k^T v_i^k - A_k'^T v_j^k'||^2 / (2N)``
    for ``A ((Di + Dt), bits)``: equals ``Tr(A^T M A)`` of :func:`cvh_matrices`."""
    M, _ = cvh_matrices(X, Y, W, 0.0)
    return float(np.trace(A.T @ M @ A))


@register_method
class CVH(LinearHasher):
    """Cross-View Hashing: per-view linear projections from one generalised eigenproblem."""

    name = "cvh"
    params = (
        Param("graph", "identity", str, Choice("identity", "knn"),
              "object similarity W: identity (paired data; CVH = CCA) or kNN in either view"),
        Param("n_neighbours", 5, int, Range(1, None), "k of the kNN similarity graph (graph=knn only)"),
        Param("reg", 1e-4, float, Range(0, None),
              "ridge on each view's covariance, relative to its mean variance (eigenproblem=released: absolute)"),
        Param("eigenproblem", "paper", str, Choice("paper", "released"),
              "paper: the joint eigenproblem on centred data; released: the released code's Cxy Cyy Cxyᵀ "
              "(Cyy not inverted), un-centred, absolute ridge (module docstring)"),
    )

    def _fit(self, train: PairedData, valid, tracker) -> None:
        # one BLAS thread: past the text rank the eigenvalues are near-equal and their eigenvectors
        # follow the order of the sums (toy, 32 bits: .2983 at 1 thread, .2978 at 2 before this)
        with one_blas_thread():
            self._solve(train)

    def _solve(self, train: PairedData) -> None:
        X = train.image.astype(np.float64)
        Y = train.text_dense().astype(np.float64)
        if self.config["eigenproblem"] == "released":
            if self.bits > X.shape[1]:
                raise ConfigError(f"cvh: eigenproblem=released has {X.shape[1]} eigenvectors (the image "
                                  f"dimensions); use at most {X.shape[1]} bits")
            Wx, Wy, evals = released_projections(X, Y, self.bits, self.config["reg"])
            self.state = {"image_mean": np.zeros(X.shape[1]), "text_mean": np.zeros(Y.shape[1]),
                          "image_W": Wx, "text_W": Wy, "eigenvalues": evals}
            return
        mx, my = X.mean(axis=0), Y.mean(axis=0)
        X, Y = X - mx, Y - my
        dx, dy = X.shape[1], Y.shape[1]
        if self.bits > dx + dy:
            raise ConfigError(f"cvh: {self.bits} bits but the eigenproblem has only {dx + dy} directions "
                              f"(image {dx} + text {dy} dimensions); use at most {dx + dy} bits")
        W = None
        if self.config["graph"] == "knn":
            k = self.config["n_neighbours"]
            G = (knn_affinity(X, k) + knn_affinity(Y, k)) * 0.5
            W = (G + sp.identity(X.shape[0], format="csr")).tocsr()
        M, C = cvh_matrices(X, Y, W, self.config["reg"])
        evals, A = linalg.eigh(M, C, subset_by_index=[0, self.bits - 1])
        self.state = {"image_mean": mx, "text_mean": my, "image_W": A[:dx], "text_W": A[dx:],
                      "eigenvalues": evals}

    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        P = super()._project(modality, X)
        if modality == "text" and self.config["eigenproblem"] == "released":
            P[:, self.state["eigenvalues"] <= 0] = -1.0  # MATLAB: an imaginary projection is not > 0
        return P
