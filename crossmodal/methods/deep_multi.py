"""The deep cross-modal base with networks beyond the two towers (UCMFH, CIRH, DAEH).

:class:`MultiNetHasher` is :class:`~crossmodal.methods.deep.DeepCrossModalHasher` whose
``self.towers`` (an ``nn.ModuleDict``) may hold more modules than ``image`` and ``text``: a
fusion transformer (UCMFH), a graph network (CIRH), a teacher and its decoders (DAEH). A method
adds them in ``_extra_modules(load_weights) -> {name: module}``; each one gets its own optimiser
(the config's ``optimizer`` at ``_extra_lr(name)``; a :class:`Frozen` module none: it stays in eval
mode without gradients), is checkpointed, saved in ``state.npz`` under its name and restored, and every step
zeroes and steps all optimisers (:meth:`MultiNetHasher._step`).

:data:`FEATURES_PARAMS` are the shared deep keys without the end-to-end ones, for methods whose
released code trains on feature matrices only (UCMFH on CLIP features, CIRH).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from crossmodal.methods.backbones import END2END_PARAMS
from crossmodal.methods.deep import DEEP_CM_PARAMS, MODALITIES, DeepCrossModalHasher
from crossmodal.methods.params import Param
from crossmodal.methods.torch_base import load_module_arrays, module_arrays

END2END_KEYS = tuple(p.name for p in END2END_PARAMS) + ("backbone_frozen_epochs",)
FEATURES_PARAMS = tuple(p for p in DEEP_CM_PARAMS if p.name not in END2END_KEYS)


def replace_params(params: tuple, *new: Param) -> tuple:
    """``params`` with each param of ``new`` in place of the one of the same name (order kept)."""
    by_name = {p.name: p for p in new}
    return tuple(by_name.get(p.name, p) for p in params)


class Frozen(nn.Module):
    """A module kept in eval mode without gradients (``train()`` does not switch it back)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class MultiNetHasher(DeepCrossModalHasher):
    """Deep cross-modal hasher with extra trained modules (see the module docstring)."""


    def _extra_modules(self, load_weights: bool) -> dict:
        """``{name: module}`` built after the two towers (same seeded RNG stream)."""
        return {}

    def _extra_lr(self, name: str) -> float:
        """Learning rate of the extra module ``name`` (the image tower's ``lr`` unless overridden)."""
        return self.config["lr"]

    def _build(self, load_weights: bool = True) -> None:
        super()._build(load_weights)
        extra = self._extra_modules(load_weights)
        for name, module in extra.items():
            self.towers[name] = module.to(self.device)

    def _nets(self) -> dict:
        return dict(self.towers.items())

    def _setup(self, train) -> None:
        super()._setup(train)
        for name in self.towers:
            if name not in MODALITIES and not isinstance(self.towers[name], Frozen):
                self.opts[name] = self._optim(self.towers[name], self._extra_lr(name), momentum=self.config["momentum"])

    def _step(self, loss: torch.Tensor, modalities=None) -> None:
        """Backward ``loss`` and step the optimisers of ``modalities`` (default: every optimiser);
        every optimiser's gradients are zeroed first."""
        names = tuple(self.opts) if modalities is None else tuple(modalities)
        for o in self.opts.values():
            o.zero_grad(set_to_none=True)
        loss.backward()
        if self.config["grad_clip"] > 0:
            nn.utils.clip_grad_norm_([p for n in names for p in self.towers[n].parameters()], self.config["grad_clip"])
        for n in names:
            self.opts[n].step()

    def _checkpoint_extra(self) -> dict:
        """The base's resume state plus torch's global RNG (the dropout of these methods' networks)."""
        extra = super()._checkpoint_extra()
        extra["torch_rng"] = torch.get_rng_state()
        if self.device.type == "cuda":
            extra["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return extra

    def _restore_extra(self, ck: dict) -> None:
        super()._restore_extra(ck)
        if "torch_rng" in ck:
            torch.set_rng_state(ck["torch_rng"])
        if "cuda_rng" in ck and self.device.type == "cuda":
            torch.cuda.set_rng_state(ck["cuda_rng"], self.device)

    def _get_state(self) -> dict:
        """``{module}.{weight name}`` for every module of ``self.towers``; ``prep.{modality}.{key}``."""
        state = {k: v for name, m in self.towers.items() for k, v in module_arrays(name, m).items()}
        state.update({f"prep.{m}.{k}": v for m, p in self.prep.items() for k, v in p.items()})
        return state

    def _set_state(self, state: dict) -> None:
        super()._set_state(state)
        for name, module in self.towers.items():
            if name not in MODALITIES:
                load_module_arrays(module, name, state)

    def _device_rows(self, X) -> torch.Tensor:
        """``X (N, D)`` as a float32 tensor on the device."""
        return torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device)
