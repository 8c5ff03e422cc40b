"""Batch similarity and loss helpers shared by the deep methods (cross-modal and image-only)."""

from __future__ import annotations

import torch
from torch import nn


def cosine(F: torch.Tensor, G: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, D), (P, D) -> (B, P)`` cosine similarities (rows L2-normalised here); ``G`` defaults to ``F``."""
    F = nn.functional.normalize(F, dim=1)
    G = F if G is None else nn.functional.normalize(G, dim=1)
    return F @ G.T


def code_cosines(hi: torch.Tensor, ht: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cosine matrices of relaxed codes ``hi, ht (B, bits)``: ``(BiBiᵀ, BtBtᵀ, BiBtᵀ)``, each (B, B)."""
    bi, bt = nn.functional.normalize(hi, dim=1), nn.functional.normalize(ht, dim=1)
    return bi @ bi.T, bt @ bt.T, bi @ bt.T


def code_inner(h: torch.Tensor) -> torch.Tensor:
    """``Θ_ij = ½ h_iᵀ h_j`` for relaxed codes ``h (B, bits)`` (DPSH's pairwise logit), ``(B, B)``."""
    return 0.5 * h @ h.T


def pairwise_nll(theta: torch.Tensor, s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted negative log-likelihood of pair labels ``s ∈ {0, 1}`` under
    ``p(s=1) = σ(Θ)``: ``Σ w (log(1 + e^Θ) − s Θ) / Σ w``; all three ``(B, B)``."""
    nll = nn.functional.softplus(theta) - s * theta
    return (weight * nll).sum() / weight.sum().clamp_min(1e-12)


def quantization(h: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``(|h| − 1)²`` of relaxed codes ``h (B, bits)`` pushed to ±1 (optionally weighted per bit)."""
    q = (h.abs() - 1.0) ** 2
    return (q * weight).mean() if weight is not None else q.mean()
