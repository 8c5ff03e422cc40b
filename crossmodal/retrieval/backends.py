"""Index backends behind one URI: :func:`open_index` gives every store of packed codes the same
``add`` / ``search`` interface.

URIs:

* ``PATH`` or ``faiss:PATH``: one crossmodal index file (``.npz``: the codes, their ids, the
  settings and, for ``hnsw`` / ``ivf``, the FAISS graph or trained lists), read and written by
  :class:`~crossmodal.retrieval.index.HammingIndex` (FAISS binary indexes; NumPy where FAISS
  is absent, flat only);
* ``milvus-lite:PATH.db`` (embedded Milvus Lite) and ``milvus://HOST:PORT[/COLLECTION]`` (a Milvus
  server): :class:`crossmodal.retrieval.milvus.MilvusIndex`, imported only when such a URI is
  opened (``pip install crossmodal[milvus]``).

Every backend object has ``add(codes, ids)``, ``search(q, k) -> (D, I)``, ``ntotal``, ``bits``,
``meta``, ``set_meta(dict)`` and ``close()``: codes are ``(N, ceil(bits/8)) uint8`` packed as
:mod:`crossmodal.retrieval.codes` packs them, ids ``(N,) int64`` of the caller's choosing,
``D (M, k) int32`` Hamming distances and ``I (M, k) int64`` those ids, ``-1`` where fewer than
``k`` were found.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossmodal.errors import DataError
from crossmodal.retrieval.index import KINDS, HammingIndex

MODES = ("r", "w")
MILVUS_SCHEMES = ("milvus-lite:", "milvus://")


def open_index(uri: str, bits: int | None = None, mode: str = "r", kind: str = "flat", **options):
    """The index at ``uri`` (see the module docstring), opened to read (``mode="r"``: it must
    exist) or to write a new one (``mode="w"``: ``bits`` needed; a file that exists is refused,
    never replaced). ``kind`` (flat, hnsw, ivf) and ``options`` (``nlist``, ``nprobe``,
    ``hnsw_m``, ...) shape a new FAISS index file; Milvus URIs take no kind."""
    if mode not in MODES:
        raise DataError(f"open_index: mode must be 'r' or 'w', got {mode!r}")
    uri = str(uri)
    if uri.startswith(MILVUS_SCHEMES):
        if kind != "flat" or options:
            raise DataError(f"{uri}: --kind and index options shape FAISS index files; a Milvus collection "
                            "takes none")
        try:
            from crossmodal.retrieval.milvus import MilvusIndex
        except ModuleNotFoundError as exc:
            if exc.name != "crossmodal.retrieval.milvus":
                raise
            raise DataError(f"{uri}: Milvus indexes need the milvus extra of crossmodal, which this installation "
                            "lacks: pip install crossmodal[milvus]") from None
        return MilvusIndex(uri, bits=bits, mode=mode)
    path = Path(uri[len("faiss:"):] if uri.startswith("faiss:") else uri)
    if ":" in uri.split("/")[0] and not uri.startswith("faiss:") and not path.exists():
        scheme = uri.split(":")[0]
        raise DataError(f"{uri}: unknown index URI scheme {scheme!r}; use a path, faiss:PATH, milvus-lite:PATH.db "
                        "or milvus://HOST:PORT[/COLLECTION]")
    return FaissFileIndex(path, bits=bits, mode=mode, kind=kind, **options)


class FaissFileIndex:
    """A crossmodal index file as a backend: a :class:`HammingIndex` loaded from ``path``
    (``mode="r"``) or filled in memory and written to ``path`` by :meth:`close` (``mode="w"``,
    atomic). ``search`` works in both modes."""

    def __init__(self, path: str | Path, bits: int | None = None, mode: str = "r", kind: str = "flat", **options):
        self.path, self.mode = Path(path), mode
        if mode == "r":
            self.index = HammingIndex.load(self.path)
            if bits is not None and int(bits) != self.index.bits:
                raise DataError(f"{self.path}: holds {self.index.bits}-bit codes, not {bits}")
        else:
            if bits is None:
                raise DataError(f"{self.path}: a new index needs its code length (bits)")
            if self.path.exists() or self.path.is_symlink():
                raise DataError(f"{self.path}: exists; an index is never written over a file (remove it, or give "
                                "another --to)")
            if kind not in KINDS:
                raise DataError(f"index kind must be one of {', '.join(KINDS)}, got {kind!r}")
            if not self.path.parent.is_dir():
                raise DataError(f"{self.path}: its folder {self.path.parent} does not exist")
            self.index = HammingIndex(bits, kind=kind, **options)
        self.closed = False

    @property
    def bits(self) -> int:
        return self.index.bits

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    @property
    def meta(self) -> dict:
        return dict(self.index.meta)

    def set_meta(self, meta: dict) -> None:
        """Merge ``meta`` into the index's meta (saved with it; e.g. the model identity)."""
        self._writable()
        self.index.meta = {**self.index.meta, **dict(meta)}

    def add(self, codes, ids) -> None:
        """Append ``codes (N, ceil(bits/8)) uint8`` with their ``ids (N,) int64``."""
        self._writable()
        self.index.add(codes, np.asarray(ids))

    def search(self, q, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(D (M, k) int32, I (M, k) int64)``: the ``k`` nearest codes' distances and ids."""
        return self.index.search(q, k)

    def close(self) -> None:
        """Write a new index to its file (atomic); reading: nothing to do."""
        if self.mode == "w" and not self.closed:
            self.index.save(self.path)
        self.closed = True

    def _writable(self) -> None:
        if self.mode != "w" or self.closed:
            raise DataError(f"{self.path}: opened to read; open it with mode='w' to add codes or meta")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self.closed = True  # nothing written after an error
