"""Thread counts: one setting for torch, the BLAS and the evaluation workers.

Why: torch's and OpenBLAS's default intra-op pools use every core and spin while they wait.
On tiny per-batch matmuls (UGACH's towers on a few hundred rows) the threads gain nothing
alone and, as soon as another process competes for the cores (a shared cluster node, a
parallel sweep, a data loader), each step waits for the slowest, descheduled thread:
measured on a 2-core machine, ``train ugach --dataset wiki --preset fast`` went from 8.9 s
alone to 131.7 s beside one busy process, and to 7.2 s with one thread.

The setting ``threads`` (config key ``threads``, ``--threads``, ``$CROSSMODAL_THREADS``):

* ``"auto"`` (default): epoch loops (:class:`~crossmodal.methods.training.EpochTrainer`) run at
  :data:`AUTO_TRAIN_THREADS` intra-op threads, restored afterwards; the big one-off passes
  outside them (kNN for the graph, encoding, evaluation) keep every core the process may use.
  Chosen by measurement: one thread beside a busy process (7.2 s) beat the all-core default
  alone (8.9 s) above, and ``benchmarks/bench_threads.py`` on a loaded shared 2-core VM gave one thread
  1.1x the CPU time beside a busy process while all-core runs did not finish in 400 s.
* a whole number N >= 1: N threads everywhere (N = cores: the old behaviour).

:func:`apply_threads` (the CLI calls it) sets torch's intra-op and (once, before any parallel
work) inter-op pools, the BLAS pools through ``threadpoolctl`` when it is installed (else
the ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` variables, which
only act before NumPy is imported), and the evaluation worker count
(:func:`eval_workers`). Library users get the same defaults without calling anything.
"""

from __future__ import annotations

import contextlib
import os

from crossmodal.errors import ConfigError

ENV = "CROSSMODAL_THREADS"
AUTO_TRAIN_THREADS = 1
_BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_state = {"setting": None, "threads": None}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def parse_threads(value, where: str = "threads") -> int | str:
    """``"auto"``, None or "" -> "auto"; a whole number >= 1 -> int; else ConfigError."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return "auto"
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1 or str(n) != str(value).strip():
        raise ConfigError(f"{where}: must be 'auto' or a whole number >= 1, got {value!r}")
    return n


def resolve_setting(value=None) -> int | str:
    """The threads setting in force: ``value`` when given, else ``$CROSSMODAL_THREADS``, else auto."""
    if value is not None:
        return parse_threads(value)
    env = os.environ.get(ENV)
    return parse_threads(env, where=f"${ENV}") if env else "auto"


def train_threads(setting) -> int:
    """Intra-op threads for training under ``setting``."""
    return AUTO_TRAIN_THREADS if setting == "auto" else int(setting)


def _blas_limit(n: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        for k in _BLAS_ENV:  # effective only for libraries not loaded yet
            os.environ[k] = str(n)
        return None
    return threadpool_limits(limits=n, user_api="blas")


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with one BLAS thread (restored after): for a solver whose answer depends on
    the order of its sums (eigenvectors of near-equal eigenvalues), so that it is the same at
    every thread setting."""
    limiter = _blas_limit(1)
    try:
        yield
    finally:
        if limiter is not None:
            limiter.restore_original_limits()


def _set_torch(n: int, setting) -> None:
    import sys

    if setting == "auto" and "torch" not in sys.modules and "OMP_NUM_THREADS" not in os.environ:
        return  # torch will start at every core on its own: a process that never trains never loads it
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(max(1, min(n, 4)))
    except RuntimeError:  # only settable before the first inter-op work; the intra-op count is what matters
        pass


def apply_threads(value=None) -> int:
    """Apply the threads setting (``value``, else ``$CROSSMODAL_THREADS``, else auto).

    A number N sets torch's intra-op (and, when still possible, inter-op) pools and the BLAS
    pools to N for the whole process, and N evaluation workers. ``auto`` leaves the pools at
    every core for the big passes (torch's own start-up count: when torch is not imported yet,
    it is not imported here, so a process that only orchestrates, such as a Dask sweep's, never
    loads it); epoch loops drop to the training count on their own (:func:`training_threads`).
    Returns the intra-op count now in force outside epoch loops.
    """
    setting = resolve_setting(value)
    n = available_cores() if setting == "auto" else int(setting)
    _set_torch(n, setting)
    if setting != "auto":
        _blas_limit(n)
    _state.update(setting=setting, threads=n)
    return n


def current_setting() -> int | str:
    return _state["setting"] if _state["setting"] is not None else resolve_setting()


def eval_workers() -> int:
    """Evaluation worker threads: the explicit setting, or every available core under auto
    (evaluation is one big pass whose workers share nothing; it is not the spinning case)."""
    s = current_setting()
    return available_cores() if s == "auto" else int(s)


@contextlib.contextmanager
def training_threads():
    """For an epoch loop: torch and the BLAS at the training count of the setting in force
    (auto: :data:`AUTO_TRAIN_THREADS`), the previous counts restored afterwards."""
    n = train_threads(current_setting())
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield n
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    limiter = _blas_limit(n)
    try:
        yield n
    finally:
        if limiter is not None:  # restores OpenMP too (threadpoolctl records every pool): torch last
            limiter.restore_original_limits()
        torch.set_num_threads(before)
