"""Helpers of the harnesses that run released *Python* code on crossmodal's export (new methods).

A harness (``ucmfh_released.py``, ``cirh_released.py``, ``daeh_released.py``) runs in its own
process: it copies the released repository (a git checkout given on the command line, never part of
this repository) to a temporary folder, applies its listed textual changes there
(:func:`patched_copy`; each must match exactly once, with its reason beside it in the harness),
puts the copy first on ``sys.path``, reads the split that :func:`common.export_mat` wrote
(:func:`read_export`), trains, and writes the codes as ``.npy`` files (:func:`save_codes`) for
``crossmodal import-codes``.

:func:`cpu_only` and :func:`stub_modules` are the mechanical changes every harness may need on a
CPU machine with current packages: ``.cuda()`` becomes a no-op, and packages the executed code
paths never use (torchvision, timm, loguru) become empty stand-ins.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np


def harness_arguments(epochs: int, seed: int = 0) -> argparse.Namespace:
    """The command line of every ``*_released.py`` harness: ``--code`` (the checkout), ``--data``
    (an export of :func:`common.export_mat`), ``--bits``, ``--seed``, ``--epochs`` (default: the
    released count), ``--out`` (the folder the codes go to)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--bits", type=int, required=True)
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--out", required=True)
    return ap.parse_args()


def patched_copy(code: Path, changes: list[tuple[str, str, str, str]]) -> Path:
    """Copy the checkout ``code`` to a temporary folder and apply ``changes``: ``(file, old, new,
    reason)``, ``old`` replaced by ``new`` in ``file``; ``old`` must occur exactly once."""
    tmp = Path(tempfile.mkdtemp(prefix="released-"))
    dst = tmp / Path(code).name
    shutil.copytree(code, dst, ignore=shutil.ignore_patterns(".git"))
    for file, old, new, reason in changes:
        path = dst / file
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise SystemExit(f"{file}: the change '{reason}' expects its text once, found {text.count(old)}")
        path.write_text(text.replace(old, new), encoding="utf-8")
    sys.path.insert(0, str(dst))
    return dst


def cpu_only() -> None:
    """``Tensor.cuda()`` and ``Module.cuda()`` return the object unchanged (the released code
    calls them unconditionally)."""
    import torch

    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self


def stub_modules(*names: str) -> None:
    """Empty stand-in modules for packages the executed code imports but never calls; ``loguru``
    gets a ``logger`` whose methods do nothing."""
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            full = ".".join(parts[:i])
            if full not in sys.modules:
                sys.modules[full] = types.ModuleType(full)
                if i > 1:
                    setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[full])
    if "loguru" in names:
        sys.modules["loguru"].logger = types.SimpleNamespace(**{k: (lambda *a, **kw: None)
                                                                for k in ("info", "debug", "add", "warning")})


def read_export(path: Path) -> dict[str, np.ndarray]:
    """The arrays :func:`common.export_mat` wrote (``I_tr``, ``T_tr``, ``L_tr``, ``*_te``, ``*_db``)."""
    from scipy.io import loadmat

    m = loadmat(str(path))
    return {k: np.asarray(v) for k, v in m.items() if not k.startswith("__")}


def save_codes(out: Path, codes: dict[str, np.ndarray]) -> None:
    """Write each ``(N, bits)`` code matrix as ``out/NAME.npy`` in ±1 (a 0 of ``torch.sign``
    becomes +1, crossmodal's sign(0))."""
    out.mkdir(parents=True, exist_ok=True)
    for name, B in codes.items():
        B = np.asarray(B, dtype=np.float64)
        np.save(out / f"{name}.npy", np.where(B >= 0, 1, -1).astype(np.int8))

