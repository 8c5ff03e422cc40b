"""What an executor is, and the one that runs everything here, in this process.

An executor runs one function over a list of independent items (a sweep's grid points, an
encode's chunks) and hands back each :class:`Outcome` as soon as its item is done, in
completion order. ``with executor:`` releases what it started (a cluster) on the way out, a
Ctrl-C included. Every executor has the same methods:

* ``map_unordered(fn, items, keys=None) -> Iterator[Outcome]``: ``fn(item)`` for each item;
  an exception of ``fn`` comes back as the outcome's ``error`` (the other items go on), a
  ``KeyboardInterrupt`` stops everything (cancels what is left) and propagates;
* ``prepare()``: start what ``map_unordered`` will need without waiting for it (a cluster's
  start, in the background), so that the caller's own work overlaps it; optional to call;
* ``in_process``: True when ``fn`` runs in the calling process (so it may log there);
* ``describe()``: one line saying where the work runs;
* ``close()``.

``fn`` and the items must be importable and picklable for executors that ship them to other
processes (module-level functions, plain dicts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence


@dataclass
class Outcome:
    """One finished item: its position in the list, ``fn``'s value or its exception, and the
    seconds ``fn`` ran."""

    index: int
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


class SequentialExecutor:
    """Each item in turn, in this process (the default executor)."""

    name = "sequential"
    in_process = True

    def map_unordered(self, fn: Callable, items: Sequence, keys: Sequence[str] | None = None) -> Iterator[Outcome]:
        """``fn(item)`` for each item in order; yields each :class:`Outcome` as it finishes."""
        for i, item in enumerate(items):
            t0 = time.perf_counter()
            try:
                value = fn(item)
            except Exception as exc:  # an item's failure is its outcome; the caller decides
                yield Outcome(i, error=exc, seconds=time.perf_counter() - t0)
                continue
            yield Outcome(i, value=value, seconds=time.perf_counter() - t0)

    def prepare(self) -> None:
        """Nothing to start."""

    def describe(self) -> str:
        return "sequential: one item after another in this process"

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
