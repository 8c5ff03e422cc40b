"""Training support: device choice, seeding, atomic writes, checkpoints, run directories."""

from __future__ import annotations

import io
import os
import random
import re
import time
from pathlib import Path

import numpy as np

from crossmodal.errors import CrossmodalError


def resolve_device(name: str = "auto"):
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` as given."""
    import torch

    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise CrossmodalError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CrossmodalError(f"device {name!r} asked for but CUDA is not available here; use --device cpu or auto")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see the old
    file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


class Checkpointer:
    """Per-epoch checkpoints ``epoch-0003.pt`` in ``directory``, written atomically; keeps the
    newest ``keep`` files. ``latest()`` finds the newest complete one for resuming."""

    pattern = re.compile(r"^epoch-(\d+)\.pt$")

    def __init__(self, directory: str | os.PathLike, keep: int = 2):
        self.dir = Path(directory)
        self.keep = max(1, int(keep))

    def save(self, epoch: int, state: dict) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = atomic_torch_save(state, self.dir / f"epoch-{epoch:04d}.pt")
        for old in self._all()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def _all(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted((p for p in self.dir.iterdir() if self.pattern.match(p.name)), key=lambda p: p.name)

    def latest(self) -> Path | None:
        files = self._all()
        return files[-1] if files else None

    def load(self, path: str | os.PathLike | None = None) -> dict | None:
        import torch

        path = Path(path) if path else self.latest()
        if path is None:
            return None
        return torch.load(path, map_location="cpu", weights_only=False)


def new_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create a fresh run directory ``root/YYYYmmdd-HHMMSS-name`` (suffix -2, -3... when
    taken): a run never writes into an earlier run's folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S") + "-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    for i in range(1, 1000):
        p = root / (stem if i == 1 else f"{stem}-{i}")
        try:
            p.mkdir()
            return p
        except FileExistsError:
            continue
    raise CrossmodalError(f"{root}: could not create a new run folder for {name}")
