"""Hashing towers: feature -> hidden (tanh) -> bits, with sigmoid relaxation.

A :class:`HashTower` returns logits; the relaxed code is ``sigmoid(logits)`` in (0, 1) and
the bit is ``logits >= 0`` (i.e. sigmoid >= 0.5, so sign(0) = +1 as everywhere else).
"""

from __future__ import annotations

import torch
from torch import nn


class HashTower(nn.Module):
    def __init__(self, in_dim: int, hidden: int, bits: int, init_std: float | None = 0.1):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, bits)
        if init_std is not None and init_std > 0:
            for fc in (self.fc1, self.fc2):  # truncated normal at +-2 std, zero bias (UGACH official)
                nn.init.trunc_normal_(fc.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
                nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


class CrossModalNet(nn.Module):
    """One image tower and one text tower of the same shape."""

    def __init__(self, image_dim: int, text_dim: int, hidden: int, bits: int, init_std: float | None = 0.1):
        super().__init__()
        self.towers = nn.ModuleDict({
            "image": HashTower(image_dim, hidden, bits, init_std),
            "text": HashTower(text_dim, hidden, bits, init_std),
        })

    def logits(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        return self.towers[modality](x)

    def relaxed(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(modality, x))


def sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise squared L2 distance of equally shaped ``(..., bits)`` tensors."""
    return ((a - b) ** 2).sum(-1)


def pairwise_sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(B, bits) x (P, bits) -> (B, P)`` squared distances with one matmul."""
    return (a * a).sum(1, keepdim=True) - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
