"""Executors: where the independent tasks of a sweep or an encode run.

* :mod:`~crossmodal.experiments.executors.base`: :class:`Outcome`, :class:`SequentialExecutor`
  (this process, one item after another: the default);
* :mod:`~crossmodal.experiments.executors.cluster`: :class:`DaskExecutor` (a Dask cluster: a
  local one on 127.0.0.1, a scheduler address, dask-jobqueue, dask-cuda);
* :mod:`~crossmodal.experiments.executors.options`: the command-line options and
  :func:`make_executor`.
"""

from crossmodal.experiments.executors.base import Outcome, SequentialExecutor
from crossmodal.experiments.executors.cluster import DaskExecutor
from crossmodal.experiments.executors.options import (
    EXECUTORS,
    add_executor_arguments,
    executor_from_args,
    make_executor,
)

__all__ = ["Outcome", "SequentialExecutor", "DaskExecutor", "EXECUTORS", "add_executor_arguments",
           "executor_from_args", "make_executor"]
