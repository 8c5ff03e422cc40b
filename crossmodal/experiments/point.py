"""One grid point of a sweep, trained where the sweep's executor puts it.

:func:`run_point` is the one code path of a grid point: the sequential executor calls it in the
sweep's process, the Dask executor on a worker, into the same run folder on storage both see.
It decides there, from the folder itself, whether to train, resume (an interrupted run with a
checkpoint: a worker that died in the middle of a run included) or retry (a failed run starts
from scratch), and records a failure in the folder's ``failed.json`` instead of raising.
"""

from __future__ import annotations

import shutil
import traceback
from pathlib import Path

from crossmodal.engine import atomic_write_json
from crossmodal.runs import train_run


def state(run_dir: Path) -> str:
    """``done`` (report.json), ``failed`` (failed.json), ``interrupted`` (run.json) or ``todo``."""
    if (run_dir / "report.json").is_file():
        return "done"
    if (run_dir / "failed.json").is_file():
        return "failed"
    if (run_dir / "run.json").is_file():
        return "interrupted"
    return "todo"


def record_failure(run_dir: Path, exc: BaseException, stage: str) -> None:
    """Write ``run_dir/failed.json``: the stage (config, train, executor), the error line and its traceback."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "failed.json", {"stage": stage, "error": f"{type(exc).__name__}: {exc}",
                                                "traceback": "".join(traceback.format_exception(exc))})


def run_point(task: dict, log=None) -> dict:
    """Train one grid point into ``task["run_dir"]``; returns ``{"state": "done" | "failed" |
    "skipped", "resumed": bool, "error": str | None}``.

    ``task`` holds what the sweep resolved for the point: ``method``, ``dataset``, ``bits``,
    ``seed``, ``config`` and ``train`` (the other :func:`~crossmodal.runs.train_run` keywords).
    ``log``: a line when training starts (the sequential executor passes the sweep's log).
    An exception of the run is recorded in ``failed.json`` and returned as ``failed``; a
    ``KeyboardInterrupt`` propagates (the run keeps its checkpoints and resumes next time).
    """
    run_dir = Path(task["run_dir"])
    st = state(run_dir)
    if st == "done":  # finished meanwhile (by another sweep process): never touched
        return {"state": "skipped", "resumed": False, "error": None}
    ckpt = run_dir / "checkpoints"
    resume = run_dir if st == "interrupted" and ckpt.is_dir() and any(ckpt.iterdir()) else None
    if st == "failed":  # a retry starts from scratch: its checkpoints may be what failed
        shutil.rmtree(ckpt, ignore_errors=True)
    (run_dir / "failed.json").unlink(missing_ok=True)
    if log is not None:
        log(f"{run_dir.name}: {'resuming' if resume else 'training'}")
    try:
        train_run(task["method"], task["dataset"], task["bits"], seed=task["seed"], config=task["config"],
                  resume=resume, run_dir=None if resume else run_dir, log=lambda *a: None, **task["train"])
    except Exception as exc:  # a failing run is recorded and the sweep goes on
        record_failure(run_dir, exc, "train")
        return {"state": "failed", "resumed": bool(resume), "error": f"{type(exc).__name__}: {exc}"}
    return {"state": "done", "resumed": bool(resume), "error": None}
