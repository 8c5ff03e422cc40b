"""Every hashing tower of crossmodal, in pure torch: feature (or raw-image) rows -> ``(B, bits)`` logits.

The bit of a logit is ``logit >= 0`` (sign(0) = +1, as everywhere else); the methods relax the
logits during training (``sigmoid`` for UGACH, ``tanh`` for the deep methods).

* :class:`HashTower`: ``feature -> hidden (tanh) -> bits``, optionally truncated-normal initialised
  (UGACH's towers; the head of the image-only methods);
* :class:`CrossModalNet`: one image and one text :class:`HashTower` of the same shape (UGACH's G and D);
* :class:`MLPTower`: ``feature -> [Linear -> ReLU -> Dropout]* -> Linear -> bits`` (the deep
  cross-modal methods' towers and their end-to-end heads);
* :class:`ImageTower`: a head on feature rows, or on flat raw-image rows a backbone (with its input
  transform) then the head (:func:`rows_to_images` gives the images back their shape).

The backbones themselves (``tiny``, torchvision, transformers) are built in
:mod:`crossmodal.methods.backbones`.
"""

from __future__ import annotations

import torch
from torch import nn


class HashTower(nn.Module):
    """``(B, in_dim) -> (B, bits)`` logits: ``fc2(tanh(fc1(x)))``.

    ``init_std`` > 0: weights from a normal truncated at +-2 std, zero biases (UGACH's official
    initialisation); ``None`` or 0: PyTorch's default init.
    """

    def __init__(self, in_dim: int, hidden: int, bits: int, init_std: float | None = 0.1):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, bits)
        if init_std is not None and init_std > 0:
            for fc in (self.fc1, self.fc2):
                nn.init.trunc_normal_(fc.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
                nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


def hash_head(in_dim: int, hidden: int, bits: int) -> nn.Module:
    """The image-only methods' head: a :class:`HashTower` (PyTorch init), or ``Linear`` when ``hidden`` is 0."""
    return HashTower(in_dim, hidden, bits, init_std=None) if hidden > 0 else nn.Linear(in_dim, bits)


class CrossModalNet(nn.Module):
    """One image tower and one text tower of the same shape (:class:`HashTower`)."""

    def __init__(self, image_dim: int, text_dim: int, hidden: int, bits: int, init_std: float | None = 0.1):
        super().__init__()
        self.towers = nn.ModuleDict({
            "image": HashTower(image_dim, hidden, bits, init_std),
            "text": HashTower(text_dim, hidden, bits, init_std),
        })

    def logits(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """``(B, D_modality) -> (B, bits)`` logits."""
        return self.towers[modality](x)

    def relaxed(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """``(B, D_modality) -> (B, bits)`` relaxed codes ``sigmoid(logits)`` in (0, 1)."""
        return torch.sigmoid(self.logits(modality, x))


class MLPTower(nn.Module):
    """``(B, in_dim) -> (B, bits)`` logits: ``[Linear -> ReLU -> Dropout]* -> Linear`` (``hidden``
    lists the widths; ``[]`` is one linear layer; dropout only when > 0)."""

    def __init__(self, in_dim: int, hidden: list, bits: int, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for w in hidden:
            layers += [nn.Linear(d, int(w)), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = int(w)
        layers.append(nn.Linear(d, bits))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def rows_to_images(x: torch.Tensor, shape, layout: str = "chw") -> torch.Tensor:
    """Flat raw-image rows ``(B, C*H*W)`` -> ``(B, C, H, W)``; ``shape`` is ``(C, H, W)`` and
    ``layout`` the order of the flattened values: ``chw`` (CIFAR batches, digits) or ``hwc`` (the
    ``pixels`` featurizer, the ``toy`` dataset)."""
    c, h, w = (int(v) for v in shape)
    if layout == "hwc":
        return x.reshape(-1, h, w, c).permute(0, 3, 1, 2)
    return x.reshape(-1, c, h, w)


class ImageTower(nn.Module):
    """Image rows -> logits ``(B, bits)`` through ``head``; with a ``backbone`` the rows are flat
    raw images ``(B, C*H*W)`` in [0, 1] of ``shape`` ``(C, H, W)`` in ``layout`` order
    (:func:`rows_to_images`), given the backbone's input transform and passed through the
    backbone first (``(B, out_dim)`` features). Without one, the rows are features for the head.

    Saved weights: ``backbone.*`` (when present) and ``head.*``; the input transform has none.
    """

    def __init__(self, head: nn.Module, backbone: nn.Module | None = None, backbone_input: nn.Module | None = None,
                 shape=None, layout: str = "chw"):
        super().__init__()
        self.backbone = backbone
        self.backbone_input = backbone_input if backbone_input is not None else nn.Identity()
        self.head = head
        self.shape = tuple(int(v) for v in shape) if shape else None
        self.layout = layout

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C*H*W) -> (B, C, H, W)``."""
        return rows_to_images(x, self.shape, self.layout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(B, out_dim)`` of flat raw-image rows ``(B, C*H*W)``."""
        return self.backbone(self.backbone_input(self.images(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x) if self.backbone is not None else x)


def sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise squared L2 distance of equally shaped ``(..., bits)`` tensors."""
    return ((a - b) ** 2).sum(-1)


def pairwise_sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(B, bits) x (P, bits) -> (B, P)`` squared distances with one matmul."""
    return (a * a).sum(1, keepdim=True) - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
