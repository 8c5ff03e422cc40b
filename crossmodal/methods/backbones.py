"""Image backbones of the end-to-end mode (``mode: end2end``): raw-image rows -> features.

Every trained method with an image side can run on raw images flattened from ``image_shape``
``[C, H, W]`` in ``image_layout`` order (``chw``, or ``hwc`` as the ``pixels`` featurizer and
the ``toy`` dataset write them), values in [0, 1] (the keys of :data:`END2END_PARAMS`). The
backbone, built by :func:`build_backbone`, is one of

* ``tiny``: two 3x3 conv layers and global average pooling (tests and small images), 32-d;
* ``resnet18`` (512-d), ``alexnet`` / ``vgg11`` / ``vgg16`` / ``vgg19`` (cut after fc7 + ReLU,
  4096-d) from torchvision when it imports, ImageNet weights from a local ``backbone_weights``
  state dict (random init otherwise);
* ``hf:PATH``: any transformers vision model in a local folder (its pooled output).

Each gets the input it expects (:func:`backbone_input`): torchvision models 3 channels at
224 x 224 with ImageNet mean / std; ``hf:`` models the size, mean and std of the folder's image
processor; ``tiny`` the rows as they are. The towers around them are in :mod:`crossmodal.nets`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from crossmodal.errors import ConfigError, DataError
from crossmodal.methods.params import Choice, Param, Range

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TORCHVISION_BACKBONES = ("resnet18", "alexnet", "vgg11", "vgg16", "vgg19")


class TinyBackbone(nn.Module):
    """Two 3x3 conv layers and global average pooling: ``(B, C, H, W) -> (B, 32)``."""

    out_dim = 32

    def __init__(self, in_channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.body(x)


class HFBackbone(nn.Module):
    """A transformers vision model from the local folder ``path``: ``(B, C, H, W) -> (B, out_dim)``
    (its pooled output, else the pooled last hidden state)."""

    def __init__(self, path: str):
        super().__init__()
        from transformers import AutoModel

        try:
            self.model = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0][:120]
            raise ConfigError(f"backbone hf:{path}: cannot load from a local folder ({first})") from None
        cfg = getattr(self.model.config, "vision_config", self.model.config)
        self.out_dim = int(getattr(cfg, "hidden_size", None) or cfg.hidden_sizes[-1])

    def forward(self, x):
        from crossmodal.features.models import pooled_output

        m = self.model
        out = m.vision_model(pixel_values=x) if hasattr(m, "vision_model") else m(pixel_values=x)
        if getattr(out, "pooler_output", None) is None:
            return pooled_output(out)
        return out.pooler_output.flatten(1)


class BackboneInput(nn.Module):
    """Rows in [0, 1], ``(B, C, H, W)`` -> what the backbone expects: ``channels`` channels
    (a grey image repeated), resized to ``size`` (bilinear) when given, then ``(x − mean) / std``.
    Has no parameters and saves nothing (its buffers are not persistent)."""

    def __init__(self, channels: int | None = None, size: int | None = None, mean=None, std=None):
        super().__init__()
        self.channels, self.size = channels, size
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) if mean else None, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) if std else None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels and x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1) if x.shape[1] == 1 else x[:, : self.channels]
        if self.size and tuple(x.shape[-2:]) != (self.size, self.size):
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x


def backbone_input(name: str) -> BackboneInput:
    """The input transform of backbone ``name`` (see :class:`BackboneInput`)."""
    if name in TORCHVISION_BACKBONES:
        return BackboneInput(3, 224, IMAGENET_MEAN, IMAGENET_STD)
    if name.startswith("hf:"):
        try:
            from transformers import AutoImageProcessor

            proc = AutoImageProcessor.from_pretrained(name[3:], local_files_only=True)
        except Exception:  # no processor in the folder: the rows as they are
            return BackboneInput()
        size = getattr(proc, "crop_size", None) or getattr(proc, "size", None) or {}
        # a dict, or transformers' SizeDict (attributes and .get), or a plain number
        side = size.get("height") or size.get("shortest_edge") if hasattr(size, "get") else size
        mean, std = getattr(proc, "image_mean", None), getattr(proc, "image_std", None)
        return BackboneInput(len(mean) if mean else None, int(side) if side else None, mean, std)
    return BackboneInput()


def build_backbone(name: str, in_channels: int, weights: str = "") -> tuple[nn.Module, int]:
    """``(backbone, out_dim)``: backbone ``name`` for images of ``in_channels`` channels; a
    torchvision backbone reads ImageNet ``weights`` (a local state dict, ``weights_only``) if given."""
    if name == "tiny":
        b = TinyBackbone(in_channels)
        return b, b.out_dim
    if name.startswith("hf:"):
        b = HFBackbone(name[3:])
        return b, b.out_dim
    if name in TORCHVISION_BACKBONES:
        from crossmodal.features.models import import_torchvision

        tv = import_torchvision(f"backbone {name} (mode end2end) needs", "choose backbone tiny or hf:PATH")
        net = getattr(tv.models, name)(weights=None)
        if weights:
            net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        if name == "resnet18":
            net.fc = nn.Identity()
            return net, 512
        if name == "alexnet":  # Dropout, fc6, ReLU, Dropout, fc7, ReLU (DJSRH's cut)
            net.classifier = net.classifier[:6]
        else:
            net.classifier = net.classifier[:5]  # fc6, ReLU, Dropout, fc7, ReLU
        return net, 4096
    raise ConfigError(f"unknown backbone {name!r}; use tiny, {', '.join(TORCHVISION_BACKBONES)} or hf:PATH")


@dataclass(frozen=True)
class BackboneName:
    """Check of ``backbone``: ``tiny``, a torchvision name (:data:`TORCHVISION_BACKBONES`) or
    ``hf:PATH`` (a local folder)."""

    def check(self, value) -> str | None:
        if value == "tiny" or value in TORCHVISION_BACKBONES or (value.startswith("hf:") and len(value) > 3):
            return None
        return f"must be tiny, {', '.join(TORCHVISION_BACKBONES)} or hf:PATH (a local transformers folder)"

    def describe(self) -> str:
        return " | ".join(("tiny", *TORCHVISION_BACKBONES, "hf:PATH"))


END2END_PARAMS = (
    Param("mode", "features", str, Choice("features", "end2end"),
          "features: rows are feature vectors; end2end: rows are raw images and a backbone is trained"),
    Param("backbone", "tiny", str, BackboneName(), "end2end backbone (the torchvision ones need torchvision)"),
    Param("backbone_weights", "", str, None,
          "end2end: local .pt state dict of a torchvision backbone ('': random init)"),
    Param("image_shape", [], list, Range(1, None),
          "end2end: [C, H, W] layout of the flattened rows", item=int),
    Param("image_layout", "chw", str, Choice("chw", "hwc"),
          "end2end: order of the flattened image rows (chw; hwc for the pixels featurizer / toy)"),
    Param("num_workers", 0, int, Range(0, None), "end2end: DataLoader worker processes"),
)


def check_end2end_config(name: str, config: dict) -> None:
    """``mode: end2end`` needs ``image_shape: [C, H, W]``; a one-line ConfigError otherwise."""
    if config["mode"] == "end2end" and len(config["image_shape"]) != 3:
        raise ConfigError(f"{name}: mode end2end needs image_shape: [C, H, W] (the layout of the image rows)")


def check_end2end(name: str, config: dict, image_dim: int) -> None:
    """``mode: end2end``: the image rows must hold ``image_shape`` values and the backbone must be
    buildable (torchvision importable for its backbones); one-line errors otherwise."""
    if config["mode"] != "end2end":
        return
    want = int(np.prod(config["image_shape"]))
    if want != image_dim:
        raise DataError(f"{name}: image_shape {config['image_shape']} has {want} values but the image rows have "
                        f"{image_dim} (mode end2end needs raw images: datasets prepare ... --image-features pixels)")
    if config["backbone"] in TORCHVISION_BACKBONES:
        from crossmodal.features.models import import_torchvision

        import_torchvision(f"backbone {config['backbone']} (mode end2end) needs", "choose backbone tiny or hf:PATH")
