"""Feature standardisation of the trained methods: statistics fitted on the training rows, applied
to every row that reaches a network (training, validation, encoding).

``how`` is one of ``zscore`` (per column: ``(x - mean) / max(std, eps)``), ``center`` (minus
the column means), ``scale`` (centre, then one global factor: unit RMS per value, so Euclidean
rankings do not change), ``l2`` (each row to unit length; nothing fitted) or ``none``.
"""

from __future__ import annotations

import numpy as np

STANDARDIZE = ("zscore", "center", "scale", "l2", "none")
ZSCORE_EPS = 1e-6  # the deep methods' floor on a column's std; UGACH passes its own 1e-8


def fit_standardizer(X: np.ndarray, how: str, eps: float = ZSCORE_EPS) -> dict:
    """Statistics of ``X (N, D)`` for ``how`` (computed in float64): ``{"mean": (D,) float32,
    "scale": (D,) float32}`` for zscore / center / scale, ``{}`` for l2 / none. ``eps`` floors the
    per-column std of zscore."""
    if how not in ("zscore", "center", "scale"):
        return {}
    X = np.asarray(X, dtype=np.float64)
    if how == "zscore":
        return {"mean": X.mean(0).astype(np.float32), "scale": (1.0 / np.maximum(X.std(0), eps)).astype(np.float32)}
    if how == "center":
        return {"mean": X.mean(0).astype(np.float32), "scale": np.ones(X.shape[1], np.float32)}
    mu = X.mean(0)  # scale
    rms = max(float(np.sqrt(np.mean((X - mu) ** 2))), 1e-12)
    return {"mean": mu.astype(np.float32), "scale": np.full(X.shape[1], 1.0 / rms, np.float32)}


def apply_standardizer(X: np.ndarray, prep: dict, how: str) -> np.ndarray:
    """``X (N, D)`` standardised with the statistics ``prep`` of :func:`fit_standardizer`, ``(N, D) float32``."""
    X = np.asarray(X, dtype=np.float32)
    if how in ("zscore", "center", "scale"):
        X = (X - prep["mean"]) * prep["scale"]
    if how == "l2":
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return X


def standardized(X: np.ndarray, how: str) -> np.ndarray:
    """``X`` standardised with its own statistics (fitted and applied at once), ``(N, D) float32``."""
    return apply_standardizer(X, fit_standardizer(X, how), how)
