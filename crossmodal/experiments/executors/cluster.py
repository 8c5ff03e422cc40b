"""The Dask executor: each item one task on a ``distributed`` cluster.

Where the tasks run:

* no address: a ``LocalCluster`` on this machine, ``workers`` processes of one task each, every
  socket bound to 127.0.0.1 (scheduler, workers, and the scheduler's small HTTP endpoint on a
  free port); no dashboard unless asked (``dashboard``: 127.0.0.1:8787, or the next free port);
* ``gpus_per_run`` without an address: ``dask_cuda.LocalCUDACluster``, one worker per GPU of
  this machine, each owning its GPU (``CUDA_VISIBLE_DEVICES``) and the resource ``GPU=1``;
* ``scheduler``: the workers of a running scheduler (``dask-jobqueue``'s SLURM/PBS/... clusters,
  ``dask scheduler`` + ``dask worker`` by hand). Tasks ask for the resource ``GPU=gpus_per_run``
  when it is > 0, so a worker started with ``--resources GPU=1`` runs one at a time.

Each task first sets its own thread count (:func:`crossmodal.threads.apply_threads`): the
explicit ``threads`` setting; else 1 when the cluster has at least as many task slots on this host
as it has cores (N one-task workers on N cores: one thread each instead of N each), and ``auto``
when it has fewer (one thread in epoch loops, the cores for the big one-off passes). Never a
number above 1 for a whole run by default: epoch loops at several threads spin and slow down
as soon as anything else runs (measured: :mod:`crossmodal.threads`).

The local cluster's workers start without three things Dask gives them by default, each measured
with the ``fast`` presets on toy:

* ``MALLOC_TRIM_THRESHOLD_=65536``: glibc then maps and unmaps every mid-sized array, and a DJSRH
  run took 7.4-8.0 s of CPU in such a worker against 4.5-5.0 s without it;
* Dask's statistical profiler (unless ``dashboard``, which shows it): it samples the task
  thread's stack every 10 ms, and a DGCPN run took 9.0-9.8 s in a worker with it, 7.6-8.4 s
  without it, 7.3-8.2 s in the calling process;
* ``OMP_NUM_THREADS=1`` and its siblings: each task sets its own thread count (above).

So the nannies change nothing in this process's environment, and the cluster can start in the
background (:meth:`DaskExecutor.prepare`) while this process checks the grid; each worker imports
torch and the methods as it starts (:mod:`~crossmodal.experiments.executors.warm`), so that those
imports overlap the same work instead of delaying the first runs.

The local CPU cluster's worker processes come from a fork server (``multiprocessing``'s
``forkserver`` start method, which Dask supports: ``distributed.worker.multiprocessing-method``)
that has imported ``distributed`` once, started as the cluster starts and stopped with it; the
server never imports torch, so each worker still imports torch for itself. Measured on 2 cores,
2 workers: the cluster was up in 3.8-3.9 s instead of 4.1, and it stopped in 0.05 s instead of
0.8-0.85 s, because a forked worker ends with ``os._exit`` where a spawned one tears down its
interpreter (0.7 s with torch and the methods imported). ``dask_cuda``'s GPU workers start as
Dask starts them (spawned). Local workers ignore SIGINT
(:mod:`~crossmodal.experiments.executors.local_worker`): on Ctrl-C this process cancels the
tasks and stops them.

Dask ships the function and the items to the workers by pickling them over its connections:
anyone who can reach the scheduler can run code on the workers, which is why the local cluster
listens on 127.0.0.1 only. Use a scheduler on another host only inside a trusted network (or
with Dask's TLS security settings).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
import uuid
from typing import Callable, Iterator, Sequence

from crossmodal.errors import ConfigError
from crossmodal.experiments.executors.base import Outcome

INSTALL = "pip install crossmodal[dask]"
DASHBOARD = "127.0.0.1:8787"
WARM = "crossmodal.experiments.executors.warm"  # each local worker imports it as it starts
LOCAL = "crossmodal.experiments.executors.local_worker"  # and then this (local clusters only)


def require(module: str, what: str, install: str = INSTALL):
    """Import ``module`` or raise one line naming the package to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{what} needs {module.split('.')[0].replace('_', '-')}, which is not installed: "
                          f"{install}") from None


def host_of(address: str) -> str:
    """``tcp://10.1.2.3:4567`` -> ``10.1.2.3`` (``inproc://10.1.2.3/pid/n`` -> ``10.1.2.3``)."""
    hostport = address.split("://")[-1].split("/")[0]
    return hostport.rpartition(":")[0] or hostport


def task_threads(threads, host_slots: dict) -> int | str:
    """The thread setting of a task on this worker: ``threads`` when it is a number, else 1 when
    this host has no more cores than task slots, else ``auto``."""
    from crossmodal.threads import available_cores

    if isinstance(threads, int):
        return threads
    from distributed import get_worker

    worker = get_worker()
    slots = host_slots.get(host_of(worker.address)) or worker.state.nthreads
    return 1 if available_cores() <= max(1, slots) else "auto"


def run_task(fn: Callable, item, threads, host_slots: dict):
    """A task as a worker runs it: set the thread count, then ``fn(item)``; returns
    ``(value, seconds)``."""
    from crossmodal.threads import apply_threads

    apply_threads(task_threads(threads, host_slots))
    t0 = time.perf_counter()
    value = fn(item)
    return value, time.perf_counter() - t0


def start_forkserver() -> bool | None:
    """Start ``multiprocessing``'s fork server with ``distributed`` as its one preloaded module
    (module docstring); True if it started here, False if one was running already, None where
    this platform has none (the workers are then spawned)."""
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    server = forkserver._forkserver
    running = getattr(server, "_forkserver_pid", None) is not None
    if not running:
        server.set_forkserver_preload(["distributed"])
    server.ensure_running()
    _keep_dask_preload()
    return not running


def _keep_dask_preload() -> None:
    """Dask sets the fork server's preload at its first worker unless told it has: it would import
    its optional packages (pandas among them) in this process to list them, for a server that has
    started already."""
    try:
        import distributed.utils
    except ImportError:
        return
    distributed.utils._forkserver_preload_set = True


def stop_forkserver() -> None:
    """Stop the fork server :func:`start_forkserver` started (its workers have ended)."""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)
    if stop is not None:
        stop()


class DaskExecutor:
    """Items as Dask tasks (see the module docstring). The cluster starts at the first
    :meth:`map_unordered` (nothing to run: nothing started) and stops at :meth:`close`."""

    name = "dask"
    in_process = False

    def __init__(self, workers: int | None = None, scheduler: str | None = None, gpus_per_run: int = 0,
                 dashboard: bool = False, threads: int | None = None, processes: bool = True, log=print):
        if workers is not None and (int(workers) != workers or workers < 1):
            raise ConfigError(f"--workers must be a whole number >= 1, got {workers!r}")
        if workers is not None and scheduler:
            raise ConfigError("--workers starts a local cluster and --scheduler uses a running one; give one of them")
        if int(gpus_per_run) != gpus_per_run or gpus_per_run < 0:
            raise ConfigError(f"--gpus-per-run must be a whole number >= 0, got {gpus_per_run!r}")
        if gpus_per_run > 1 and not scheduler:
            raise ConfigError("on this machine each Dask worker owns one GPU (dask-cuda), so a run gets one; for "
                              f"{gpus_per_run} GPUs per run start workers with --resources GPU={gpus_per_run} "
                              "and give --scheduler (docs: Scaling out)")
        self.workers, self.scheduler, self.gpus = workers, scheduler, int(gpus_per_run)
        self.dashboard, self.threads, self.processes, self.log = dashboard, threads, processes, log
        self.client = self.cluster = None
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._forkserver: bool | None = None  # None: not used; True: started here, stopped at close

    # -- the cluster -----------------------------------------------------------------------
    def prepare(self) -> None:
        """Start the cluster in a background thread and return at once (:meth:`start` and
        :meth:`map_unordered` wait for it; :meth:`close` stops it): the caller's own work, such as
        checking a sweep's grid, overlaps the workers' start."""
        if self.client is not None or self._starting is not None:
            return
        self._starting = threading.Thread(target=self._start_in_background, name="crossmodal-dask-start",
                                          daemon=True)
        self._starting.start()

    def _start_in_background(self) -> None:
        try:
            self._connect()
        except BaseException as exc:  # handed to the thread that waits for the start
            self._start_error = exc

    def start(self) -> "DaskExecutor":
        """Connect to ``scheduler``, or start the local cluster (or wait for :meth:`prepare`'s
        start); idempotent. Logs :meth:`describe` once the cluster is up."""
        if self.client is not None:
            return self
        if self._starting is not None:
            self._starting.join()
            self._starting = None
            if self._start_error is not None:
                exc, self._start_error = self._start_error, None
                raise exc
        else:
            self._connect()
        self.log(self.describe())
        if self.gpus and not any(self.host_slots().values()):
            self.log(f"dask: warning: no worker has the resource GPU={self.gpus} yet; the tasks wait for one "
                     "(start workers with --resources GPU=N)")
        return self

    def _connect(self) -> None:
        if not self.scheduler and self.processes and not self.gpus and importlib.util.find_spec("distributed"):
            self._forkserver = start_forkserver()  # before importing distributed: the two overlap
        distributed = require("distributed", "--executor dask")
        logging.getLogger("distributed").setLevel(logging.ERROR)  # its INFO/WARNING chatter, not ours
        if self.scheduler:
            try:
                self.client = distributed.Client(self.scheduler, timeout="30s", set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"--scheduler {self.scheduler}: cannot connect ({exc}); is the scheduler "
                                  "running and reachable from here?") from None
        else:
            cluster = self._local_cluster(distributed)
            try:
                self.client = distributed.Client(cluster, set_as_default=False)
            finally:
                self.cluster = cluster  # closed by close() even when the client failed

    def _local_cluster(self, distributed):
        import dask

        from crossmodal.threads import available_cores

        # processes=False (tests): workers are threads talking in memory (inproc://), no socket but the HTTP one
        host = {"host": "127.0.0.1"} if self.processes or self.gpus else {}
        common = dict(threads_per_worker=1, silence_logs=logging.ERROR, **host,
                      dashboard_address=DASHBOARD if self.dashboard else None,
                      # without a dashboard the scheduler still serves /health and /info: on a free local port
                      scheduler_kwargs=None if self.dashboard else {"dashboard_address": "127.0.0.1:0"})
        if self.processes or self.gpus:
            common["preload"] = [WARM, LOCAL]
        # read when the nannies are made and shipped to the workers (module docstring): no pre-spawn
        # variables; no statistical profiler unless the dashboard that shows it is asked for
        settings = {"distributed.nanny.pre-spawn-environ": {},
                    "distributed.worker.profile.enabled": bool(self.dashboard)}
        if self._forkserver is not None:
            settings["distributed.worker.multiprocessing-method"] = "forkserver"
        with dask.config.set(settings):
            if self.gpus:
                cuda = require("dask_cuda", "--gpus-per-run on this machine", "pip install dask-cuda")
                return cuda.LocalCUDACluster(n_workers=self.workers, resources={"GPU": 1}, **common)
            n = self.workers or available_cores()
            return distributed.LocalCluster(n_workers=n, processes=self.processes, **common)

    def _workers(self) -> dict:
        try:
            return self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:  # distributed before 2025: every worker is listed anyway
            return self.client.scheduler_info()["workers"]

    def host_slots(self) -> dict:
        """``{host: tasks that can run at once}`` over the workers connected now: a worker's
        threads, or fewer when the tasks hold GPUs (its ``GPU`` resource // ``gpus_per_run``)."""
        slots: dict = {}
        for addr, w in self._workers().items():
            n = int(w.get("nthreads", 1))
            if self.gpus:
                n = min(n, int((w.get("resources") or {}).get("GPU", 0) // self.gpus))
            slots[host_of(addr)] = slots.get(host_of(addr), 0) + n
        return slots

    def describe(self) -> str:
        if self.client is None:
            return "dask: not started"
        where = (f"scheduler {self.scheduler}" if self.scheduler
                 else f"local cluster on {self.cluster.scheduler_address}")
        n = len(self._workers())
        board = f", dashboard {self.client.dashboard_link}" if self.dashboard else ", no dashboard"
        gpus = f", {self.gpus} GPU(s) per task" if self.gpus else ""
        return f"dask: {n} worker(s), {where}{board}{gpus}"

    # -- running ---------------------------------------------------------------------------
    def map_unordered(self, fn: Callable, items: Sequence, keys: Sequence[str] | None = None) -> Iterator[Outcome]:
        """Submit ``fn(item)`` for every item as one task; yield outcomes as tasks finish. A
        task whose worker dies is run again by Dask on another worker (up to its
        ``allowed-failures``), after which its outcome is the ``KilledWorker`` error. Leaving
        early (an exception, Ctrl-C, the caller stops iterating) cancels the tasks left."""
        from distributed import as_completed

        items = list(items)
        if not items:
            return
        self.start()
        token = uuid.uuid4().hex[:8]
        names = [f"crossmodal-{k}-{token}" for k in (keys or [str(i) for i in range(len(items))])]
        slots = self.host_slots()
        futures = [self.client.submit(run_task, fn, item, self.threads, slots, key=name, pure=False,
                                      priority=len(items) - i,  # the list's order where workers are free
                                      resources={"GPU": self.gpus} if self.gpus else None)
                   for i, (item, name) in enumerate(zip(items, names))]
        where = {f.key: i for i, f in enumerate(futures)}
        done = set()
        try:
            for fut in as_completed(futures, loop=self.client.loop):
                i = where[fut.key]
                done.add(i)
                if fut.status == "finished":
                    value, seconds = fut.result()
                    yield Outcome(i, value=value, seconds=seconds)
                elif fut.status == "error":
                    yield Outcome(i, error=fut.exception())
                else:  # cancelled or lost from outside (another client, a scheduler restart)
                    yield Outcome(i, error=RuntimeError(f"Dask task {fut.key} {fut.status}"))
                fut.release()
        finally:
            left = [f for i, f in enumerate(futures) if i not in done]
            if left and self.client is not None:
                self.client.cancel(left, force=True)

    def close(self) -> None:
        """Disconnect; a local cluster is stopped (its worker processes end)."""
        if self._starting is not None:  # a background start: let it finish, then stop what it started
            self._starting.join()
            self._starting = self._start_error = None
        client, cluster = self.client, self.cluster
        self.client = self.cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        if self._forkserver:
            stop_forkserver()
        self._forkserver = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
