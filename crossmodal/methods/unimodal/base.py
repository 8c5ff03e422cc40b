"""Shared parts of the image-only hashers: :class:`ImageHasher` (every image-only method) and
:class:`DeepImageHasher`, the base of the deep ones on the shared torch base.

Image-only hashers encode the image side only (``modalities == ("image",)``) and are
evaluated I→I with the same metrics, index and reports as the cross-modal ones.

Deep methods subclass :class:`DeepImageHasher` and write only their targets and loss:
``_prepare(X, train)`` once before training (neighbours, thresholds, clusters), ``_loss(idx, h, logits)``
for one batch (``h = tanh(net(x))`` are the relaxed codes, ``(B, bits)``), and optionally
``_after_step(idx, x, h)`` (DMUH's momentum update). The machinery (device, ``amp``, the
optimiser, seeded batches, per-epoch validation and model selection, checkpoints and resume,
tracking, progress bars) is :class:`~crossmodal.methods.torch_base.TorchHasher`. Their config keys
are :data:`DEEP_PARAMS` plus their own: ``params = deep_params(standardize=...) + (Param(...), ...)``.

The network (:class:`~crossmodal.nets.ImageTower`) is feature -> ``hidden`` (tanh) -> bits
(``hidden: 0`` makes it linear). Batches: a seeded permutation of the training items each
epoch; a last batch of one item is dropped (the pair losses need two).

Two input modes (config ``mode``):

* ``features`` (default): rows of ``PairedData.image`` are feature vectors, standardised with
  ``standardize`` (:mod:`crossmodal.methods.standardize`, zscore floor 1e-6).
* ``end2end``: rows are raw images flattened from ``image_shape`` (C, H, W) in ``image_layout``
  order, values in [0, 1]; a backbone (:mod:`crossmodal.methods.backbones`: ``tiny``,
  torchvision, ``hf:PATH``) turns them into features first, and is trained with the head.
  Batches come from a ``DataLoader`` with ``num_workers`` workers and pinned memory on a GPU.
  The pseudo-labels of the unsupervised methods (DistillHash's pairs, DSG's signals) are built,
  as the papers build them, from *pretrained features*: the backbone's output at
  initialisation (``(N, backbone output size)``, standardised with ``standardize``), never from
  raw pixels (:meth:`DeepImageHasher.label_features`).

Model selection (``selection``): ``validation`` (labelled validation split), ``last`` (fixed
epochs) or ``loss`` (lowest training loss); see :mod:`crossmodal.methods.training`. The rule used
is :attr:`model_selection`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from crossmodal.data import PairedData
from crossmodal.errors import DataError
from crossmodal.methods.backbones import END2END_PARAMS
from crossmodal.methods.base import Hasher
from crossmodal.methods.params import Choice, Param, Range
from crossmodal.methods.standardize import STANDARDIZE, apply_standardizer, fit_standardizer, standardized
from crossmodal.methods.torch_base import (OPTIMIZERS, TRAINED_PARAMS, RowDataset, TorchHasher, load_module_arrays,
                                           module_arrays, seeded_generator)
from crossmodal.nets import ImageTower, hash_head


class ImageHasher(Hasher):
    """A hasher of images only (I→I retrieval); text features, if any, are ignored."""

    modalities = ("image",)


DEEP_PARAMS = (
    Param("hidden", 1024, int, Range(0, None),
          "hidden units of the hash MLP (feature -> hidden (tanh) -> bits; 0: linear)"),
    Param("epochs", 50, int, Range(1, None), "training epochs"),
    Param("batch_size", 128, int, Range(2, None), "items per batch (the losses pair the items of a batch)"),
    Param("optimizer", "adam", str, Choice(*OPTIMIZERS), "optimiser (sgd: momentum 0.9; adam; adamw)"),
    Param("lr", 1e-3, float, Range(0, None, low_open=True), "learning rate"),
    Param("weight_decay", 1e-5, float, Range(0, None), "L2 weight decay of the optimiser"),
    Param("standardize", "zscore", str, Choice(*STANDARDIZE),
          "feature preprocessing: zscore (per column), center, scale (centre + one global factor), l2, none"),
    Param("quant_weight", 0.1, float, Range(0, None), "weight of the quantisation term mean((|h| - 1)^2)"),
) + END2END_PARAMS + TRAINED_PARAMS


def deep_params(**defaults) -> tuple[Param, ...]:
    """:data:`DEEP_PARAMS` with some defaults changed (``standardize="center"``)."""
    names = {p.name for p in DEEP_PARAMS}
    unknown = set(defaults) - names
    if unknown:
        raise KeyError(f"not in DEEP_PARAMS: {', '.join(sorted(unknown))}")
    return tuple(replace(p, default=defaults[p.name]) if p.name in defaults else p for p in DEEP_PARAMS)


class DeepImageHasher(TorchHasher, ImageHasher):
    """Base of the deep image hashers (see the module docstring)."""

    params = DEEP_PARAMS
    uses_labels = False
    sgd_momentum = 0.9
    encode_chunk = 4096

    def __init__(self, bits: int, seed: int = 0, **config):
        super().__init__(bits, seed=seed, **config)
        self.prep: dict = {}
        self.net: ImageTower | None = None

    # -- network -----------------------------------------------------------------------------------
    def _build(self, load_weights: bool = True) -> None:
        """The network, seeded; ``load_weights``: read ``backbone_weights`` (not when a saved
        model's weights are about to replace them)."""
        torch.manual_seed(self.seed)

        def head(in_dim: int):
            return hash_head(in_dim, int(self.config["hidden"]), self.bits)

        net = self._image_tower(head, load_weights) if self.end2end else ImageTower(head(self.dims["image"]))
        self.net = net.to(self.device)

    def label_features(self, X: np.ndarray) -> np.ndarray:
        """The features the pseudo-labels are built from: ``X`` itself in ``mode: features``;
        in ``mode: end2end`` the backbone's (pretrained) features of the raw rows ``X (N, C*H*W)``,
        ``(N, backbone output size) float32``, standardised with ``standardize``."""
        if not self.end2end:
            return X
        return standardized(self._backbone_features(self.net, X), self.config["standardize"])

    def _prep_input(self, X: np.ndarray) -> np.ndarray:
        """The network's input rows ``(N, D) float32``: standardised features, or raw-image rows as they are."""
        if self.end2end:
            return np.asarray(X, dtype=np.float32)
        return apply_standardizer(X, self.prep, self.config["standardize"])

    def _nets(self) -> dict:
        return {"net": self.net}

    # -- method hooks ------------------------------------------------------------------------------
    def _prepare(self, X: np.ndarray, train: PairedData) -> None:
        """Targets computed once before training, from ``X = label_features(...)`` (the
        preprocessed features, or in end2end mode the backbone's features), ``(N, D) float32``."""

    def _loss(self, idx: torch.Tensor, h: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Loss of one batch: ``idx (B,) int64`` training rows, relaxed codes ``h = tanh(logits)``
        and ``logits``, both ``(B, bits)`` float32 (the batch's rows are ``self._batch_x``)."""
        raise NotImplementedError

    def _after_step(self, idx: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> dict | None:
        """Called after each optimiser step; may return per-batch statistics to average."""
        return None

    def _extra_params(self) -> list:
        """Parameters trained with the network by the same optimiser (e.g. URPH's decoder)."""
        return []

    # -- training ----------------------------------------------------------------------------------
    def _fit(self, train: PairedData, valid, tracker) -> None:
        c, dev = self.config, self.device
        if self.uses_labels and train.labels is None:
            raise DataError(f"{self.name} is supervised: the training items need labels")
        self.check_data(train)
        self.prep = {} if self.end2end else fit_standardizer(train.image, c["standardize"])
        X = self._prep_input(train.image)
        self._build()
        self.n_train = train.n
        self._prepare(self.label_features(X), train)
        self.X, self.loader_data = (None, RowDataset(X)) if self.end2end else (torch.as_tensor(X, device=dev), None)
        self.opt = self._optim(list(self.net.parameters()) + self._extra_params(), c["lr"])
        self.gen = seeded_generator(self.seed)
        self._train_epochs(1, int(c["epochs"]), valid=valid, tracker=tracker)
        self.X = self._batch_x = self.loader_data = None

    def _run_epoch(self, epoch: int) -> dict:
        self.net.train()
        sums: dict = {"loss": 0.0}
        n = 0
        batches = self._epoch_batches(self.n_train, int(self.config["batch_size"]))
        for idx, x in self._image_batches(batches, self.X, self.loader_data):
            self._batch_x = x
            with self._autocast():
                logits = self.net(x).float()
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
    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        """Network logits ``(N, bits)`` float32; the code is their sign."""
        return self._encode_rows(self.net, X, self.encode_chunk, prep=self._prep_input)

    def _get_state(self) -> dict:
        """``net.*``: the network's weights; ``prep.{mean|scale}`` ``(D,) float32`` (features mode)."""
        return {**module_arrays("net", self.net), **{f"prep.{k}": v for k, v in self.prep.items()}}

    def _set_state(self, state: dict) -> None:
        self._load_device()
        self._build(load_weights=False)
        load_module_arrays(self.net, "net", state)
        self.prep = {k[5:]: v for k, v in state.items() if k.startswith("prep.")}
