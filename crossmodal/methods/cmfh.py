"""CMFH: Collective Matrix Factorization Hashing (Ding, Guo, Zhou, CVPR 2014).

Both modalities of a training pair are factorised onto ONE latent representation, and each
modality also learns a linear projection onto it (for out-of-sample queries). With the
centred training features ``X1 (N, Di)`` (images) and ``X2 (N, Dt)`` (texts), the latent
representation ``V (N, bits)``, bases ``U1 (bits, Di)``, ``U2 (bits, Dt)`` and projections
``P1 (Di, bits)``, ``P2 (Dt, bits)`` (row-sample transpose of the paper's notation)::

    O = λ ||X1 - V U1||² + (1 - λ) ||X2 - V U2||²
        + μ (||V - X1 P1||² + ||V - X2 P2||²)
        + γ (||U1||² + ||U2||² + ||P1||² + ||P2||² + ||V||²)        (squared Frobenius norms)

Alternating updates (each the exact minimiser of O over one block, so O never increases),
in the order of the official code (U, then V, then P)::

    U1 = (VᵀV + γ/λ I)⁻¹ VᵀX1            U2 = (VᵀV + γ/(1-λ) I)⁻¹ VᵀX2
    V  = (λ X1 U1ᵀ + (1-λ) X2 U2ᵀ + μ (X1 P1 + X2 P2)) (λ U1 U1ᵀ + (1-λ) U2 U2ᵀ + (2μ + γ) I)⁻¹
    P1 = (X1ᵀX1 + γ/μ I)⁻¹ X1ᵀV          P2 = (X2ᵀX2 + γ/μ I)⁻¹ X2ᵀV

Codes (the authors' evaluation, see "Sources"): training pairs get ``sign(V - mean(V))``, the
*unified* code of the pair; a query of one modality gets ``sign(X̃ P - mean(V))`` with X̃ centred
by the training means. ``_project_pair`` re-solves the V step for given pairs with the learned
U, P fixed (for the training pairs this is the fixed point of the last V update), so a
database of pairs is coded exactly as the paper codes its training set.

Sources:
  * the paper (objective, the alternating scheme, λ = 0.5, μ = 100, γ = 0.01, unified codes for
    the database = training pairs, projections for queries);
  * the authors' MATLAB release, ``solveCMFH.m`` (Version 1.0, Oct 2013, Yuchen Guo): random
    uniform initialisation of V and P, update order U -> V -> P, stopping when the objective
    drops by less than a threshold; and the accompanying demo / the authors' follow-up code
    (OCMFH ``main_OCMFH.m``, LSSH ``LSSH_LM.m``) for the coding step
    ``sign(V - mean(V))`` / ``sign(P x - mean(V))``.

Choices the paper leaves open (ours, stated):
  * Stopping: at most ``iters`` sweeps, stopping early once the relative decrease of O is below
    ``tol`` (the official code stops on an absolute decrease of 0.01 of a differently scaled
    objective).
  * Initialisation (``init``): ``uniform`` (default): V and P uniform in [0, 1) from the seed,
    as the official code; ``centred``: uniform in [-0.5, 0.5). With features whose rows do not
    sum to a constant (raw pixels, word counts: the toy data), the all-positive P of ``uniform``
    projects every bit onto the centred row-sum direction ("how much ink / how many words"), and
    the μ-coupled V <-> P alternation keeps it there: on toy (768-d pixels, 9-d word counts) V is
    rank one (99.9 % of its energy) and every bit codes that one direction, mAP at chance, still
    after 3,000 sweeps. Wikipedia's rows (L1-normalised SIFT histograms, LDA topic proportions)
    sum to 1, so that direction vanishes on centring and ``uniform`` is harmless there.

Differs from the official code:
  * The official ``solveCMFH.m`` uses γ instead of γ/λ, γ/(1-λ), γ/μ inside the U and P updates,
    i.e. exact block minimisers of an objective whose regularisers are weighted λγ‖U1‖²,
    (1-λ)γ‖U2‖², μγ‖P‖²; its printed objective uses non-squared norms. We keep the paper's
    objective and its exact block minimisers (monotone decrease, tested). With γ = 0.01 the
    difference is negligible on Wikipedia (P's ridge 1e-4 vs 1e-2 against XᵀX ~ 1e-1).
  * The copy in BMC-SDNU/Cross-Modal-Hashing-Retrieval (``CMFH_learn.m``, Version 2.0, July 2015,
    the TKDE manuscript's objective) departs further from the CVPR paper: it weights the projection
    terms by λ and 1 - λ as well, ``O_rel = Σ_t α_t (‖X_t - V U_t‖² + μ ‖V - X_t P_t‖² + γ ‖U_t‖²
    + γ ‖P_t‖²) + γ ‖V‖²`` (α = (λ, 1 - λ)), whose exact block minimisers are its U and V updates
    ``U_t = (VᵀV + γ I)⁻¹ VᵀX_t`` and ``V = Σ_t α_t X_t (U_tᵀ + μ P_t) (Σ_t α_t U_t U_tᵀ + (μ + γ) I)⁻¹``.
    Its P update, written ``mu * (mu * X1' * X1 + gamma * eye(col)) \\ X1' * Y``, parses left to right
    as ``(μ (μ XᵀX + γ I))⁻¹ XᵀV``: the exact minimiser divided by μ² (1e4 at μ = 100), so the
    V step's projection term ``μ X P`` is μ² times weaker than the objective says and V is close
    to the ridge-shrunk factorisation alone (the signs of X P, the per-modality codes, do not
    depend on the scale). It runs a fixed 25 sweeps;
    its per-modality codes are ``sign(X̃ P)`` without subtracting mean(V) (``CMFH_compress1.m``), its
    pair codes ``sign(V - mean(V))`` from the V step (``CMFH_compress.m``). We keep the paper's
    method (``updates: paper``, default); ``updates: released`` runs that code's updates for exactly
    ``iters`` sweeps (``tol`` unused) and its coding, checked against it under Octave in
    benchmarks/official (``iters=25``): within 0.005 mAP on Wikipedia, and on UCI within the
    seed noise of the two random starts (10 seeds at 32 and 64 bits; the paper updates are up to
    0.12 from it there, at 128 bits).
"""

from __future__ import annotations

import numpy as np

from crossmodal.data import PairedData
from crossmodal.methods._registry import register_method
from crossmodal.methods.base import Hasher
from crossmodal.methods.params import Choice, Param, Range


def _ridge_solve(G: np.ndarray, R: np.ndarray, ridge: float) -> np.ndarray:
    """``(G + ridge I)⁻¹ R`` for a symmetric ``G (k, k)`` and ``R (k, m)`` (float64)."""
    return np.linalg.solve(G + ridge * np.eye(len(G)), R)


def cmfh_objective(X1, X2, V, U1, U2, P1, P2, lam: float, mu: float, gamma: float) -> float:
    """The CMFH objective O (module docstring) of centred ``X1 (N, Di)``, ``X2 (N, Dt)``,
    ``V (N, bits)``, ``U1 (bits, Di)``, ``U2 (bits, Dt)``, ``P1 (Di, bits)``, ``P2 (Dt, bits)``."""
    sq = lambda M: float(np.sum(M * M))  # noqa: E731
    return (lam * sq(X1 - V @ U1) + (1 - lam) * sq(X2 - V @ U2)
            + mu * (sq(V - X1 @ P1) + sq(V - X2 @ P2))
            + gamma * (sq(U1) + sq(U2) + sq(P1) + sq(P2) + sq(V)))


def update_bases(V, X1, X2, lam: float, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """U step: ``U1 (bits, Di)``, ``U2 (bits, Dt)`` minimising O with V fixed (ridge solves)."""
    G = V.T @ V
    return _ridge_solve(G, V.T @ X1, gamma / lam), _ridge_solve(G, V.T @ X2, gamma / (1 - lam))


def update_latent(X1, X2, U1, U2, P1, P2, lam: float, mu: float, gamma: float) -> np.ndarray:
    """V step: ``V (N, bits)`` minimising O with U, P fixed; row n depends only on pair n, so this
    is also the unified code of new pairs."""
    bits = U1.shape[0]
    M = lam * U1 @ U1.T + (1 - lam) * U2 @ U2.T + (2 * mu + gamma) * np.eye(bits)
    rhs = lam * X1 @ U1.T + (1 - lam) * X2 @ U2.T + mu * (X1 @ P1 + X2 @ P2)
    return np.linalg.solve(M, rhs.T).T  # M is symmetric: V M = rhs


def released_bases(V, X1, X2, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """U step of the released ``CMFH_learn.m``: ``U_t = (VᵀV + γ I)⁻¹ VᵀX_t``, (bits, Di) and (bits, Dt)."""
    G = V.T @ V
    return _ridge_solve(G, V.T @ X1, gamma), _ridge_solve(G, V.T @ X2, gamma)


def released_latent(X1, X2, U1, U2, P1, P2, lam: float, mu: float, gamma: float) -> np.ndarray:
    """V step of the released ``CMFH_learn.m`` (also its pair coding, ``CMFH_compress.m``):
    ``Σ_t α_t X_t (U_tᵀ + μ P_t) (Σ_t α_t U_t U_tᵀ + (μ + γ) I)⁻¹``, α = (λ, 1 - λ); ``(N, bits)``."""
    bits = U1.shape[0]
    M = lam * U1 @ U1.T + (1 - lam) * U2 @ U2.T + (mu + gamma) * np.eye(bits)
    rhs = lam * X1 @ (U1.T + mu * P1) + (1 - lam) * X2 @ (U2.T + mu * P2)
    return np.linalg.solve(M, rhs.T).T


def released_projections(V, X1, X2, mu: float, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """P step of the released ``CMFH_learn.m`` as MATLAB parses it: ``(μ (μ X_tᵀX_t + γ I))⁻¹ X_tᵀV``,
    i.e. :func:`update_projections` divided by μ²; (Di, bits) and (Dt, bits)."""
    P1, P2 = update_projections(V, X1, X2, mu, gamma)
    return P1 / mu ** 2, P2 / mu ** 2


def update_projections(V, X1, X2, mu: float, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """P step: ``P1 (Di, bits)``, ``P2 (Dt, bits)`` minimising O with V fixed (ridge regressions)."""
    return _ridge_solve(X1.T @ X1, X1.T @ V, gamma / mu), _ridge_solve(X2.T @ X2, X2.T @ V, gamma / mu)


@register_method
class CMFH(Hasher):
    """Collective matrix factorisation of both modalities onto one latent code per pair."""

    name = "cmfh"
    unified_codes = True
    params = (
        Param("image_weight", 0.5, float, Range(0, 1, low_open=True, high_open=True),
              "λ: weight of the image factorisation; the text side gets 1 - λ"),
        Param("projection_weight", 100.0, float, Range(0, None, low_open=True),
              "μ: weight of the linear projections ||V - X P||² (out-of-sample hash functions)"),
        Param("reg_weight", 0.01, float, Range(0, None, low_open=True),
              "γ: Frobenius regularisation of U, P and V"),
        Param("iters", 100, int, Range(1, None), "maximum alternating sweeps (U, V, P)"),
        Param("tol", 1e-5, float, Range(0, None),
              "stop once the relative decrease of the objective in one sweep is below this"),
        Param("init", "uniform", str, Choice("uniform", "centred"),
              "initial V and P: uniform in [0, 1) (official code) or centred, uniform in [-0.5, 0.5)"),
        Param("updates", "paper", str, Choice("paper", "released"),
              "paper: exact block minimisers of the paper's objective; released: the BMC-SDNU CMFH_learn.m "
              "updates and coding, exactly `iters` sweeps (module docstring)"),
    )

    def _fit(self, train: PairedData, valid, tracker) -> None:
        c = self.config
        lam, mu, gamma = c["image_weight"], c["projection_weight"], c["reg_weight"]
        X1 = train.image.astype(np.float64)
        X2 = train.text_dense().astype(np.float64)
        m1, m2 = X1.mean(axis=0), X2.mean(axis=0)
        X1, X2 = X1 - m1, X2 - m2
        rng = np.random.default_rng(self.seed)
        shift = 0.5 if c["init"] == "centred" else 0.0
        V = rng.random((len(X1), self.bits)) - shift
        P1 = rng.random((X1.shape[1], self.bits)) - shift
        P2 = rng.random((X2.shape[1], self.bits)) - shift
        last = np.inf
        self.history = []
        released = c["updates"] == "released"
        for it in range(c["iters"]):
            if released:
                U1, U2 = released_bases(V, X1, X2, gamma)
                V = released_latent(X1, X2, U1, U2, P1, P2, lam, mu, gamma)
                P1, P2 = released_projections(V, X1, X2, mu, gamma)
            else:
                U1, U2 = update_bases(V, X1, X2, lam, gamma)
                V = update_latent(X1, X2, U1, U2, P1, P2, lam, mu, gamma)
                P1, P2 = update_projections(V, X1, X2, mu, gamma)
            obj = cmfh_objective(X1, X2, V, U1, U2, P1, P2, lam, mu, gamma)
            self.history.append({"iter": it + 1, "objective": obj})
            if tracker is not None:
                tracker.log({"objective": obj}, step=it + 1)
            if not released and np.isfinite(last) and last - obj <= c["tol"] * abs(last):
                break
            last = obj
        self.state = {"image_mean": m1, "text_mean": m2, "image_P": P1, "text_P": P2,
                      "image_U": U1, "text_U": U2, "code_mean": V.mean(axis=0)}

    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        s = self.state
        Xc = X.astype(np.float64) - s[f"{modality}_mean"]
        if self.config["updates"] == "released":
            return Xc @ s[f"{modality}_P"]  # CMFH_compress1.m: no mean(V) subtracted
        return Xc @ s[f"{modality}_P"] - s["code_mean"]

    def _project_pair(self, Xi: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        s, c = self.state, self.config
        X1 = Xi.astype(np.float64) - s["image_mean"]
        X2 = Xt.astype(np.float64) - s["text_mean"]
        step = released_latent if c["updates"] == "released" else update_latent
        V = step(X1, X2, s["image_U"], s["text_U"], s["image_P"], s["text_P"],
                 c["image_weight"], c["projection_weight"], c["reg_weight"])
        return V - s["code_mean"]

    def _get_state(self) -> dict[str, np.ndarray]:
        """``image_mean (Di,)``, ``text_mean (Dt,)``, ``image_P (Di, bits)``, ``text_P (Dt, bits)``,
        ``image_U (bits, Di)``, ``text_U (bits, Dt)``, ``code_mean (bits,)``; float64."""
        return dict(self.state)

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.state = dict(state)
