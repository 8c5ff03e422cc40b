"""Shared base of the deep unsupervised cross-modal hashers (DJSRH, JDSH, DGCPN, UCCH).

:class:`DeepCrossModalHasher` is the cross-modal counterpart of
:class:`crossmodal.methods.unimodal.base.DeepImageHasher`: an image tower and a text tower
(MLPs on feature matrices), trained in mini-batches of training *pairs* on the shared torch base
:class:`~crossmodal.methods.torch_base.TorchHasher` (device, AMP, optimisers, batches, per-epoch
validation and model selection, checkpoints and resume, tracker logging, progress bar). A method
writes only

* ``_prepare(train)``: anything computed once before training (a kNN graph, fitted
  thresholds, a memory bank), from ``self.F`` (the similarity features, see below) or the
  tower inputs ``self.X``;
* ``_loss(idx, xi, xt, hi, ht) -> Tensor | (Tensor, dict)``: the loss of one batch, where
  ``idx (B,) int64`` are the training rows, ``xi (B, Di)`` / ``xt (B, Dt)`` the tower inputs
  and ``hi`` / ``ht (B, bits)`` the relaxed codes (``_relax(logits)``, ``tanh`` by default);

and optionally ``_relax`` (e.g. DJSRH's ``tanh(sqrt(epoch) h)``), ``_after_step`` (UCCH's
memory-bank update), ``_train_step`` (methods with alternating updates, e.g. DGCPN, call
``self._forward`` and ``self._step`` rather than copying the loop), ``_extra_state`` /
``_load_extra_state`` (tensors a resumed run needs, e.g. UCCH's memory bank).

Towers (config ``hidden`` / ``hidden_text``): ``feature -> [Linear -> ReLU -> Dropout]* ->
Linear -> bits`` (:class:`~crossmodal.nets.MLPTower`); the bit is ``logit >= 0`` (sign(0) = +1).
Each tower has its own optimiser (``optimizer``: ``sgd`` with ``momentum``, ``adam`` or ``adamw``;
``lr`` for the image tower, ``lr_text`` for the text tower, as DJSRH/JDSH/DGCPN's official
code keeps two SGD optimisers); gradient clipping (``grad_clip``) is over both towers' weights
together, as UCCH's single optimiser does.

Features: ``standardize`` preprocesses the towers' inputs (statistics from the training
pairs, saved with the model; :mod:`crossmodal.methods.standardize`, zscore floor 1e-6).
``self.F = {"image", "text"}`` holds the features the methods build their similarity targets
from: the features *as given* (``sim_features: raw``, the official codes' choice: cosine of
VGG/AlexNet fc7 and of the tag BoW) or the standardised tower inputs (``sim_features: input``),
both L2-normalised per row.

Batches: a seeded permutation of the training pairs each epoch; like the official loaders
(``drop_last=True``) the last incomplete batch is dropped when there is more than one batch.
Everything runs on ``device`` (CUDA when present), with bfloat16 autocast for the towers when
``amp`` is on (losses in float32).

Two input modes of the image side (config ``mode``):

* ``features`` (default): image rows are feature vectors (VGG19 fc7, CLIP, SIFT BoVW, ...)
  and the image tower is the MLP above.
* ``end2end``: image rows are raw images flattened from ``image_shape`` ``[C, H, W]`` in the
  ``image_layout`` order (``chw``, or ``hwc`` as the ``pixels`` featurizer and the ``toy``
  dataset write them), values in [0, 1]. The image tower is :class:`~crossmodal.nets.ImageTower`:
  a backbone (``tiny``, torchvision ``alexnet`` / ``vgg11`` / ``vgg16`` / ``vgg19`` / ``resnet18``
  when torchvision imports, ImageNet weights from the local ``backbone_weights`` file, or
  ``hf:PATH``; :mod:`crossmodal.methods.backbones`), each with the input it expects, then the MLP
  head (``hidden: []`` is the official ``fc_encode`` on fc7); the whole tower is trained with
  the image optimiser, except in the first ``backbone_frozen_epochs`` epochs (UCCH's warm-up),
  or never with ``-1`` (JDSH's frozen AlexNet), when the backbone runs in eval mode without
  gradients. Image batches come from a ``DataLoader`` (``num_workers``, pinned memory
  on a GPU), so the raw rows stay in host memory (a memory-mapped ``image.npy`` is read per
  batch). The image similarity features ``F["image"]`` are the backbone's features at
  initialisation (eval mode, computed once): the official DJSRH/JDSH/DGCPN code computes them
  each batch with a separate frozen copy of the pretrained AlexNet, which gives the same
  values without augmentation. The text side is unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from crossmodal.data import PairedData
from crossmodal.methods.backbones import END2END_PARAMS
from crossmodal.methods.base import Hasher
from crossmodal.methods.params import Choice, Param, Range
from crossmodal.methods.standardize import STANDARDIZE, apply_standardizer, fit_standardizer, standardized
from crossmodal.methods.torch_base import (OPTIMIZERS, TRAINED_PARAMS, RowDataset, TorchHasher, load_module_arrays,
                                           module_arrays, seeded_generator)
from crossmodal.nets import MLPTower

MODALITIES = ("image", "text")

DEEP_CM_PARAMS = (
    Param("epochs", 50, int, Range(1, None), "training epochs (passes over the training pairs)"),
    Param("batch_size", 128, int, Range(2, None), "training pairs per mini-batch (B: the batch similarity is B x B)"),
    Param("optimizer", "sgd", str, Choice(*OPTIMIZERS), "optimiser of each tower (SGD with `momentum`, Adam, AdamW)"),
    Param("lr", 1e-3, float, Range(0, None, low_open=True), "learning rate of the image tower"),
    Param("lr_text", None, float, Range(0, None, low_open=True), "learning rate of the text tower (null: lr)",
          nullable=True),
    Param("momentum", 0.9, float, Range(0, 1, high_open=True), "SGD momentum"),
    Param("weight_decay", 5e-4, float, Range(0, None), "L2 weight decay of both towers"),
    Param("hidden", [4096], list, Range(1, None), "hidden widths of the image tower ([]: linear)", item=int),
    Param("hidden_text", None, list, Range(1, None), "hidden widths of the text tower (null: same as hidden)",
          item=int, nullable=True),
    Param("dropout", 0.0, float, Range(0, 1, high_open=True), "dropout after each hidden layer"),
    Param("grad_clip", 0.0, float, Range(0, None), "clip the gradient norm of both towers together (0: off)"),
    Param("standardize", "none", str, Choice(*STANDARDIZE),
          "preprocessing of the towers' input features (statistics of the training pairs)"),
    Param("sim_features", "raw", str, Choice("raw", "input"),
          "features of the similarity targets: as given (official) or the standardised tower inputs"),
) + TRAINED_PARAMS + END2END_PARAMS + (
    Param("backbone_frozen_epochs", 0, int, Range(-1, None),
          "end2end: first epochs with the backbone frozen in eval mode (-1: always, a frozen feature net)"),
)


class DeepCrossModalHasher(TorchHasher, Hasher):
    """Base of the deep unsupervised cross-modal hashers (see the module docstring)."""

    params = DEEP_CM_PARAMS
    drop_last = "incomplete"  # as the official loaders (drop_last=True)
    transient: tuple = ()  # attributes (training-only tensors) released after fit

    def __init__(self, bits: int, seed: int = 0, **config):
        super().__init__(bits, seed=seed, **config)
        self.prep: dict = {}
        self.towers: nn.ModuleDict | None = None
        self.epoch = 0

    # -- networks --------------------------------------------------------------------------------
    def _hidden(self, modality: str) -> list:
        c = self.config
        return list(c["hidden"] if modality == "image" or c["hidden_text"] is None else c["hidden_text"])

    def _build(self, load_weights: bool = True) -> None:
        """Both towers, seeded; ``load_weights``: read ``backbone_weights`` (not when a saved
        model's weights are about to replace them)."""
        c = self.config
        torch.manual_seed(self.seed)
        towers = {}
        for m in MODALITIES:
            if m == "image" and self.end2end:
                towers[m] = self._image_tower(lambda d: MLPTower(d, self._hidden(m), self.bits, c["dropout"]),
                                              load_weights)
            else:
                towers[m] = MLPTower(self.dims[m], self._hidden(m), self.bits, c["dropout"])
        self.towers = nn.ModuleDict(towers).to(self.device)

    def _nets(self) -> dict:
        return {m: self.towers[m] for m in MODALITIES}

    def _optimizer(self, modality: str):
        c = self.config
        lr = c["lr"] if modality == "image" or c["lr_text"] is None else c["lr_text"]
        return self._optim(self.towers[modality], lr, momentum=c["momentum"])

    def _prep_input(self, modality: str, X: np.ndarray) -> np.ndarray:
        if modality == "image" and self.end2end:
            return np.asarray(X, dtype=np.float32)
        return apply_standardizer(X, self.prep.get(modality, {}), self.config["standardize"])

    def backbone_features(self, X: np.ndarray) -> np.ndarray:
        """End-to-end mode: the image backbone's features of raw rows ``X (N, C*H*W)``, in eval
        mode, ``(N, backbone output size) float32``."""
        return self._backbone_features(self.towers["image"], X)

    # -- method hooks ----------------------------------------------------------------------------
    def _prepare(self, train: PairedData) -> None:
        """Anything computed once before training (``self.F``, ``self.X`` are on the device)."""

    def _loss(self, idx: torch.Tensor, xi: torch.Tensor, xt: torch.Tensor, hi: torch.Tensor, ht: torch.Tensor):
        """Loss of one batch; may return ``(loss, {name: float})`` to log parts of it."""
        raise NotImplementedError

    def _relax(self, logits: torch.Tensor) -> torch.Tensor:
        """Relaxed codes from tower logits ``(B, bits)``; ``tanh`` unless a method overrides."""
        return torch.tanh(logits)

    def _after_step(self, idx: torch.Tensor, hi: torch.Tensor, ht: torch.Tensor) -> dict | None:
        """Called after each training step with the step's (detached) relaxed codes."""
        return None

    def _extra_state(self) -> dict:
        """Tensors a resumed run needs besides the towers and optimisers (e.g. a memory bank)."""
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass

    # -- one training step (methods with alternating updates override _train_step) ---------------
    def _forward(self, xi: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Relaxed codes ``(hi, ht)``, each ``(B, bits)`` float32."""
        with self._autocast():
            li, lt = self.towers["image"](xi), self.towers["text"](xt)
        return self._relax(li.float()), self._relax(lt.float())

    def _step(self, loss: torch.Tensor, modalities=MODALITIES) -> None:
        """Backward ``loss`` and step the optimisers of ``modalities`` (others keep their grads zeroed)."""
        for m in MODALITIES:
            self.opts[m].zero_grad(set_to_none=True)
        loss.backward()
        if self.config["grad_clip"] > 0:
            ps = [p for m in modalities for p in self.towers[m].parameters()]
            nn.utils.clip_grad_norm_(ps, self.config["grad_clip"])
        for m in modalities:
            self.opts[m].step()

    @staticmethod
    def _split_loss(out) -> tuple[torch.Tensor, dict]:
        return out if isinstance(out, tuple) else (out, {})

    def _train_step(self, idx: torch.Tensor, xi: torch.Tensor, xt: torch.Tensor) -> dict:
        hi, ht = self._forward(xi, xt)
        loss, parts = self._split_loss(self._loss(idx, xi, xt, hi, ht))
        self._step(loss)
        extra = self._after_step(idx, hi.detach(), ht.detach()) or {}
        return {"loss": float(loss.detach()), **parts, **extra}

    # -- training --------------------------------------------------------------------------------
    def _fit(self, train: PairedData, valid, tracker) -> None:
        self._setup(train)
        self._train_epochs(1, self.config["epochs"], valid=valid, tracker=tracker, desc=self.name)
        for name in ("X", "F", "loader_data", *self.transient):
            setattr(self, name, None)

    def _setup(self, train: PairedData) -> None:
        """Everything before the first epoch: preprocessing, features on the device, towers,
        ``_prepare``, optimisers, the seeded batch generator."""
        c, dev = self.config, self.device
        self.dims = {"image": train.image_dim, "text": train.text_dim}
        self.check_data(train)
        raw = {"image": train.image, "text": train.text_dense()}
        e2e = ("image",) if self.end2end else ()
        self.prep = {m: {} if m in e2e else fit_standardizer(raw[m], c["standardize"]) for m in MODALITIES}
        X = {m: self._prep_input(m, raw[m]) for m in MODALITIES if m not in e2e}
        self.n_train = train.n
        self._build()
        self.loader_data = None
        if self.end2end:  # similarity features: the (pretrained) backbone's, as the official frozen copy
            raw["image"] = self.backbone_features(train.image)  # read in chunks: never the whole image.npy
            X["image"] = standardized(raw["image"], c["standardize"])
            self.loader_data = RowDataset(train.image)
        self.X = {m: torch.as_tensor(X[m], device=dev) for m in MODALITIES if m not in e2e}
        src = raw if c["sim_features"] == "raw" else X
        self.F = {m: nn.functional.normalize(torch.as_tensor(np.asarray(src[m], np.float32), device=dev), dim=1)
                  for m in MODALITIES}
        self._prepare(train)
        self.opts = {m: self._optimizer(m) for m in MODALITIES}
        self.gen = seeded_generator(self.seed)

    def _batches(self):
        """``(idx (B,), xi (B, Di), xt (B, Dt))`` on the device, one per batch of the epoch."""
        batches = self._epoch_batches(self.n_train, self.config["batch_size"])
        image = None if self.end2end else self.X["image"]
        for idx, xi in self._image_batches(batches, image, self.loader_data):
            yield idx, xi, self.X["text"][idx]

    def _backbone_frozen(self, epoch: int) -> bool:
        k = self.config["backbone_frozen_epochs"]
        return self.end2end and (k < 0 or epoch <= k)

    def _run_epoch(self, epoch: int) -> dict:
        self.epoch = epoch
        self.towers.train()
        if self.end2end:
            frozen = self._backbone_frozen(epoch)
            backbone = self.towers["image"].backbone
            backbone.train(not frozen)
            backbone.requires_grad_(not frozen)
        sums: dict = {}
        n = 0
        for idx, xi, xt in self._batches():
            rec = self._train_step(idx, xi, xt)
            for k, v in rec.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
            n += len(idx)
        return {k: v / max(n, 1) for k, v in sums.items()}

    def _checkpoint_extra(self) -> dict:
        return {"opts": {m: o.state_dict() for m, o in self.opts.items()}, "gen": self.gen.get_state(),
                "prep": {m: {k: torch.as_tensor(v) for k, v in p.items()} for m, p in self.prep.items()},
                "extra": self._extra_state()}

    def _restore_extra(self, ck: dict) -> None:
        for m, o in self.opts.items():
            o.load_state_dict(ck["opts"][m])
        self.gen.set_state(ck["gen"])
        self.prep = {m: {k: v.numpy() for k, v in p.items()} for m, p in ck["prep"].items()}
        self._load_extra_state(ck.get("extra", {}))

    # -- encoding / persistence ------------------------------------------------------------------
    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        """Tower logits ``(N, bits)`` float32; the code is their sign."""
        chunk = 256 if modality == "image" and self.end2end else self.encode_chunk
        return self._encode_rows(self.towers[modality], X, chunk, prep=lambda xb: self._prep_input(modality, xb))

    def _get_state(self) -> dict:
        """``{modality}.{weight name}``: tower weights; ``prep.{modality}.{mean|scale}`` (D,) float32."""
        state = {k: v for m in MODALITIES for k, v in module_arrays(m, self.towers[m]).items()}
        state.update({f"prep.{m}.{k}": v for m, p in self.prep.items() for k, v in p.items()})
        return state

    def _set_state(self, state: dict) -> None:
        self._load_device()
        self._build(load_weights=False)
        for m in MODALITIES:
            load_module_arrays(self.towers[m], m, state)
        self.prep = {m: {} for m in MODALITIES}
        for k, v in state.items():
            if k.startswith("prep."):
                _, m, key = k.split(".", 2)
                self.prep[m][key] = v
