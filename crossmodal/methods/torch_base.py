"""The one torch base of every trained method: UGACH, the deep cross-modal hashers (DJSRH, JDSH,
DGCPN, UCCH) and the deep image hashers (DistillHash, DSG, DMUH, URPH).

:class:`TorchHasher` is a mixin on :class:`~crossmodal.methods.training.EpochTrainer` (the epoch
loop, model selection, checkpoints) placed before :class:`~crossmodal.methods.base.Hasher` in a
method's bases. It owns, once for all of them:

* the **device** (config ``device``; ``auto`` is CUDA when present) and, when a saved model
  trained on a GPU is loaded on a machine without one, the fallback to ``auto`` (:meth:`_load_device`);
* **AMP**: bfloat16 autocast on CUDA when ``amp`` is on (:meth:`_autocast`; losses stay float32);
* the **optimiser table** :data:`OPTIMIZERS`, one meaning per name (:func:`build_optimizer`):
  ``sgd`` is torch SGD with a momentum (the method's ``sgd_momentum`` or its config's), ``adam``
  torch Adam, ``adamw`` torch AdamW, each with the config's ``weight_decay``;
* **batching**: one seeded permutation of the training rows per epoch cut into batches
  (:func:`batch_indices`), the dropping of a short last batch a class attribute ``drop_last``
  so that each method keeps its batches; image rows come from the device, or for raw-image rows
  (``mode: end2end``) through a ``DataLoader`` (:meth:`_image_batches`);
* **chunked encoding** (:meth:`_encode_rows`: eval mode, ``(N, bits)`` float32 logits chunk by
  chunk) and the **backbone features** of raw-image rows (:meth:`_backbone_features`);
* the **end-to-end image tower** (:meth:`_image_tower`) and its config checks;
* the config keys every trained method shares, :data:`TRAINED_PARAMS` (each method concatenates
  them to its own).

Feature standardisation is :mod:`crossmodal.methods.standardize`; the towers are :mod:`crossmodal.nets`.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from crossmodal.data import PairedData
from crossmodal.engine import resolve_device
from crossmodal.errors import ConfigError
from crossmodal.methods.backbones import backbone_input, build_backbone, check_end2end, check_end2end_config
from crossmodal.methods.params import Choice, Param, Range
from crossmodal.methods.training import SELECTION_RULES, EpochTrainer
from crossmodal.nets import ImageTower

OPTIMIZERS = ("sgd", "adam", "adamw")
DROP_LAST = ("never", "single", "incomplete")

TRAINED_PARAMS = (
    Param("device", "auto", str, None, "torch device: auto (CUDA when present), cpu, cuda, cuda:N"),
    Param("amp", False, bool, None, "bfloat16 autocast of the networks' forward passes on CUDA"),
    Param("keep_checkpoints", 2, int, Range(1, None), "per-epoch checkpoints kept for resuming"),
    Param("progress", True, bool, None, "progress bars"),
    Param("selection", "validation", str, Choice(*SELECTION_RULES),
          "model selection: validation split, last epoch, or lowest training loss"),
)


def build_optimizer(name: str, params, lr: float, weight_decay: float, momentum: float = 0.0):
    """Optimiser ``name`` (:data:`OPTIMIZERS`) over ``params``: ``sgd`` = ``torch.optim.SGD`` with
    ``momentum``, ``adam`` = ``torch.optim.Adam``, ``adamw`` = ``torch.optim.AdamW``."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def batch_indices(perm: torch.Tensor, batch_size: int, drop_last: str) -> list[torch.Tensor]:
    """``perm (N,)`` cut into consecutive batches of ``batch_size``. ``drop_last``: ``never`` keeps
    every batch; ``single`` drops a last batch of one item (the pair losses need two);
    ``incomplete`` also drops a short last batch when there is more than one batch (the official
    loaders' ``drop_last=True``)."""
    if drop_last not in DROP_LAST:
        raise ValueError(f"drop_last must be one of {', '.join(DROP_LAST)}, got {drop_last!r}")
    n = len(perm)
    stop = n - n % batch_size if drop_last == "incomplete" and n > batch_size else n
    batches = [perm[s:s + batch_size] for s in range(0, stop, batch_size)]
    return batches if drop_last == "never" else [b for b in batches if len(b) > 1]


def seeded_generator(seed: int, device=None) -> torch.Generator:
    """A torch generator on ``device`` (CPU by default) seeded with ``seed``."""
    gen = torch.Generator() if device is None else torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


class RowDataset(torch.utils.data.Dataset):
    """Rows of a (possibly memory-mapped) matrix ``X (N, D)`` as float32 tensors ``(D,)``."""

    def __init__(self, X: np.ndarray):
        self.X = X

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.from_numpy(np.asarray(self.X[i], dtype=np.float32))


def module_arrays(prefix: str, module: nn.Module) -> dict[str, np.ndarray]:
    """``{prefix.weight_name: array}``: a module's weights as the NumPy arrays ``state.npz`` holds."""
    return {f"{prefix}.{k}": v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_module_arrays(module: nn.Module, prefix: str, state: dict) -> None:
    """Load the ``prefix.*`` arrays of ``state`` (as :func:`module_arrays` wrote them) into ``module``."""
    cut = len(prefix) + 1
    module.load_state_dict({k[cut:]: torch.as_tensor(v) for k, v in state.items() if k.startswith(prefix + ".")})


class TorchHasher(EpochTrainer):
    """Mixin of every torch-trained hasher (see the module docstring); before ``Hasher`` in the bases."""

    drop_last = "single"  # batch_indices policy of this method's epochs
    sgd_momentum = 0.9  # momentum of optimizer: sgd when the method has no momentum key
    encode_chunk = 8192  # rows per forward pass when encoding feature rows

    def __init__(self, bits: int, seed: int = 0, **config):
        super().__init__(bits, seed=seed, **config)
        if self.end2end:
            check_end2end_config(self.name, self.config)

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config["device"])

    @property
    def end2end(self) -> bool:
        """True when the image rows are raw images for a backbone (config ``mode: end2end``)."""
        return self.config.get("mode") == "end2end"

    def check_data(self, data: PairedData) -> None:
        if "mode" in self.config:
            check_end2end(self.name, self.config, data.image_dim)

    def _autocast(self):
        """bfloat16 autocast when ``amp`` is on and the device is CUDA; a no-op otherwise."""
        if self.config["amp"] and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _optim(self, params, lr: float, momentum: float | None = None):
        """The config's optimiser over ``params`` (a module or an iterable of tensors) at rate ``lr``."""
        if isinstance(params, nn.Module):
            params = params.parameters()
        m = self.sgd_momentum if momentum is None else momentum
        return build_optimizer(self.config["optimizer"], params, lr, self.config["weight_decay"], m)

    def _load_device(self) -> None:
        """Before a saved model is rebuilt: a model trained on a GPU loads on a CPU-only machine."""
        if self.config["device"] not in ("auto", "cpu") and not torch.cuda.is_available():
            self.config["device"] = "auto"

    # -- batches ---------------------------------------------------------------------------------
    def _epoch_batches(self, n: int, batch_size: int) -> list[torch.Tensor]:
        """One epoch's batches of row indices: a permutation of ``n`` drawn from ``self.gen`` (on
        its device), cut by :func:`batch_indices` with this method's ``drop_last``."""
        perm = torch.randperm(n, generator=self.gen, device=self.gen.device)
        return batch_indices(perm, batch_size, self.drop_last)

    def _image_batches(self, batches: list, X: torch.Tensor | None, rows: RowDataset | None = None):
        """``(idx (B,), x (B, D))`` on the device for each batch: rows of the device tensor ``X``,
        or when ``X`` is None of ``rows`` through a ``DataLoader`` (``num_workers``, pinned memory
        on a GPU), so that raw-image rows stay in host memory."""
        dev = self.device
        if X is not None:
            for b in batches:
                b = b.to(dev)
                yield b, X[b]
            return
        loader = torch.utils.data.DataLoader(rows, batch_sampler=[b.tolist() for b in batches],
                                             num_workers=int(self.config["num_workers"]),
                                             pin_memory=dev.type == "cuda")
        for b, x in zip(batches, loader):
            yield b.to(dev), x.to(dev, non_blocking=True)

    # -- networks --------------------------------------------------------------------------------
    def _image_tower(self, head, load_weights: bool = True) -> ImageTower:
        """End-to-end image tower: the config's backbone (its ImageNet ``backbone_weights`` read
        when ``load_weights``), then ``head(out_dim)`` on its features."""
        c = self.config
        backbone, out_dim = build_backbone(c["backbone"], int(c["image_shape"][0]),
                                           c["backbone_weights"] if load_weights else "")
        return ImageTower(head(out_dim), backbone, backbone_input(c["backbone"]), c["image_shape"], c["image_layout"])

    # -- encoding --------------------------------------------------------------------------------
    @torch.no_grad()
    def _encode_rows(self, module: nn.Module, X, chunk: int, call=None, prep=None, width: int | None = None,
                     autocast: bool = True) -> np.ndarray:
        """Rows ``X (N, D)`` through ``call`` (``module`` by default) ``chunk`` rows at a time, each
        chunk first through ``prep`` (else as float32), in eval mode (``module``'s mode restored
        after) and under :meth:`_autocast` unless ``autocast`` is False; ``(N, width) float32``
        (``width`` defaults to ``bits``)."""
        call = module if call is None else call
        was = module.training
        module.eval()
        out = []
        for s in range(0, len(X), chunk):
            xb = prep(X[s:s + chunk]) if prep is not None else np.asarray(X[s:s + chunk], dtype=np.float32)
            with self._autocast() if autocast else nullcontext():
                out.append(call(torch.as_tensor(xb, device=self.device)).float().cpu().numpy())
        module.train(was)
        return np.concatenate(out) if out else np.zeros((0, width or self.bits), np.float32)

    def _backbone_features(self, tower: ImageTower, X) -> np.ndarray:
        """The backbone's features of raw-image rows ``X (N, C*H*W)``, in eval mode, 256 rows at a
        time: ``(N, backbone output size) float32``."""
        return self._encode_rows(tower, X, 256, call=tower.features, width=1)
