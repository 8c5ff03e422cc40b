"""Resumable chunked writes of feature matrices: :class:`ChunkedArrayWriter` and
:func:`featurize_into`, which a killed preparation resumes at the first unfinished chunk.

The job's identity (:func:`job_fingerprint`: source, root, ids, featurizer settings) is stored
beside the rows, so a changed job starts over instead of mixing rows of two jobs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from crossmodal.errors import DataError
from crossmodal.progress import tqdm
from crossmodal.stored import read_json


def job_fingerprint(*parts) -> str:
    """16 hex digits identifying a featurization job from JSON-able ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ChunkedArrayWriter:
    """Writes an (N, D) float32 array into ``folder/name.npy`` (memory-mapped) chunk by chunk.

    ``name.progress.json`` holds how many leading rows are done and the job's fingerprint;
    it is updated only after the rows are flushed to disk, so :attr:`done` is never ahead of
    the data. A writer opened on a folder with the same fingerprint continues from there.
    """

    def __init__(self, folder: Path, name: str, n: int, dim: int, fingerprint: str):
        self.path = folder / f"{name}.npy"
        self.progress = folder / f"{name}.progress.json"
        self.n, self.dim, self.fingerprint = int(n), int(dim), fingerprint
        self.done = 0
        if self.path.is_file() and self.progress.is_file():
            try:
                state = read_json(self.progress)
                arr = np.load(self.path, mmap_mode="r+")
                if state.get("fingerprint") == fingerprint and arr.shape == (self.n, self.dim):
                    self.arr, self.done = arr, int(state["rows"])
                    return
            except (DataError, ValueError, OSError, KeyError, TypeError):
                pass  # a damaged record or array: start the job again
        self.arr = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float32, shape=(self.n, self.dim))
        self._commit(0)

    def _commit(self, rows: int) -> None:
        tmp = self.progress.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rows": rows, "fingerprint": self.fingerprint}), encoding="utf-8")
        os.replace(tmp, self.progress)
        self.done = rows

    def write(self, start: int, rows: np.ndarray) -> None:
        if start != self.done:
            raise DataError(f"{self.path.name}: chunk at row {start} but {self.done} rows are done")
        if rows.shape[1] != self.dim:
            raise DataError(f"{self.path.name}: featurizer gave {rows.shape[1]}-d rows, expected {self.dim}")
        self.arr[start:start + len(rows)] = rows
        self.arr.flush()
        self._commit(start + len(rows))

    def close(self) -> np.ndarray:
        if self.done != self.n:
            raise DataError(f"{self.path.name}: only {self.done} of {self.n} rows written")
        self.progress.unlink(missing_ok=True)
        del self.arr
        return np.load(self.path, mmap_mode="r")


def featurize_into(folder: Path, name: str, items, featurizer, fingerprint: str, chunk: int = 1024,
                   progress: bool = True) -> np.ndarray:
    """Featurize ``items`` (a sequence supporting slicing) into ``folder/name.npy``, resumably:
    ``featurizer.transform(items[s:s + chunk])`` gives ``(chunk, dim) float32`` rows. Returns the
    finished ``(N, dim) float32`` array, memory-mapped."""
    n = len(items)
    dim = int(featurizer.dim)
    w = ChunkedArrayWriter(folder, name, n, dim, fingerprint)
    with tqdm(total=n, initial=w.done, desc=f"{name} features", unit="item", disable=not progress) as bar:
        for s in range(w.done, n, chunk):
            batch = items[s:s + chunk]
            w.write(s, np.asarray(featurizer.transform(batch), dtype=np.float32))
            bar.update(len(batch))
    return w.close()
