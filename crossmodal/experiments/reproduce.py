"""Regenerate the committed result tables and figures in ``experiments/results/NAME/``.

    crossmodal reproduce toy
    crossmodal reproduce wiki --data-root ../shared/data/wiki
    python -m experiments.reproduce toy          (the same)

Runs the sweep ``experiments/sweeps/NAME.yaml`` (or a sweep file given by path; resumable:
finished runs under ``runs/sweeps/NAME`` are reused) and aggregates it with ``crossmodal report``
into the results folder (table.md / .tex / .csv; PR, mAP-vs-bits, P@k, NDCG@k and recall@k
figures as PNG, PDF and SVG), rows in the sweep's method order.
"""

from __future__ import annotations

from pathlib import Path

from crossmodal.errors import ConfigError, CrossmodalError
from crossmodal.experiments.sweep import entry_label, load_sweep, run_sweep, stale_runs
from crossmodal.report import write_report

PACKAGE = Path(__file__).resolve().parent.parent
REPO_EXPERIMENTS = PACKAGE.parent / "experiments"


def sweeps_dir() -> Path:
    """``experiments/sweeps`` of a source checkout, else the copy installed as package data."""
    return REPO_EXPERIMENTS / "sweeps" if (REPO_EXPERIMENTS / "sweeps").is_dir() else PACKAGE / "_sweeps"


def results_dir() -> Path:
    """``experiments/results`` of a source checkout, else ``./results``."""
    return REPO_EXPERIMENTS / "results" if (REPO_EXPERIMENTS / "sweeps").is_dir() else Path("results")


def sweep_file(name: str) -> Path:
    """A sweep file given by path, or ``sweeps_dir()/NAME.yaml``."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    f = sweeps_dir() / f"{name}.yaml"
    if not f.is_file():
        known = sorted(x.stem for x in sweeps_dir().glob("*.yaml"))
        raise ConfigError(f"no sweep {name!r}; known: {', '.join(known) or 'none'}, or give a sweep .yaml file")
    return f


def reproduce(name: str, data_root=None, runs="runs/sweeps", results=None, report_only=False, log=print) -> dict:
    """Run (unless ``report_only``) the sweep ``name`` into ``runs/NAME`` and write its results
    folder; refuses (writing no results) when a finished run was made with another config.
    Returns the sweep's counts (``failed``: how many runs failed)."""
    sweep = sweep_file(name)
    sw = load_sweep(sweep)
    run_folder = Path(runs) / sw["name"]
    counts = {"failed": 0}
    if not report_only:
        counts = run_sweep(sweep, data_root=data_root, out=run_folder, log=log)
    stale = stale_runs(sw, run_folder)
    if stale:
        folder, keys = stale[0]
        raise CrossmodalError(f"{len(stale)} finished run(s) in {run_folder} were made with another config than "
                              f"{sweep.name} now gives (e.g. {folder}: {', '.join(keys)}); results not written: "
                              "reproduce into a new --runs folder")
    out = Path(results) / sw["name"] if results else results_dir() / sw["name"]
    table, files = write_report([run_folder], out, methods_order=[entry_label(m) for m in sw["methods"]])
    log(table.to_markdown())
    failed = f"; {counts['failed']} runs FAILED" if counts["failed"] else ""
    log(f"{sw['name']}: {len(files)} files in {out}{failed}")
    return counts
