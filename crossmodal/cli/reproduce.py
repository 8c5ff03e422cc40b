"""``crossmodal reproduce``: run a committed sweep and regenerate its results folder
(:mod:`crossmodal.experiments.reproduce`)."""

from __future__ import annotations

from crossmodal.experiments.reproduce import reproduce

NAME = "reproduce"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="run a committed sweep and regenerate its results folder",
        description="Run experiments/sweeps/NAME.yaml (resumable) and write its tables and figures into "
                    "experiments/results/NAME/.")
    p.add_argument("names", nargs="+", help="sweeps under experiments/sweeps/ (toy, wiki, digits, ...) or sweep files")
    p.add_argument("--data-root", default=None, help="data folder for the sweep's datasets")
    p.add_argument("--runs", default="runs/sweeps", help="where the runs go (default runs/sweeps/NAME)")
    p.add_argument("--results", default=None, help="where the tables and figures go (default experiments/results/NAME)")
    p.add_argument("--report-only", action="store_true", help="train nothing: aggregate the runs already there")
    return p


def run(args) -> int:
    failed = 0
    for name in args.names:
        failed += reproduce(name, data_root=args.data_root, runs=args.runs, results=args.results,
                            report_only=args.report_only)["failed"]
    return 1 if failed else 0
