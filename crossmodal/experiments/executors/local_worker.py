"""What a worker of a local cluster (one this process started) runs as it starts, after
:mod:`~crossmodal.experiments.executors.warm`: it ignores SIGINT. A terminal's Ctrl-C reaches
every process of the command's group; the calling process cancels the tasks and stops these
workers itself, and a worker that took the signal too would print a ``KeyboardInterrupt``
traceback over the command's own one-line message. Workers started by hand are not given this
module: there Ctrl-C stops the worker, as Dask's own command does.
"""

from __future__ import annotations

import signal
import threading

if threading.current_thread() is threading.main_thread():  # Dask imports preloads in the main thread
    signal.signal(signal.SIGINT, signal.SIG_IGN)
