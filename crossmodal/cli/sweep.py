"""``crossmodal sweep``: run a grid of methods x datasets x bits x seeds from a YAML file,
resumably (:mod:`crossmodal.experiments.sweep`), one run after another or each run one task on a
Dask cluster (:mod:`crossmodal.experiments.executors`)."""

from __future__ import annotations

from crossmodal.cli.common import add_runtime
from crossmodal.experiments.executors import add_executor_arguments, executor_from_args
from crossmodal.experiments.sweep import run_sweep
from crossmodal.tracking import add_wandb_arguments, wandb_settings

NAME = "sweep"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="run a grid of methods x datasets x bits x seeds from a YAML file (resumable)",
        description="Run every grid point of a sweep file into its own run folder. Finished runs are skipped, "
                    "interrupted ones resumed, failures recorded and the sweep goes on. With --executor dask each "
                    "grid point is one task on a Dask cluster (local on 127.0.0.1, or --scheduler ADDRESS).")
    p.add_argument("sweep", help="sweep YAML file (see experiments/sweeps/)")
    p.add_argument("--data-root", default=None, help="folder with the dataset's files, for datasets without root:")
    p.add_argument("--out", default=None, help="output folder (default: the file's out:, or runs/sweeps/NAME)")
    p.add_argument("--tracker", default=None, choices=("none", "jsonl", "wandb"), help="override the sweep's tracker")
    p.add_argument("--only", action="append", default=None, metavar="TEXT",
                   help="only grid points whose folder name contains TEXT")
    p.add_argument("--dry-run", action="store_true",
                   help="validate every grid point (method, config keys, dataset and its parameters), train nothing")
    add_executor_arguments(p, task="run")
    add_wandb_arguments(p)
    add_runtime(p)
    return p


def run(args) -> int:
    with executor_from_args(args, task="run") as executor:
        counts = run_sweep(args.sweep, data_root=args.data_root, out=args.out, tracker=args.tracker, only=args.only,
                           dry_run=args.dry_run, wandb=wandb_settings(args), executor=executor)
    if args.dry_run:
        return 2 if counts["invalid"] else 0
    return 1 if counts["failed"] else 0
