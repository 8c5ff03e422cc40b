"""Shared parts of the image-only hashers: the base class, feature preprocessing, the hashing
network (on features, or a backbone on raw images), and the batched training loop.

Image-only hashers encode the image side only (``modalities == ("image",)``) and are
evaluated I→I with the same metrics, index and reports as the cross-modal ones.

Deep methods subclass :class:`DeepImageHasher` and write only their targets and loss:
``_prepare(X)`` once before training (neighbours, thresholds, clusters), ``_loss(idx, h, x)``
for one batch (``h = tanh(net(x))`` are the relaxed codes, ``(B, bits)``), and optionally
``_after_step()`` (DMUH's momentum update). The loop (seeded batch order, optimiser, the GPU
when present, per-epoch validation and model selection, checkpoints and resume, tracking,
progress bars) is :class:`crossmodal.training.EpochTrainer`. Their config keys are
:data:`DEEP_PARAMS` plus their own: ``params = deep_params(standardize=...) + (Param(...), ...)``.

Two input modes (config ``mode``):

* ``features`` (default): rows of ``PairedData.image`` are feature vectors; the network is
  feature -> ``hidden`` (tanh) -> bits (``hidden: 0`` makes it linear).
* ``end2end``: rows are raw images flattened from ``image_shape`` (C, H, W) in ``image_layout``
  order (``chw``, or ``hwc`` as the ``pixels`` featurizer writes them), values in [0, 1];
  a backbone turns them into features first: ``tiny`` (two conv layers, for tests and small
  images), ``resnet18`` / ``alexnet`` / ``vgg11`` / ``vgg16`` / ``vgg19`` (torchvision, when importable;
  ImageNet weights from ``backbone_weights`` if given; AlexNet and VGG cut after fc7 + ReLU,
  4096-d), or ``hf:PATH`` (any transformers vision model from a local
  folder). Batches come from a ``DataLoader`` with ``num_workers`` workers and pinned memory
  on a GPU. Each backbone gets the input it expects (:class:`BackboneInput`): torchvision
  models 3 channels resized to 224 x 224 and ImageNet mean / std; ``hf:`` models the size,
  mean and std of the folder's image processor; ``tiny`` the rows as they are.
  The pseudo-labels of the unsupervised methods (DistillHash's pairs, DSG's signals) are built,
  as the papers build them, from *pretrained features*: the backbone's output at
  initialisation (``(N, backbone output size)``, standardised with ``standardize``), never from
  raw pixels (:meth:`DeepImageHasher.label_features`).

Model selection (``selection``): ``validation`` (labelled validation split), ``last`` (fixed
epochs) or ``loss`` (lowest training loss); see :mod:`crossmodal.training`. The rule used is
:attr:`model_selection`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from crossmodal.data import PairedData
from crossmodal.engine import resolve_device
from crossmodal.errors import ConfigError, DataError
from crossmodal.methods.base import Hasher
from crossmodal.methods.params import Choice, Param, Range
from crossmodal.nets import HashTower
from crossmodal.training import SELECTION_RULES, EpochTrainer


class ImageHasher(Hasher):
    """A hasher of images only (I→I retrieval); text features, if any, are ignored."""

    modalities = ("image",)

    def fit(self, train: PairedData, valid=None, tracker=None):
        if not isinstance(train, PairedData):
            raise DataError("fit: train must be a PairedData")
        self.dims = {"image": train.image_dim}
        self._fit(train, valid, tracker)
        return self


def fit_standardizer(X: np.ndarray, how: str) -> dict:
    X = np.asarray(X, dtype=np.float64)
    if how == "zscore":
        return {"mean": X.mean(0).astype(np.float32), "scale": (1.0 / np.maximum(X.std(0), 1e-6)).astype(np.float32)}
    if how == "center":
        return {"mean": X.mean(0).astype(np.float32), "scale": np.ones(X.shape[1], np.float32)}
    if how == "scale":  # centre, then one global factor: unit RMS per value, Euclidean ranking unchanged
        mu = X.mean(0)
        rms = max(float(np.sqrt(np.mean((X - mu) ** 2))), 1e-12)
        return {"mean": mu.astype(np.float32), "scale": np.full(X.shape[1], 1.0 / rms, np.float32)}
    return {}


def apply_standardizer(X: np.ndarray, prep: dict, how: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if how in ("zscore", "center", "scale"):
        X = (X - prep["mean"]) * prep["scale"]
    if how == "l2":
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return X


class TinyBackbone(nn.Module):
    """Two 3x3 conv layers and global average pooling: (N, C, H, W) -> (N, 32)."""

    out_dim = 32

    def __init__(self, in_channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.body(x)


class _HFBackbone(nn.Module):
    def __init__(self, path: str):
        super().__init__()
        from transformers import AutoModel

        try:
            self.model = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"backbone hf:{path}: cannot load from a local folder ({str(exc).splitlines()[0][:120]})") from None
        cfg = getattr(self.model.config, "vision_config", self.model.config)
        self.out_dim = int(getattr(cfg, "hidden_size", None) or cfg.hidden_sizes[-1])

    def forward(self, x):
        from crossmodal.features.models import pooled_output

        m = self.model
        out = m.vision_model(pixel_values=x) if hasattr(m, "vision_model") else m(pixel_values=x)
        return pooled_output(out) if not hasattr(out, "pooler_output") or out.pooler_output is None else out.pooler_output.flatten(1)


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TORCHVISION_BACKBONES = ("resnet18", "alexnet", "vgg11", "vgg16", "vgg19")


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
    if name == "tiny":
        b = TinyBackbone(in_channels)
        return b, b.out_dim
    if name.startswith("hf:"):
        b = _HFBackbone(name[3:])
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


def rows_to_images(x: torch.Tensor, shape, layout: str = "chw") -> torch.Tensor:
    """Flat raw-image rows ``(B, C*H*W)`` -> ``(B, C, H, W)``; ``shape`` is ``(C, H, W)`` and
    ``layout`` the order of the flattened values: ``chw`` (CIFAR batches, digits) or ``hwc`` (the
    ``pixels`` featurizer, the ``toy`` dataset)."""
    c, h, w = (int(v) for v in shape)
    if layout == "hwc":
        return x.reshape(-1, h, w, c).permute(0, 3, 1, 2)
    return x.reshape(-1, c, h, w)


class HashNet(nn.Module):
    """(backbone ->) hash tower: rows ``(B, D)`` -> logits ``(B, bits)``. With a backbone the
    rows are flat raw images of ``shape`` (C, H, W) in ``layout`` order (:func:`rows_to_images`)."""

    def __init__(self, in_dim: int, hidden: int, bits: int, backbone: nn.Module | None = None,
                 backbone_input: nn.Module | None = None, shape=None, layout: str = "chw"):
        super().__init__()
        self.backbone = backbone
        self.backbone_input = backbone_input if backbone_input is not None else nn.Identity()
        self.head = HashTower(in_dim, hidden, bits, init_std=None) if hidden > 0 else nn.Linear(in_dim, bits)
        self.shape, self.layout = shape, layout

    def features(self, x):
        """Backbone features ``(B, out_dim)`` of flat image rows ``(B, C*H*W)``."""
        return self.backbone(self.backbone_input(rows_to_images(x, self.shape, self.layout)))

    def forward(self, x):
        if self.backbone is not None:
            x = self.features(x)
        return self.head(x)


class RowDataset(torch.utils.data.Dataset):
    """Rows of a (possibly memory-mapped) matrix ``X (N, D)`` as float32 tensors ``(D,)``."""

    def __init__(self, X: np.ndarray):
        self.X = X

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.from_numpy(np.asarray(self.X[i], dtype=np.float32))


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


DEEP_PARAMS = (
    Param("hidden", 1024, int, Range(0, None),
          "hidden units of the hash MLP (feature -> hidden (tanh) -> bits; 0: linear)"),
    Param("epochs", 50, int, Range(1, None), "training epochs"),
    Param("batch_size", 128, int, Range(2, None), "items per batch (the losses pair the items of a batch)"),
    Param("optimizer", "adam", str, Choice("adam", "sgd"), "optimiser (sgd: momentum 0.9)"),
    Param("lr", 1e-3, float, Range(0, None, low_open=True), "learning rate"),
    Param("weight_decay", 1e-5, float, Range(0, None), "L2 weight decay of the optimiser"),
    Param("standardize", "zscore", str, Choice("zscore", "center", "scale", "l2", "none"),
          "feature preprocessing: zscore (per column), center, scale (centre + one global factor), l2, none"),
    Param("quant_weight", 0.1, float, Range(0, None), "weight of the quantisation term mean((|h| - 1)^2)"),
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
    Param("device", "auto", str, None, "auto, cpu, cuda, cuda:1 ..."),
    Param("keep_checkpoints", 2, int, Range(0, None), "per-epoch checkpoints kept (at least 1)"),
    Param("progress", True, bool, None, "progress bars"),
    Param("selection", "validation", str, Choice(*SELECTION_RULES),
          "model selection: validation split, last epoch, or lowest training loss"),
)


def deep_params(**defaults) -> tuple[Param, ...]:
    """:data:`DEEP_PARAMS` with some defaults changed (``standardize="center"``)."""
    names = {p.name for p in DEEP_PARAMS}
    unknown = set(defaults) - names
    if unknown:
        raise KeyError(f"not in DEEP_PARAMS: {', '.join(sorted(unknown))}")
    return tuple(replace(p, default=defaults[p.name]) if p.name in defaults else p for p in DEEP_PARAMS)


class DeepImageHasher(EpochTrainer, ImageHasher):
    """Base of the deep image hashers (see the module docstring)."""

    params = DEEP_PARAMS
    uses_labels = False

    def __init__(self, bits: int, seed: int = 0, **config):
        super().__init__(bits, seed=seed, **config)
        check_end2end_config(self.name, self.config)
        self.prep: dict = {}
        self.net: HashNet | None = None

    @property
    def device(self):
        return resolve_device(self.config["device"])

    def check_data(self, data: PairedData) -> None:
        check_end2end(self.name, self.config, data.image_dim)

    # -- network -----------------------------------------------------------------------------------
    def _build(self) -> None:
        c = self.config
        torch.manual_seed(self.seed)
        if c["mode"] == "end2end":
            backbone, in_dim = build_backbone(c["backbone"], int(c["image_shape"][0]), c["backbone_weights"])
            bin_ = backbone_input(c["backbone"])
        else:
            backbone, in_dim, bin_ = None, self.dims["image"], None
        self.net = HashNet(in_dim, int(c["hidden"]), self.bits, backbone, bin_, c["image_shape"],
                           c["image_layout"]).to(self.device)

    @torch.no_grad()
    def label_features(self, X: np.ndarray) -> np.ndarray:
        """The features the pseudo-labels are built from: ``X`` itself in ``mode: features``;
        in ``mode: end2end`` the backbone's (pretrained) features of the raw rows ``X (N, C*H*W)``,
        ``(N, backbone output size) float32``, standardised with ``standardize``."""
        c = self.config
        if c["mode"] == "features":
            return X
        was = self.net.training
        self.net.eval()
        out = []
        for s in range(0, len(X), 256):
            xb = torch.as_tensor(np.asarray(X[s:s + 256], dtype=np.float32), device=self.device)
            out.append(self.net.features(xb).float().cpu().numpy())
        self.net.train(was)
        F = np.concatenate(out) if out else np.zeros((0, 1), np.float32)
        return apply_standardizer(F, fit_standardizer(F, c["standardize"]), c["standardize"])

    def _prep_input(self, X: np.ndarray) -> np.ndarray:
        if self.config["mode"] == "end2end":
            return np.asarray(X, dtype=np.float32)
        return apply_standardizer(X, self.prep, self.config["standardize"])

    def _nets(self) -> dict:
        return {"net": self.net}

    def _optimizer(self, params):
        c = self.config
        if c["optimizer"] == "adam":
            return torch.optim.Adam(params, lr=c["lr"], weight_decay=c["weight_decay"])
        return torch.optim.SGD(params, lr=c["lr"], momentum=0.9, weight_decay=c["weight_decay"])

    # -- method hooks ------------------------------------------------------------------------------
    def _prepare(self, X: np.ndarray, train: PairedData) -> None:
        """Targets computed once before training, from ``X = label_features(...)`` (the
        preprocessed features, or in end2end mode the backbone's features), ``(N, D) float32``."""

    def _loss(self, idx: torch.Tensor, h: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _after_step(self, idx: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> dict | None:
        """Called after each optimiser step; may return per-batch statistics to average."""
        return None

    def _extra_params(self) -> list:
        return []

    # -- training ----------------------------------------------------------------------------------
    def _fit(self, train: PairedData, valid, tracker) -> None:
        c, dev = self.config, self.device
        if self.uses_labels and train.labels is None:
            raise DataError(f"{self.name} is supervised: the training items need labels")
        self.check_data(train)
        self.prep = fit_standardizer(train.image, c["standardize"]) if c["mode"] == "features" else {}
        X = self._prep_input(train.image)
        self._build()
        self.n_train = train.n
        self._prepare(self.label_features(X), train)
        if c["mode"] == "features":
            self.X = torch.as_tensor(X, device=dev)
        else:
            self.X = None
            self.loader_data = RowDataset(X)
        self.opt = self._optimizer(list(self.net.parameters()) + self._extra_params())
        self.gen = torch.Generator()
        self.gen.manual_seed(self.seed)
        self._train_epochs(1, int(c["epochs"]), valid=valid, tracker=tracker)
        self.X = self._batch_x = None

    def _batches(self):
        perm = torch.randperm(self.n_train, generator=self.gen)
        bs = int(self.config["batch_size"])
        batches = [perm[s:s + bs] for s in range(0, self.n_train, bs) if len(perm[s:s + bs]) > 1]
        if self.X is not None:
            for b in batches:
                yield b.to(self.device), self.X[b.to(self.device)]
            return
        loader = torch.utils.data.DataLoader(self.loader_data, batch_sampler=[b.tolist() for b in batches],
                                             num_workers=int(self.config["num_workers"]),
                                             pin_memory=self.device.type == "cuda")
        for b, x in zip(batches, loader):
            yield b.to(self.device), x.to(self.device, non_blocking=True)

    def _run_epoch(self, epoch: int) -> dict:
        self.net.train()
        sums: dict = {"loss": 0.0}
        n = 0
        for idx, x in self._batches():
            self._batch_x = x
            logits = self.net(x)
            h = torch.tanh(logits)
            loss = self._loss(idx, h, logits)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            extra = self._after_step(idx, x, h.detach()) or {}
            for k, v in {"loss": float(loss.detach()), **extra}.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
            n += len(idx)
        return {k: v / max(n, 1) for k, v in sums.items()}

    def _checkpoint_extra(self) -> dict:
        return {"opt": self.opt.state_dict(), "gen": self.gen.get_state(), "prep": self.prep}

    def _restore_extra(self, ck: dict) -> None:
        self.opt.load_state_dict(ck["opt"])
        self.gen.set_state(ck["gen"])
        self.prep = ck["prep"]

    # -- encoding / persistence --------------------------------------------------------------------
    @torch.no_grad()
    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        self.net.eval()
        X = self._prep_input(X)
        out = []
        for s in range(0, len(X), 4096):
            xb = torch.as_tensor(X[s:s + 4096], device=self.device)
            out.append(self.net(xb).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.bits), np.float32)

    def _get_state(self) -> dict:
        state = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        state.update({f"prep.{k}": v for k, v in self.prep.items()})
        return state

    def _set_state(self, state: dict) -> None:
        if self.config["device"] not in ("auto", "cpu") and not torch.cuda.is_available():
            self.config["device"] = "auto"
        self._build()
        self.net.load_state_dict({k[4:]: torch.as_tensor(v) for k, v in state.items() if k.startswith("net.")})
        self.prep = {k[5:]: v for k, v in state.items() if k.startswith("prep.")}


# -- pairwise helpers shared by the losses --------------------------------------------------------


def code_inner(h: torch.Tensor) -> torch.Tensor:
    """``Θ_ij = ½ h_iᵀ h_j`` for relaxed codes ``h (B, bits)`` (DPSH's pairwise logit)."""
    return 0.5 * h @ h.T


def pairwise_nll(theta: torch.Tensor, s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted negative log-likelihood of pair labels ``s ∈ {0, 1}`` under
    ``p(s=1) = σ(Θ)``: ``Σ w (log(1 + e^Θ) − s Θ) / Σ w``."""
    nll = nn.functional.softplus(theta) - s * theta
    return (weight * nll).sum() / weight.sum().clamp_min(1e-12)


def quantization(h: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``(|h| − 1)²``: relaxed codes pushed to ±1 (optionally weighted per bit)."""
    q = (h.abs() - 1.0) ** 2
    return (q * weight).mean() if weight is not None else q.mean()


def cosine_matrix(F: torch.Tensor, G: torch.Tensor | None = None) -> torch.Tensor:
    F = nn.functional.normalize(F, dim=1)
    G = F if G is None else nn.functional.normalize(G, dim=1)
    return F @ G.T
