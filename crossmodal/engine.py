"""Training support: device choice, seeding, atomic writes, safe checkpoints, run folders, locks.

Guarantees this module gives the rest of crossmodal:

* **Atomic writes** (:func:`atomic_write_bytes`, :func:`atomic_write_text`, :func:`atomic_savefig`):
  data goes to a hidden temporary file ``.NAME.tmp-PID`` beside the target, is flushed and
  fsynced, then renamed over the target. A reader sees the old file or the new one, never half
  of one; on any error (a full disk included) the temporary file is removed again. Temporary
  files left by a killed process are removed by :func:`clean_stale_tmp` on the next start.
* **Safe checkpoints** (:class:`Checkpointer`): ``torch.load(..., weights_only=True)`` only, so
  loading a checkpoint never executes code. NumPy arrays and scalars in the state are stored as
  tensors / Python numbers (:func:`to_safe`) and turned back on load (:func:`from_safe`). A
  damaged newest checkpoint is skipped with a warning and the previous one is used.
* **Run locks** (:class:`RunLock`): a ``.lock`` file holding the owner's host and pid, created
  atomically (``os.link``); a lock whose process is gone is stale and taken over.
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import re
import socket
import sys
import time
from pathlib import Path

import numpy as np

from crossmodal.errors import CrossmodalError, DataError
from crossmodal.stored import read_json

SEED_MAX = 2**32 - 1
_TMP = re.compile(r"^\..+\.tmp-(\d+)$")


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


def check_seed(seed) -> int:
    """A seed as an int in 0..2**32-1, or one clear error."""
    try:
        ok = float(seed) == int(seed)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or isinstance(seed, bool) or not 0 <= int(seed) <= SEED_MAX:
        raise CrossmodalError(f"seed must be a whole number in 0..{SEED_MAX}, got {seed!r}")
    return int(seed)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


# --------------------------------------------------------------------------- atomic writes


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see the old
    file or the new one, never half of one. On failure (disk full ...) nothing is left behind
    and the original file, if any, is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2))


def atomic_savefig(fig, path: str | os.PathLike, **kw) -> Path:
    """``fig.savefig`` into memory, then one atomic write (the format follows the suffix)."""
    buf = io.BytesIO()
    fmt = Path(path).suffix.lstrip(".") or "png"
    fig.savefig(buf, format=fmt, **kw)
    return atomic_write_bytes(path, buf.getvalue())


def clean_stale_tmp(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Remove temporary files ``.NAME.tmp-PID`` whose writer process is gone (left by a kill
    during an atomic write), and the fixed-name ``*.tmp`` files older crossmodal versions
    wrote. Returns the removed paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    files = folder.rglob(".*.tmp-*") if recursive else folder.glob(".*.tmp-*")
    legacy = folder.rglob("*.tmp") if recursive else folder.glob("*.tmp")
    for p in list(files) + list(legacy):
        m = _TMP.match(p.name)
        if m and int(m.group(1)) != os.getpid() and pid_alive(int(m.group(1))):
            continue
        if m and int(m.group(1)) == os.getpid():
            continue
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# --------------------------------------------------------------------------- safe checkpoints

_ND = "__ndarray__"
_NDS = "__ndarray_list__"


def to_safe(obj, where: str = "state"):
    """``obj`` with NumPy arrays as tensors and NumPy scalars as Python numbers, so that
    ``torch.load(weights_only=True)`` reads it back (tensors and plain containers only).
    Anything else (a NumPy Generator, a custom object) is a ``TypeError`` naming its key, at
    save time rather than as an unreadable checkpoint at resume time."""
    import torch

    if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass that pickles as NumPy
        return obj.item()
    if isinstance(obj, (torch.Tensor, str, bytes, int, float, bool, type(None), torch.dtype, torch.device,
                        torch.Size)):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "biuf" and obj.dtype.itemsize <= 8:
            return {_ND: torch.from_numpy(np.ascontiguousarray(obj).copy())}
        return {_NDS: obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_safe(v, f"{where}.{k}") for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(to_safe(v, f"{where}[{i}]") for i, v in enumerate(obj))
    raise TypeError(f"checkpoint {where}: a {type(obj).__name__} cannot be saved safely; store tensors, NumPy "
                    "arrays, numbers, strings and lists/dicts of them (e.g. a generator's get_state())")


def from_safe(obj):
    """The inverse of :func:`to_safe`."""
    if isinstance(obj, dict):
        if set(obj) == {_ND}:
            return obj[_ND].numpy()
        if set(obj) == {_NDS, "dtype"}:
            return np.asarray(obj[_NDS], dtype=obj["dtype"])
        return {k: from_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_safe(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_safe(v) for v in obj)
    return obj


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    import torch

    buf = io.BytesIO()
    torch.save(to_safe(obj), buf)
    return atomic_write_bytes(path, buf.getvalue())


def safe_torch_load(path: str | os.PathLike):
    """Read a checkpoint without executing anything (``weights_only=True``); raises
    :class:`CrossmodalError` naming the file when it is damaged or holds other objects."""
    import pickle
    import zipfile

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unpickling error"
        if "Weights only load failed" in first:
            raise CrossmodalError(f"{path}: refused, the checkpoint holds objects other than tensors and plain "
                                  "containers (loading it could run code)") from None
        raise CrossmodalError(f"{path}: damaged checkpoint ({first[:120]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CrossmodalError(f"{path}: damaged or truncated checkpoint ({first})") from None
    return from_safe(obj)


class Checkpointer:
    """Per-epoch checkpoints ``epoch-0003.pt`` in ``directory``, written atomically; keeps the
    newest ``keep`` files. ``load_latest()`` finds the newest readable one for resuming."""

    pattern = re.compile(r"^epoch-(\d+)\.pt$")

    def __init__(self, directory: str | os.PathLike, keep: int = 2):
        self.dir = Path(directory)
        self.keep = max(1, int(keep))
        clean_stale_tmp(self.dir, recursive=False)

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
        """One checkpoint (the newest when ``path`` is None), read safely."""
        path = Path(path) if path else self.latest()
        if path is None:
            return None
        return safe_torch_load(path)

    def load_latest(self) -> tuple[dict | None, list[tuple[Path, str]]]:
        """``(state of the newest readable checkpoint or None, [(skipped file, why)])``:
        a damaged newest checkpoint falls back to the one before it."""
        skipped = []
        for path in reversed(self._all()):
            try:
                return safe_torch_load(path), skipped
            except CrossmodalError as exc:
                skipped.append((path, str(exc)))
        return None, skipped


# --------------------------------------------------------------------------- run folders


def check_out_folder(root: str | os.PathLike, what: str = "--out") -> Path:
    """``root`` is a folder or does not exist yet (and neither does a file stand in its way)."""
    root = Path(root)
    for p in [root, *root.parents]:
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise CrossmodalError(f"{what} {root}: {p} is a file, not a folder; choose a folder for {what}")
            break
    return root


def new_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create a fresh run directory ``root/YYYYmmdd-HHMMSS-name`` (suffix -2, -3... when
    taken): a run never writes into an earlier run's folder."""
    root = check_out_folder(root)
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


class RunLock:
    """An exclusive lock on a run folder: ``folder/.lock`` holds ``{"host", "pid", "time"}``.

    Created atomically (written under a private name, then ``os.link``-ed to ``.lock``, which
    fails when the lock exists). A lock of this host whose process is gone is stale and is taken
    over; a live one makes :meth:`acquire` raise one clear :class:`CrossmodalError`.
    """

    name = ".lock"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / self.name
        self.held = False
        self.me = {"host": socket.gethostname(), "pid": os.getpid()}

    def _owner(self) -> dict | None:
        """The lock file's ``{"host", "pid", "time"}``; None when there is no lock, ``{}`` when
        it cannot be read (an owner nobody can check)."""
        try:
            return read_json(self.path, kind=object, default=None)
        except DataError:
            return {}

    def acquire(self) -> "RunLock":
        tmp = self.folder / f".lock.{self.me['pid']}.tmp-{self.me['pid']}"
        atomic_write_json(tmp, {**self.me, "time": round(time.time(), 3)})
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)
                    self.held = True
                    return self
                except FileExistsError:
                    owner = self._owner()
                    if owner is None:
                        continue  # released meanwhile: try again
                    pid = owner.get("pid") if isinstance(owner, dict) else None
                    same_host = isinstance(owner, dict) and owner.get("host") == self.me["host"]
                    if same_host and isinstance(pid, int) and pid != self.me["pid"] and not pid_alive(pid):
                        print(f"crossmodal: warning: {self.path}: stale lock of process {pid} (gone) removed",
                              file=sys.stderr)
                        self.path.unlink(missing_ok=True)
                        continue
                    known = isinstance(owner, dict) and pid
                    who = f"process {pid} on {owner.get('host')}" if known else "another process"
                    raise CrossmodalError(
                        f"{self.folder}: in use by {who} (lock file {self.path}); wait for it to finish, "
                        "or remove the lock file if no such process runs")
            raise CrossmodalError(f"{self.folder}: could not take the lock {self.path}; try again")
        finally:
            tmp.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            owner = self._owner()
            if isinstance(owner, dict) and owner.get("pid") == self.me["pid"] and owner.get("host") == self.me["host"]:
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


DISK_FULL = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC))
