"""Progress bars on a terminal, one line per epoch in job logs.

* :func:`tqdm` is ``tqdm.tqdm`` that draws only when its stream (stderr) is a terminal: in a
  job log (stderr redirected to a file or a pipe) a bar neither draws nor redraws. Every bar
  in crossmodal comes from here (``from crossmodal.progress import tqdm``); ``disable=True``
  at a call site still turns a bar off everywhere.
* Messages go through Python :mod:`logging` under the logger ``"crossmodal"`` (:data:`LOGGER`)
  so users can route them. :func:`configure_logging` (the CLI calls it; ``--quiet`` ->
  warnings only, ``--verbose`` -> debug) prints them on stderr, on a terminal through
  ``tqdm.write`` so that the lines appear under the bars without breaking them.
* :func:`epoch_line` formats the per-epoch record (losses, validation mAP, seconds).
"""

from __future__ import annotations

import logging
import math
import sys

LOGGER = logging.getLogger("crossmodal")


def stderr_is_tty() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


def tqdm(*args, disable: bool | None = False, **kwargs):
    """``tqdm.tqdm`` that is disabled when its stream is not a terminal (``disable=None`` in
    tqdm's terms) unless ``disable=True`` turns it off outright. In a Jupyter kernel (whose
    stderr is no terminal) it is ``tqdm.auto``'s notebook bar, shown unless disabled."""
    if "ipykernel" in sys.modules:
        from tqdm.auto import tqdm as _auto

        return _auto(*args, disable=bool(disable), **kwargs)
    from tqdm import tqdm as _tqdm

    return _tqdm(*args, disable=True if disable else None, **kwargs)


class _Handler(logging.StreamHandler):
    """A stream handler that, without an explicit stream, writes to the ``sys.stderr`` of the
    moment (a replaced or closed earlier stderr is never kept), and on a terminal writes with
    ``tqdm.write`` so that records land under any live bars."""

    def __init__(self, stream=None):
        super().__init__(stream if stream is not None else sys.stderr)
        self._follow = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow:
            self.stream = sys.stderr
        if not bool(getattr(self.stream, "isatty", lambda: False)()):
            super().emit(record)
            return
        try:
            from tqdm import tqdm as _tqdm

            _tqdm.write(self.format(record), file=self.stream)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def configure_logging(quiet: bool = False, verbose: bool = False, stream=None) -> logging.Logger:
    """Route the ``crossmodal`` logger to ``stream`` (default: whatever ``sys.stderr`` is when a
    record is written): INFO by default, WARNING with
    ``quiet``, DEBUG with ``verbose``. Replaces the handler an earlier call installed."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    for h in list(LOGGER.handlers):
        if getattr(h, "_crossmodal", False):
            LOGGER.removeHandler(h)
    handler = _Handler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s crossmodal: %(message)s", "%H:%M:%S"))
    handler._crossmodal = True
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    LOGGER.propagate = False
    return LOGGER


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def epoch_line(name: str, rec: dict, seconds: float, last: int | None = None) -> str:
    """``ugach epoch 3/10: loss_d 0.412 loss_g -0.03 val/i2t/mAP@all 0.41 score 0.40 (2.1 s)``:
    the epoch's scalar entries in their order, validation entries included."""
    ep = rec.get("epoch")
    head = f"{name} epoch {ep}" + (f"/{last}" if last is not None else "")
    parts = [f"{k} {_fmt(v)}" for k, v in rec.items()
             if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return f"{head}: {' '.join(parts)} ({seconds:.1f} s)"
