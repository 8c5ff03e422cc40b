"""What a local Dask worker imports as it starts (Dask's worker ``preload``), so that its first
task does not pay for it: torch, ``torch._dynamo`` (imported by torch's first optimiser step),
the code a sweep's task runs and every built-in method. Measured on a 2-core machine: 4.4 s per
worker, 2.6 s of it ``torch._dynamo``. The local cluster starts in the background while the
calling process checks the sweep's grid, so these imports overlap that work instead of delaying
the first runs.

Workers started by hand or by dask-jobqueue get the same with
``dask worker ... --preload crossmodal.experiments.executors.warm``.
"""

from __future__ import annotations

import importlib

MODULES = ("torch", "torch._dynamo", "crossmodal.experiments.point", "crossmodal.runs.encode")


def warm() -> list[str]:
    """Import :data:`MODULES` and the built-in methods; returns the modules that failed to import
    (a worker without torch still starts: its tasks then fail with the usual one-line error)."""
    failed = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            failed.append(name)
    try:
        from crossmodal.methods import available_methods

        available_methods()  # imports every built-in method module
    except ImportError:
        failed.append("crossmodal.methods")
    return failed


warm()
