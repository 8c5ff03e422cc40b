"""Classic cross-modal baselines: LSH and CCA-ITQ.

* :class:`LSH` -- random Gaussian projections of each centred modality. The two
  modalities get independent hyperplanes, so cross-modal codes carry no shared meaning:
  LSH is the chance-level floor of a cross-modal table, kept to make that floor visible.
* :class:`CCAITQ` -- Gong et al., "Iterative Quantization" (TPAMI 2013), cross-modal
  variant: regularised CCA maps both centred modalities into a common space (projections
  scaled by the canonical correlations), then ITQ learns one orthogonal rotation on the
  stacked projections of both modalities that minimises the quantisation error.

  CCA gives at most r = min(Di, Dt) directions (10 on Wikipedia, whose texts are 10-d LDA).
  When ``bits > r`` the r-dimensional common space is lifted to ``bits`` dimensions by a
  fixed random Gaussian matrix before the ITQ rotation (the remaining bits then act as
  random hyperplanes in the common space). This choice is ours; the paper assumes bits <= r.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from crossmodal.data import PairedData
from crossmodal.methods._registry import register_method
from crossmodal.methods.base import Hasher
from crossmodal.methods.params import Param, Range


def _center(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = X.mean(axis=0)
    return X - mu, mu


class LinearHasher(Hasher):
    """A hasher whose codes are signs of ``(X - mean) @ W`` per modality (state: means and W)."""

    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        return (X - self.state[f"{modality}_mean"]) @ self.state[f"{modality}_W"]

    def _get_state(self):
        return dict(self.state)

    def _set_state(self, state):
        self.state = dict(state)


@register_method
class LSH(LinearHasher):
    """Random-projection hashing per modality (chance-level cross-modal baseline). On
    image-only data it hashes the images only (the I→I LSH baseline)."""

    name = "lsh"
    params = ()
    text_optional = True

    def _fit(self, train: PairedData, valid, tracker) -> None:
        rng = np.random.default_rng(self.seed)
        self.state = {}
        for m in self.modalities:
            X = train.modality(m).astype(np.float64)
            self.state[f"{m}_mean"] = X.mean(axis=0)
            self.state[f"{m}_W"] = rng.standard_normal((X.shape[1], self.bits))


def cca(X: np.ndarray, Y: np.ndarray, reg: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regularised CCA of centred ``X (n, dx)`` and ``Y (n, dy)``.

    Returns ``(Wx (dx, r), Wy (dy, r), corr (r,))`` with r = min(dx, dy), directions sorted
    by decreasing canonical correlation. ``reg`` is added to each covariance's diagonal,
    relative to its mean variance.
    """
    n = X.shape[0]
    Cxx = X.T @ X / n
    Cyy = Y.T @ Y / n
    Cxy = X.T @ Y / n
    Cxx += reg * max(np.trace(Cxx) / Cxx.shape[0], 1e-12) * np.eye(Cxx.shape[0])
    Cyy += reg * max(np.trace(Cyy) / Cyy.shape[0], 1e-12) * np.eye(Cyy.shape[0])

    def inv_sqrt(C):
        w, V = linalg.eigh(C)
        w = np.maximum(w, 1e-12)
        return (V / np.sqrt(w)) @ V.T

    Kx, Ky = inv_sqrt(Cxx), inv_sqrt(Cyy)
    U, s, Vt = linalg.svd(Kx @ Cxy @ Ky, full_matrices=False)
    r = min(X.shape[1], Y.shape[1])
    return Kx @ U[:, :r], Ky @ Vt.T[:, :r], s[:r]


def itq_rotation(V: np.ndarray, n_iter: int = 50, rng=None) -> np.ndarray:
    """ITQ: orthogonal ``R (c, c)`` minimising ``||sign(V R) - V R||`` for ``V (n, c)``."""
    rng = np.random.default_rng(rng)
    c = V.shape[1]
    R, _ = np.linalg.qr(rng.standard_normal((c, c)))
    for _ in range(n_iter):
        B = np.where(V @ R >= 0, 1.0, -1.0)
        U, _, Wt = np.linalg.svd(V.T @ B)
        R = U @ Wt
    return R


@register_method
class CCAITQ(LinearHasher):
    """CCA to a common space, then an ITQ rotation shared by both modalities."""

    name = "cca-itq"
    params = (
        Param("reg", 1e-4, float, Range(0, None), "ridge added to each covariance, relative to its mean variance"),
        Param("itq_iters", 50, int, Range(0, None), "ITQ rotation iterations"),
        Param("corr_power", 1.0, float, Range(0, None),
              "scale each CCA direction by corr**corr_power (0: unscaled, 1: by its canonical correlation)"),
    )

    def _fit(self, train: PairedData, valid, tracker) -> None:
        rng = np.random.default_rng(self.seed)
        X, mx = _center(train.image.astype(np.float64))
        Y, my = _center(train.text_dense().astype(np.float64))
        Wx, Wy, corr = cca(X, Y, reg=self.config["reg"])
        scale = corr ** self.config["corr_power"]
        Wx, Wy = Wx * scale, Wy * scale
        r = Wx.shape[1]
        if self.bits <= r:
            Wx, Wy = Wx[:, : self.bits], Wy[:, : self.bits]
        else:
            lift = rng.standard_normal((r, self.bits)) / np.sqrt(r)
            Wx, Wy = Wx @ lift, Wy @ lift
        V = np.concatenate([X @ Wx, Y @ Wy])
        R = itq_rotation(V, self.config["itq_iters"], rng)
        self.state = {"image_mean": mx, "text_mean": my, "image_W": Wx @ R, "text_W": Wy @ R, "corr": corr}
