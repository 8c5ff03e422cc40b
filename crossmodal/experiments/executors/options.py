"""The executor options of the commands that run many independent tasks (``sweep``, ``encode``),
and the executor they ask for."""

from __future__ import annotations

import argparse

from crossmodal.errors import ConfigError
from crossmodal.experiments.executors.base import SequentialExecutor
from crossmodal.experiments.executors.cluster import DaskExecutor

EXECUTORS = ("sequential", "dask")


def add_executor_arguments(p: argparse.ArgumentParser, task: str = "run") -> None:
    """``--executor``, ``--workers``, ``--scheduler``, ``--gpus-per-TASK``, ``--dashboard``."""
    g = p.add_argument_group("executor (where the tasks run; docs: Scaling out)")
    g.add_argument("--executor", default="sequential", choices=EXECUTORS,
                   help=f"sequential: each {task} in turn in this process (default); dask: each {task} one task "
                        "on a Dask cluster (a local one on 127.0.0.1 unless --scheduler); pip install crossmodal[dask]")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="dask: worker processes of the local cluster, one task each (default: the cores here)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask: use the running scheduler at ADDRESS (e.g. tcp://node01:8786) and its workers")
    g.add_argument(f"--gpus-per-{task}", dest="gpus", type=int, default=0, metavar="G",
                   help=f"dask: each {task} holds the worker resource GPU=G (here: dask-cuda, one worker per GPU)")
    g.add_argument("--dashboard", action="store_true",
                   help="dask: serve the local cluster's dashboard on 127.0.0.1:8787 (needs bokeh)")


def make_executor(name: str = "sequential", workers: int | None = None, scheduler: str | None = None,
                  gpus: int = 0, dashboard: bool = False, log=print, task: str = "run"):
    """The executor ``name`` with its options; Dask options without ``dask`` are an error. A
    Dask executor takes the thread setting in force when it is a number (``--threads N``),
    else shares each host's cores among its task slots."""
    from crossmodal.threads import current_setting

    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; use {' or '.join(EXECUTORS)}")
    if name == "sequential":
        given = [flag for flag, v in (("--workers", workers), ("--scheduler", scheduler), (f"--gpus-per-{task}", gpus),
                                      ("--dashboard", dashboard)) if v]
        if given:
            raise ConfigError(f"{given[0]} applies to --executor dask; add --executor dask")
        return SequentialExecutor()
    threads = current_setting()
    return DaskExecutor(workers=workers, scheduler=scheduler, gpus_per_run=gpus, dashboard=dashboard,
                        threads=threads if isinstance(threads, int) else None, log=log)


def executor_from_args(args, log=print, task: str = "run"):
    """:func:`make_executor` from the options :func:`add_executor_arguments` added."""
    return make_executor(args.executor, workers=args.workers, scheduler=args.scheduler, gpus=args.gpus,
                         dashboard=args.dashboard, log=log, task=task)
