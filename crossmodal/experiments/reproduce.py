"""Regenerate the committed result tables and figures in ``experiments/results/NAME/``.

    crossmodal reproduce toy
    crossmodal reproduce wiki --data-root ../shared/data/wiki
    python -m experiments.reproduce toy          (thin wrapper)

Runs the sweep ``experiments/sweeps/NAME.yaml`` (or a sweep file given by path; resumable:
finished runs under ``runs/sweeps/NAME`` are reused) and aggregates it with ``crossmodal report``
into the results folder (table.md / .tex / .csv; PR, mAP-vs-bits, P@k, NDCG@k and recall@k
figures as PNG, PDF and SVG), rows in the sweep's method order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from crossmodal.errors import CrossmodalError

PACKAGE = Path(__file__).resolve().parent.parent
REPO_EXPERIMENTS = PACKAGE.parent / "experiments"


def sweeps_dir() -> Path:
    """``experiments/sweeps`` of a source checkout, else the copy installed as package data."""
    return REPO_EXPERIMENTS / "sweeps" if (REPO_EXPERIMENTS / "sweeps").is_dir() else PACKAGE / "_sweeps"


def results_dir() -> Path:
    """``experiments/results`` of a source checkout, else ``./results``."""
    return REPO_EXPERIMENTS / "results" if (REPO_EXPERIMENTS / "sweeps").is_dir() else Path("results")


def sweep_file(name: str) -> Path:
    from crossmodal.errors import ConfigError

    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    f = sweeps_dir() / f"{name}.yaml"
    if not f.is_file():
        known = sorted(x.stem for x in sweeps_dir().glob("*.yaml"))
        raise ConfigError(f"no sweep {name!r}; known: {', '.join(known) or 'none'}, or give a sweep .yaml file")
    return f


def add_reproduce_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", help="sweeps under experiments/sweeps/ (toy, wiki, digits, ...) or sweep files")
    p.add_argument("--data-root", default=None, help="data folder for the sweep's datasets")
    p.add_argument("--runs", default="runs/sweeps", help="where the runs go (default runs/sweeps/NAME)")
    p.add_argument("--results", default=None, help="where the tables and figures go (default experiments/results/NAME)")
    p.add_argument("--report-only", action="store_true", help="train nothing: aggregate the runs already there")


def reproduce(name: str, data_root=None, runs="runs/sweeps", results=None, report_only=False, log=print) -> dict:
    from crossmodal.experiments.sweep import entry_label, load_sweep, run_sweep, stale_runs
    from crossmodal.report import write_report

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
    log(f"{sw['name']}: {len(files)} files in {out}" + (f"; {counts['failed']} runs FAILED" if counts["failed"] else ""))
    return counts


def reproduce_from_args(args) -> int:
    failed = 0
    for name in args.names:
        failed += reproduce(name, data_root=args.data_root, runs=args.runs, results=args.results,
                            report_only=args.report_only)["failed"]
    return 1 if failed else 0


def main(argv=None) -> int:
    from crossmodal.errors import CrossmodalError

    p = argparse.ArgumentParser(prog="crossmodal reproduce", description=__doc__.splitlines()[0])
    add_reproduce_arguments(p)
    args = p.parse_args(argv)
    try:
        return reproduce_from_args(args)
    except CrossmodalError as exc:
        print(f"crossmodal: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
