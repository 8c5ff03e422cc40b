"""LSSH: Latent Semantic Sparse Hashing (Zhou, Ding, Guo, SIGIR 2014).

Images are sparse-coded over a learned dictionary, texts are factorised onto latent
concepts, and the two are linked in one latent space whose signs are the codes. With
preprocessed training images ``X (N, p)`` and texts ``T (N, Dt)`` (see below), sparse codes
``S (N, M)``, image dictionary ``B (M, p)``, link matrix ``R (M, bits)``, text basis
``A (bits, Dt)`` and latent text representation ``Y (N, bits)`` (row-sample transpose of
the paper's notation; official-code names, paper names in brackets)::

    O = ||X - S B||² + γ ||Y - S R||² + μ ||T - Y A||² + 2 Σ_n ρ_n ||s_n||₁
        s.t. every row (atom) of B, R and A has ||·||₂ ≤ 1

    ρ (paper λ): sparsity; γ (paper γ, official ``lambda``): link; μ: text factorisation.
    (The factor 2 is SLEP's scaling: its lasso is ½||·||² + ρ_n||s||₁, as in the official S step.)

Alternating updates (official order), ``iters`` times after an initial sparse coding of X:

* Y = (γ/μ S R + T Aᵀ) (A Aᵀ + γ/μ I)⁻¹                 (closed form)
* A = argmin ||T - Y A||², rows of A in the unit ball    (Lagrange dual, Lee et al. NIPS 2007)
* S = argmin ½||[x; √γ y] - [B; √γ R]ᵀ s||² + ρ_n ||s||₁  per pair, batched FISTA
* B = argmin ||X - S B||², R = argmin ||Y - S R||²    (Lagrange dual, unit-ball atoms)

The ℓ1 weight is relative, as in the official code (SLEP ``LeastR`` with ``rFlag = 1``): for a
sample x coded over dictionary D, ρ_n = ``sparsity`` × ||Dᵀx||∞ (the smallest weight at which
its code would be all zero), so every sample keeps some atoms.

Preprocessing (official ``solveLSSH.m`` / ``preprocessingData.m``): both modalities are
centred with the training means; images are projected onto their top ``bits`` principal
directions (PCA to the code length); each image and each text vector is scaled to unit norm.

Codes (official ``LSSHcoding.m``): an image query is sparse-coded over B alone and gets
``sign(s R)``; a text query gets ``sign(t Aᵀ (A Aᵀ + γ/μ I)⁻¹)``; a database *pair* (the
unified code) gets ``sign((γ/μ s R + t Aᵀ)(A Aᵀ + γ/μ I)⁻¹)`` with s its image's code over B
alone (the Y step for that pair). No threshold other than 0.

Sources: the paper (objective, alternating scheme, unified codes); the authors' MATLAB release
(``solveLSSH.m``, ``LSSHcoding.m``, ``preprocessingData.m``, ``l2ls_learn_basis_dual.m``, Version
1.0 Nov 2013, Jile Zhou and Yuchen Guo, as kept in BMC-SDNU/Cross-Modal-Hashing-Retrieval) for
the preprocessing, 512 atoms, 20 outer iterations, the relative ℓ1 weight, randn initialisation
and the coding step; ``LSSH_LM.m`` / ``train_lssh.m`` of the same release for μ = 0.5, ρ = 0.2,
γ = 1.

Choices the paper leaves open (ours, stated):
  * Sparse coding: batched FISTA with a constant step 1/L (L = largest eigenvalue of the
    dictionary's Gram matrix), ``sparse_iters`` iterations from zero, all samples at once (the
    gradient through DᵀD or through D and Dᵀ, whichever is cheaper). The official code runs 30
    iterations of SLEP's accelerated gradient with Nemirovski's line search, one sample at a
    time; both are truncated solvers of the same lasso (tested against scikit-learn's exact
    ``Lasso``).
  * Dictionary / basis steps: the Lagrange dual of Lee et al. solved with L-BFGS-B (the official
    code uses MATLAB ``fmincon``), warm-started across iterations; a ridge of 1e-10 × mean
    diagonal keeps the Gram matrix invertible when an atom is unused (its row then stays 0).
  * Initialisation: B, R, A standard normal from the seed (the official code seeds MATLAB's
    ``randn('state', 1)``; we use the hasher's seed).

Differs from the official code: only in the solvers above (NumPy instead of MATLAB; the
sparse-coding products run in float32, everything else in float64); the objective, preprocessing,
hyper-parameters and coding are the official ones.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from crossmodal.data import PairedData
from crossmodal.methods._registry import register_method
from crossmodal.methods.base import Hasher
from crossmodal.methods.params import Param, Range


def relative_l1_weights(D: np.ndarray, X: np.ndarray, ratio: float) -> np.ndarray:
    """``(N,)`` ℓ1 weights ``ratio × ||Dᵀx_n||∞`` for samples ``X (N, p)`` over ``D (p, M)``
    (SLEP's ``rFlag = 1``: the weight as a fraction of each sample's λ_max)."""
    return ratio * np.abs(X @ D).max(axis=1)


def lasso_fista(D: np.ndarray, X: np.ndarray, lam: np.ndarray, iters: int, S0: np.ndarray | None = None) -> np.ndarray:
    """Batched lasso: for each row x_n of ``X (N, p)``, ``s_n`` minimising
    ``½||x_n - D s_n||² + lam[n] ||s_n||₁`` over dictionary ``D (p, M)`` (columns = atoms).

    FISTA with constant step 1/L, L = λ_max(DᵀD); ``iters`` iterations from ``S0`` (zero by
    default). Computes in ``X``'s float dtype (float32 halves the time of the (N, M) x (M, M)
    products that dominate); returns ``S (N, M)`` of that dtype. All samples advance together.
    """
    dt = X.dtype.type if X.dtype in (np.float32, np.float64) else np.float64
    D = D.astype(dt, copy=False)
    G = D.T @ D
    C = X.astype(dt, copy=False) @ D
    L = max(float(np.linalg.eigvalsh(G.astype(np.float64))[-1]), 1e-12)
    # Z G costs N M² per iteration; (Z Dᵀ) D costs 2 N M p, cheaper when p < M / 2
    gram = (lambda Z: Z @ G) if 2 * D.shape[0] >= D.shape[1] else (lambda Z: (Z @ D.T) @ D)
    thr = (np.asarray(lam, dtype=dt) * dt(1.0 / L))[:, None]  # the step's factor: exact zeros at λ_max
    S = np.zeros((len(X), D.shape[1]), dtype=dt) if S0 is None else S0.astype(dt)
    Z, t = S.copy(), 1.0
    for _ in range(iters):
        W = Z - (gram(Z) - C) * dt(1.0 / L)
        S_new = np.sign(W) * np.maximum(np.abs(W) - thr, 0.0)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        Z = S_new + dt((t - 1.0) / t_new) * (S_new - S)
        S, t = S_new, t_new
    return S


def learn_basis(X: np.ndarray, S: np.ndarray, c: float = 1.0,
                dual0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Basis ``B (M, p)`` minimising ``||X - S B||²`` subject to ``||B[j]||² <= c`` for every row
    (atom) j, for data ``X (N, p)`` and codes ``S (N, M)``.

    Lagrange dual (Lee, Battle, Raina, Ng, NIPS 2007): B(λ) = (SᵀS + diag λ)⁻¹ SᵀX, the dual
    maximised over λ >= 0 with L-BFGS-B. Returns ``(B, λ)``; pass λ back as ``dual0`` to warm-start.
    """
    K = S.T @ S
    Cm = S.T @ X
    M = len(K)
    ridge = 1e-10 * max(float(np.trace(K)) / M, 1e-12)
    K = K + ridge * np.eye(M)

    def solve(lam):
        return np.linalg.solve(K + np.diag(lam), Cm)

    # unconstrained least squares already feasible: done (the dual optimum is λ = 0)
    B0 = solve(np.zeros(M))
    if np.all(np.sum(B0 * B0, axis=1) <= c * (1 + 1e-9)):
        return B0, np.zeros(M)

    def neg_dual(lam):
        Bl = solve(lam)
        # -D(λ) + const = tr(Cᵀ(K+Λ)⁻¹C) + c Σλ ; gradient c - ||B_j||²
        f = float(np.sum(Cm * Bl)) + c * float(lam.sum())
        g = c - np.sum(Bl * Bl, axis=1)
        return f, g

    x0 = np.full(M, 1.0) if dual0 is None else np.maximum(dual0, 1e-8)
    res = optimize.minimize(neg_dual, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * M,
                            options={"maxiter": 500, "ftol": 1e-10, "gtol": 1e-7})
    lam = res.x
    B = solve(lam)
    # guard the constraint against the solver's tolerance
    norms = np.sqrt(np.sum(B * B, axis=1))
    B = B / np.maximum(norms / np.sqrt(c), 1.0)[:, None]
    return B, lam


def _unit_rows(X: np.ndarray) -> np.ndarray:
    n = np.sqrt(np.sum(X * X, axis=1, keepdims=True))
    return X / np.maximum(n, 1e-12)


@register_method
class LSSH(Hasher):
    """Sparse coding of images + matrix factorisation of texts, linked in one latent space."""

    name = "lssh"
    unified_codes = True
    params = (
        Param("sparsity", 0.2, float, Range(0, 1, low_open=True, high_open=True),
              "ρ (paper λ): ℓ1 weight as a fraction of each sample's λ_max = ||Dᵀx||∞"),
        Param("link_weight", 1.0, float, Range(0, None, low_open=True),
              "γ (official 'lambda'): weight of ||Y - S R||², the image-to-latent link"),
        Param("text_weight", 0.5, float, Range(0, None, low_open=True),
              "μ: weight of the text factorisation ||T - Y A||²"),
        Param("n_atoms", 512, int, Range(1, None), "M: dictionary atoms for the image sparse codes"),
        Param("iters", 20, int, Range(0, None), "outer alternating iterations (official maxOutIter)"),
        Param("sparse_iters", 30, int, Range(1, None), "FISTA iterations of every sparse-coding step"),
        Param("image_pca", True, bool, None, "project centred images onto their top `bits` principal "
              "directions before coding (official); false keeps all dimensions"),
    )

    # -- preprocessing ---------------------------------------------------------------------
    def _prep_image(self, X: np.ndarray) -> np.ndarray:
        s = self.state
        return _unit_rows((X.astype(np.float64) - s["image_mean"]) @ s["image_pca"])

    def _prep_text(self, X: np.ndarray) -> np.ndarray:
        return _unit_rows(X.astype(np.float64) - self.state["text_mean"])

    def _image_codes(self, Xp: np.ndarray) -> np.ndarray:
        """Sparse codes ``(N, M)`` of preprocessed images over the image dictionary B alone."""
        D = self.state["B"].T
        lam = relative_l1_weights(D, Xp, self.config["sparsity"])
        return lasso_fista(D, Xp.astype(np.float32), lam, self.config["sparse_iters"]).astype(np.float64)

    def _latent_solve(self) -> np.ndarray:
        A, r = self.state["A"], self.config["link_weight"] / self.config["text_weight"]
        return np.linalg.inv(A @ A.T + r * np.eye(len(A)))

    # -- training ----------------------------------------------------------------------------
    def _fit(self, train: PairedData, valid, tracker) -> None:
        c = self.config
        rho, gam, mu = c["sparsity"], c["link_weight"], c["text_weight"]
        X = train.image.astype(np.float64)
        T = train.text_dense().astype(np.float64)
        mi, mt = X.mean(axis=0), T.mean(axis=0)
        Xc = X - mi
        if c["image_pca"]:
            w, U = np.linalg.eigh(np.cov(Xc, rowvar=False))
            P = U[:, np.argsort(w)[::-1][: min(self.bits, X.shape[1])]]
        else:
            P = np.eye(X.shape[1])
        self.state = {"image_mean": mi, "text_mean": mt, "image_pca": P}
        Xp, Tp = self._prep_image(X), self._prep_text(T)
        rng = np.random.default_rng(self.seed)
        M = c["n_atoms"]
        A = rng.standard_normal((self.bits, T.shape[1]))
        B = rng.standard_normal((M, Xp.shape[1]))
        R = rng.standard_normal((M, self.bits))
        S = lasso_fista(B.T, Xp.astype(np.float32), relative_l1_weights(B.T, Xp, rho),
                        c["sparse_iters"]).astype(np.float64)
        r = gam / mu
        dA = dB = dR = None
        self.history = []
        for it in range(c["iters"]):
            Y = np.linalg.solve(A @ A.T + r * np.eye(self.bits), (r * S @ R + Tp @ A.T).T).T
            A, dA = learn_basis(Tp, Y, 1.0, dA)
            D = np.concatenate([B.T, np.sqrt(gam) * R.T])          # (p + bits, M)
            Z = np.concatenate([Xp, np.sqrt(gam) * Y], axis=1)       # (N, p + bits)
            lam = relative_l1_weights(D, Z, rho)
            S = lasso_fista(D, Z.astype(np.float32), lam, c["sparse_iters"]).astype(np.float64)
            B, dB = learn_basis(Xp, S, 1.0, dB)
            R, dR = learn_basis(Y, S, 1.0, dR)
            rec = {"iter": it + 1,
                   "sparse_error": float(np.sum((Xp - S @ B) ** 2)),
                   "link_error": float(np.sum((Y - S @ R) ** 2)),
                   "text_error": float(np.sum((Tp - Y @ A) ** 2)),
                   "l1": float(np.abs(S).sum()),
                   "nonzero_fraction": float(np.mean(S != 0))}
            self.history.append(rec)
            if tracker is not None:
                tracker.log(rec, step=it + 1)
        self.state.update(B=B, R=R, A=A)

    # -- coding ------------------------------------------------------------------------------
    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        if modality == "image":
            return self._image_codes(self._prep_image(X)) @ self.state["R"]
        return self._prep_text(X) @ self.state["A"].T @ self._latent_solve()

    def _project_pair(self, Xi: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        r = self.config["link_weight"] / self.config["text_weight"]
        Sx = self._image_codes(self._prep_image(Xi))
        rhs = r * Sx @ self.state["R"] + self._prep_text(Xt) @ self.state["A"].T
        return rhs @ self._latent_solve()

    def _get_state(self) -> dict[str, np.ndarray]:
        """``image_mean (Di,)``, ``text_mean (Dt,)``, ``image_pca (Di, p)`` (p = bits, or Di
        without PCA), ``B (M, p)`` image dictionary, ``R (M, bits)`` link, ``A (bits, Dt)`` text
        basis; float64."""
        return dict(self.state)

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.state = dict(state)
