"""The run folder: is it finished, what identifies its model, where training writes, and the
clean-up of a start that failed.

A run folder holds::

    run.json            everything needed to rerun (:class:`~crossmodal.runs.spec.RunSpec`)
    metrics.jsonl       the tracker's log (config, per-epoch metrics, summary)
    checkpoints/        per-epoch checkpoints of methods that have epochs (resume)
    model/              the trained hasher (hasher.json + state.npz) and featurizers.json
    index-image.npz     Hamming index of the database's image codes
    index-text.npz      Hamming index of the database's text codes (both record the model's identity)
    report.json / report.md / pr.png   the evaluation (report.json is written last: the run is finished)
    evaluations/eval-0001/...          re-evaluations (``crossmodal evaluate``), numbered, never in place
    .lock               while a process trains or resumes the run (owner's host and pid)

A finished run folder is immutable; every file is written atomically.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from crossmodal.engine import RunLock, check_out_folder, new_run_dir
from crossmodal.errors import CrossmodalError

RUN_FILES = ("run.json", "metrics.jsonl", ".lock")  # what a failed start may have written


def finished(run_dir: str | os.PathLike) -> bool:
    """A run is finished (and immutable) once its ``report.json`` exists (written last)."""
    return (Path(run_dir) / "report.json").is_file()


def model_identity(model_dir: str | os.PathLike) -> str:
    """Content hash of a saved model (``hasher.json`` + ``state.npz``), recorded in its indexes."""
    h = hashlib.sha256()
    for name in ("hasher.json", "state.npz"):
        f = Path(model_dir) / name
        if f.is_file():
            h.update(name.encode())
            h.update(f.read_bytes())
    return "sha256:" + h.hexdigest()[:16]


def remove_failed_start(run_dir: Path) -> None:
    """Remove a run folder this call created when it holds nothing worth resuming (no
    checkpoint, no model): only the files crossmodal writes at a start, then the folder."""
    ckpt = run_dir / "checkpoints"
    if (ckpt.is_dir() and any(ckpt.iterdir())) or (run_dir / "model" / "hasher.json").exists():
        return
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for sub in (ckpt, run_dir / "model"):
        try:
            sub.rmdir()  # only when empty
        except OSError:
            pass
    try:
        run_dir.rmdir()  # only when empty: anything else stays
    except OSError:
        pass


def training_folder(out: str | os.PathLike, name: str, run_dir: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """``(folder, created)``: ``run_dir`` when given (a sweep's grid point; refused when it holds a
    finished run), else a new folder ``out/NAME`` (``NAME-2`` ... when taken). ``created`` says
    whether this call made the folder (so a failed start may remove it)."""
    if run_dir is None:
        return new_run_dir(out, name), True
    run_dir = check_out_folder(run_dir, "run folder")
    if finished(run_dir):
        raise CrossmodalError(f"{run_dir}: holds a finished run, which is never overwritten; choose another folder")
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, created


def lock_run_folder(run_dir: Path, created: bool) -> RunLock:
    """Take ``run_dir``'s lock; when that fails, a folder this call created is removed again."""
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except BaseException:
        if created:
            remove_failed_start(run_dir)
        raise
    return lock
