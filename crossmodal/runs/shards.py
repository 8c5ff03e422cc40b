"""An encoded database on disk: shards of packed codes and the ``manifest.json`` that vouches for them.

An encode folder (written by :func:`crossmodal.runs.encode.encode_features`) holds::

    manifest.json       what was encoded and how far: see below
    shard-00000.npy     codes of rows [start, stop) of the feature file: (stop - start, ceil(bits/8)) uint8
    shard-00001.npy     ...
    .lock               while an encode writes into the folder

``manifest.json`` is a JSON object: ``format``, ``rows``, ``bits``, ``bytes_per_code``,
``modality``, ``model`` (the identity of the run's model, :func:`~crossmodal.runs.folder.model_identity`),
``method``, ``run`` (the run folder), ``features`` (``path``, ``shape``, ``dtype``, ``bytes``,
``mtime_ns`` of the feature file), ``chunk_rows``, ``chunks`` (one ``{start, stop, file, sha256}``
per shard; ``sha256`` is null until the shard is written) and ``complete``. A shard's ids are its
rows in the feature file: ``start .. stop - 1``.

Every read goes through :func:`read_manifest` and :func:`read_shard`: a damaged manifest, a
missing shard or one whose SHA-256 differs from the manifest's is one :class:`DataError` line
naming the file. Shards are written atomically (complete or absent) and never pickled.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from crossmodal.engine import atomic_write_bytes, atomic_write_json
from crossmodal.errors import DataError
from crossmodal.retrieval.codes import n_bytes
from crossmodal.stored import read_json

MANIFEST = "manifest.json"
FORMAT = 1
KEYS = ("format", "rows", "bits", "bytes_per_code", "modality", "model", "method", "run", "features", "chunk_rows",
        "chunks", "complete")
REDO = "remove it and run `crossmodal encode` again with the same arguments to encode its rows again"


def shard_name(i: int, n_chunks: int) -> str:
    """``shard-00003.npy`` (at least 5 digits, more when there are more chunks)."""
    return f"shard-{i:0{max(5, len(str(max(0, n_chunks - 1))))}d}.npy"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_shard(path: str | os.PathLike, codes: np.ndarray) -> str:
    """Write ``codes`` as one ``.npy`` file, atomically; returns the file's SHA-256."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(codes, dtype=np.uint8), allow_pickle=False)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return sha256(data)


def read_manifest(folder: str | os.PathLike) -> dict:
    """``folder/manifest.json``, checked: every key present, chunks that tile ``0..rows``."""
    path = Path(folder) / MANIFEST
    m = read_json(path, hint="not an encode folder, or a damaged one: encode again into a new --out")
    missing = [k for k in KEYS if k not in m]
    if missing:
        raise DataError(f"{path}: damaged (no {missing[0]!r}); encode again into a new --out")
    if m["format"] != FORMAT:
        raise DataError(f"{path}: format {m['format']!r} is not the one this crossmodal reads ({FORMAT}); encode again")
    try:
        rows, bits = int(m["rows"]), int(m["bits"])
        bounds = [(int(c["start"]), int(c["stop"])) for c in m["chunks"]]
        names = [str(c["file"]) for c in m["chunks"]]
    except (TypeError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: damaged chunk list ({type(exc).__name__}: {exc}); encode again into a new --out") \
            from None
    tiled = [s for s, _ in bounds] == [0] + [e for _, e in bounds[:-1]] and (not bounds or bounds[-1][1] == rows)
    if not tiled or any(e <= s for s, e in bounds) or int(m["bytes_per_code"]) != n_bytes(bits):
        raise DataError(f"{path}: damaged (its chunks do not cover rows 0..{rows} in order); encode again")
    if any(Path(n).name != n or not n.endswith(".npy") for n in names):
        raise DataError(f"{path}: damaged (a shard name is not a plain .npy file name); encode again")
    return m


def write_manifest(folder: str | os.PathLike, manifest: dict) -> Path:
    return atomic_write_json(Path(folder) / MANIFEST, manifest)


def read_shard(folder: str | os.PathLike, manifest: dict, i: int) -> np.ndarray:
    """The codes of chunk ``i``, ``(stop - start, bytes_per_code) uint8``, after checking the
    file against the manifest (present, same SHA-256, that shape)."""
    chunk = manifest["chunks"][i]
    path = Path(folder) / chunk["file"]
    if chunk.get("sha256") is None:
        raise DataError(f"{path}: not encoded yet (the encode did not finish); run `crossmodal encode` again "
                        "with the same arguments to finish it")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: missing shard (rows {chunk['start']}..{chunk['stop']}); {REDO}") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable shard ({exc.strerror or exc}); {REDO}") from None
    if sha256(data) != chunk["sha256"]:
        raise DataError(f"{path}: damaged shard (its SHA-256 differs from {MANIFEST}'s); {REDO}")
    try:
        codes = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: damaged shard ({exc}); {REDO}") from None
    want = (chunk["stop"] - chunk["start"], manifest["bytes_per_code"])
    if codes.dtype != np.uint8 or codes.shape != want:
        raise DataError(f"{path}: holds {codes.dtype} {codes.shape}, the manifest says uint8 {want}; {REDO}")
    return codes


class EncodedCodes:
    """A finished encode folder, read shard by shard with every shard checked.

    ``rows``, ``bits``, ``modality``, ``model`` and ``meta`` (what an index built from it
    records) come from the manifest; iterating gives ``(ids (n,) int64, codes (n, ceil(bits/8))
    uint8)`` per shard, ids being the rows of the feature file.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        if not self.manifest["complete"]:
            done = sum(c.get("sha256") is not None for c in self.manifest["chunks"])
            raise DataError(f"{self.folder}: the encode is unfinished ({done} of {len(self.manifest['chunks'])} "
                            "shards); run `crossmodal encode` again with the same arguments to finish it")
        self.rows, self.bits = int(self.manifest["rows"]), int(self.manifest["bits"])
        self.modality, self.model = self.manifest["modality"], self.manifest["model"]

    @property
    def meta(self) -> dict:
        m = self.manifest
        return {"model": m["model"], "modality": m["modality"], "method": m["method"], "run": m["run"],
                "features": m["features"]["path"], "rows": m["rows"], "source": str(self.folder.resolve())}

    def __len__(self) -> int:
        return len(self.manifest["chunks"])

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i, chunk in enumerate(self.manifest["chunks"]):
            yield np.arange(chunk["start"], chunk["stop"], dtype=np.int64), read_shard(self.folder, self.manifest, i)

    def verify(self) -> None:
        """Check every shard (present, checksum, shape); one :class:`DataError` for the first bad one."""
        for i in range(len(self)):
            read_shard(self.folder, self.manifest, i)
