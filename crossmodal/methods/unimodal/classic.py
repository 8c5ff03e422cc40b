"""Classic image hashing baselines on the image side: PCA-H, ITQ and spectral hashing.
(LSH is :class:`crossmodal.methods.baselines.LSH`, which hashes whichever modalities the data has.)

* :class:`PCAH` -- project the centred features on the top ``bits`` principal directions, sign.
* :class:`ITQ` -- Gong et al., Iterative Quantization (CVPR 2011 / TPAMI 2013): PCA to
  ``bits`` dimensions, then the orthogonal rotation minimising ``||B − VR||²`` (50 iterations).
* :class:`SH` -- Weiss, Torralba and Fergus, Spectral Hashing (NIPS 2008): PCA to
  ``min(bits, D)`` directions, a uniform distribution over the range of each; bit k is the sign
  of the analytical eigenfunction ``sin(π/2 + m π x / (b − a))`` with the k-th smallest
  eigenvalue ``(m π / (b − a))²`` over all directions and frequencies m ≥ 1.

When ``bits`` exceeds the feature dimension D (digits: 64-d), PCA-H and ITQ lift the D principal
directions to ``bits`` with a fixed random Gaussian matrix (as CCA-ITQ does); SH uses higher
frequencies instead, as in the paper.
"""

from __future__ import annotations

import numpy as np

from crossmodal.methods._registry import register_method
from crossmodal.methods.baselines import itq_rotation
from crossmodal.methods.params import Param, Range
from crossmodal.methods.unimodal.base import ImageHasher


def pca(X: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean (D,), directions (D, r), variances (r,))`` by eigendecomposition of the covariance."""
    mu = X.mean(0)
    C = np.cov((X - mu).T) if X.shape[1] > 1 else np.atleast_2d(np.var(X))
    w, V = np.linalg.eigh(C)
    order = np.argsort(w)[::-1][:r]
    return mu, V[:, order], w[order]


class _PCABase(ImageHasher):
    """PCA to ``bits`` directions (lifted by a random Gaussian when ``bits`` > D), optionally rotated."""

    params: tuple = ()
    rotate = False

    def _fit(self, train, valid, tracker) -> None:
        rng = np.random.default_rng(self.seed)
        X = np.asarray(train.image, dtype=np.float64)
        mu, W, _ = pca(X, min(self.bits, X.shape[1]))
        if W.shape[1] < self.bits:
            W = W @ (rng.standard_normal((W.shape[1], self.bits)) / np.sqrt(W.shape[1]))
        if self.rotate:
            W = W @ itq_rotation((X - mu) @ W, self.config["itq_iters"], rng)
        self.state = {"mean": mu, "W": W}

    def _project(self, modality, X):
        return (X - self.state["mean"]) @ self.state["W"]

    def _get_state(self):
        return dict(self.state)

    def _set_state(self, state):
        self.state = dict(state)


@register_method
class PCAH(_PCABase):
    """PCA hashing: sign of the top principal components."""

    name = "pcah"


@register_method
class ITQ(_PCABase):
    """Iterative quantization: PCA then the quantisation-error-minimising rotation."""

    name = "itq"
    rotate = True
    params = (
        Param("itq_iters", 50, int, Range(0, None), "alternating iterations of the rotation R minimising ||B - VR||²"),
    )


@register_method
class SH(ImageHasher):
    """Spectral hashing (uniform-distribution eigenfunctions along the principal directions)."""

    name = "sh"
    params: tuple = ()

    def _fit(self, train, valid, tracker) -> None:
        X = np.asarray(train.image, dtype=np.float64)
        r = min(self.bits, X.shape[1])
        mu, W, _ = pca(X, r)
        V = (X - mu) @ W
        lo, hi = V.min(0) - 1e-6, V.max(0) + 1e-6
        span = hi - lo
        modes = np.arange(1, self.bits + 1)  # the bits smallest eigenvalues need at most bits modes per direction
        eig = (modes[None, :] * np.pi / span[:, None]) ** 2  # (r, modes): eigenvalue of mode m on direction d
        flat = np.argsort(eig, axis=None, kind="stable")[: self.bits]
        dims, m = np.unravel_index(flat, eig.shape)
        self.state = {"mean": mu, "W": W, "lo": lo, "span": span, "dims": dims.astype(np.int64),
                      "omega": (modes[m] * np.pi / span[dims]).astype(np.float64)}

    def _project(self, modality, X):
        s = self.state
        V = (X - s["mean"]) @ s["W"]
        return np.sin(np.pi / 2 + (V[:, s["dims"]] - s["lo"][s["dims"]]) * s["omega"])

    def _get_state(self):
        return dict(self.state)

    def _set_state(self, state):
        self.state = dict(state)
