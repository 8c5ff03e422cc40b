"""Hamming search over packed binary codes, in the style of a FAISS index.

``HammingIndex(bits, kind="flat")`` is exact; ``kind="hnsw"`` (graph search) and ``kind="ivf"``
(inverted lists over ``nlist`` clusters, ``nprobe`` of them searched) are approximate.
Backends: FAISS binary indexes (``IndexBinaryFlat``, ``IndexBinaryHNSW``, ``IndexBinaryIVF``)
when faiss is importable, NumPy ``bitwise_count`` otherwise (exact only). Every exact backend
returns the same neighbours: ascending distance, ties broken by insertion order.

Ids: by default an item's id is its position (0, 1, ... in the order added); ``add(codes, ids)``
stores ids of the caller's own ``(N,) int64`` instead (the rows of an encoded feature file,
say), and results carry them. Added in ascending order, ties by insertion order are ties by id.

Results follow FAISS: ``search`` returns ``(D, I)`` of shape ``(nq, k)``, padded with
``D = bits + 1`` and ``I = -1`` when fewer than ``k`` items are found; ``range_search``
returns ``(lims, D, I)`` with query ``i``'s hits in ``D[lims[i]:lims[i+1]]``, sorted by
(distance, insertion order).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from crossmodal import __version__
from crossmodal.engine import atomic_write_bytes
from crossmodal.errors import DataError
from crossmodal.retrieval.codes import check_bits, check_codes, hamming_distance, n_bytes

INDEX_FORMAT = 1
KINDS = ("flat", "hnsw", "ivf")


def _faiss():
    try:
        import faiss

        return faiss
    except ImportError:
        return None


def available_backends() -> list[str]:
    return (["faiss"] if _faiss() is not None else []) + ["numpy"]


class HammingIndex:
    """Exact or approximate k-nearest-neighbour search in Hamming space.

    Parameters
    ----------
    bits : code length (1..1024).
    kind : "flat" (exact), "hnsw" or "ivf" (approximate, FAISS only).
    backend : "auto" (FAISS when available), "faiss" or "numpy".
    hnsw_m, ef_construction, ef_search : HNSW graph parameters.
    nlist, nprobe : IVF lists (None: about sqrt(N), fixed when the index is first searched or
        saved, after which it is trained on the codes held then) and lists searched per query.
    """

    def __init__(self, bits: int, kind: str = "flat", backend: str = "auto", hnsw_m: int = 16,
                 ef_construction: int = 64, ef_search: int = 128, nlist: int | None = None, nprobe: int = 32):
        self.bits = check_bits(bits)
        if kind not in KINDS:
            raise DataError(f"HammingIndex: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if backend == "auto":
            backend = "faiss" if _faiss() is not None else "numpy"
        if backend not in ("faiss", "numpy"):
            raise DataError(f"HammingIndex: backend must be 'auto', 'faiss' or 'numpy', got {backend!r}")
        if backend == "faiss" and _faiss() is None:
            raise DataError("HammingIndex: faiss is not installed; pip install faiss-cpu, or use backend='numpy'")
        if kind != "flat" and backend != "faiss":
            raise DataError(f"HammingIndex: kind={kind!r} needs faiss (pip install faiss-cpu); use kind='flat' "
                            "for NumPy")
        if nlist is not None and int(nlist) < 1 or int(nprobe) < 1:
            raise DataError(f"HammingIndex: nlist and nprobe must be >= 1, got {nlist!r}, {nprobe!r}")
        self.kind, self.backend = kind, backend
        self.hnsw_m, self.ef_construction, self.ef_search = int(hnsw_m), int(ef_construction), int(ef_search)
        self.nlist, self.nprobe = None if nlist is None else int(nlist), int(nprobe)
        self.width = n_bytes(self.bits)
        self._codes = np.zeros((0, self.width), dtype=np.uint8)
        self._ids: np.ndarray | None = None  # None: ids are positions
        # IVF is trained on the codes it holds, so it is built when first needed (search, save)
        self._faiss_index = self._new_faiss() if backend == "faiss" and kind != "ivf" else None
        self.meta: dict = {}  # saved with the index: e.g. the model and modality the codes came from

    def _new_faiss(self):
        faiss = _faiss()
        d = 8 * self.width
        if self.kind == "flat":
            idx = faiss.IndexBinaryFlat(d)
            idx.use_heap = False  # counting-based k-selection: ties come out by ascending id
        elif self.kind == "hnsw":
            idx = faiss.IndexBinaryHNSW(d, self.hnsw_m)
            idx.hnsw.efConstruction = self.ef_construction
            idx.hnsw.efSearch = self.ef_search
        else:
            n = max(1, self.ntotal)
            self.nlist = min(n, self.nlist or max(1, int(round(np.sqrt(n)))))
            idx = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(d), d, self.nlist)  # faiss keeps the quantizer alive
            idx.train(self._codes if self.ntotal else np.zeros((1, self.width), np.uint8))
            idx.add(self._codes)
            idx.nprobe = self.nprobe
        return idx

    def _built(self):
        """The FAISS index (an IVF index is trained and filled here, the first time); None for NumPy."""
        if self._faiss_index is None and self.backend == "faiss":
            self._faiss_index = self._new_faiss()
        return self._faiss_index

    @property
    def ntotal(self) -> int:
        return int(self._codes.shape[0])

    def __len__(self) -> int:
        return self.ntotal

    @property
    def codes(self) -> np.ndarray:
        """The stored codes ``(ntotal, ceil(bits/8))`` uint8, in insertion order (read-only view)."""
        view = self._codes.view()
        view.flags.writeable = False
        return view

    @property
    def ids(self) -> np.ndarray:
        """The stored ids ``(ntotal,)`` int64, in insertion order (positions unless ids were given)."""
        return np.arange(self.ntotal, dtype=np.int64) if self._ids is None else self._ids.copy()

    def add(self, codes, ids=None) -> "HammingIndex":
        """Append packed codes ``(n, ceil(bits/8))`` uint8 with their ``ids`` ``(n,)`` int64
        (default: positions, continuing from ``ntotal``; once ids were given, always give them)."""
        codes = check_codes(codes, self.bits, "codes to add")
        if ids is not None:
            ids = np.asarray(ids)
            if ids.shape != (codes.shape[0],) or ids.dtype.kind not in "iu":
                raise DataError(f"ids: expected {codes.shape[0]} whole numbers (shape ({codes.shape[0]},)), got "
                                f"{ids.dtype} {ids.shape}")
            base = np.arange(self.ntotal, dtype=np.int64) if self._ids is None else self._ids
            self._ids = np.concatenate([base, ids.astype(np.int64)])
        elif self._ids is not None:
            raise DataError("this index holds ids of your own; give the ids of the codes to add too")
        self._codes = np.concatenate([self._codes, codes]) if self.ntotal else codes.copy()
        if self._faiss_index is not None:
            self._faiss_index.add(codes)
        return self

    def _as_ids(self, I: np.ndarray) -> np.ndarray:
        """Positions -> stored ids (-1 stays -1)."""
        if self._ids is None:
            return I
        return np.where(I >= 0, self._ids[np.maximum(I, 0)], -1)

    def _check_query(self, q) -> np.ndarray:
        q = np.asarray(q)
        if q.ndim == 1:
            q = q[None, :]
        return check_codes(q, self.bits, "query codes")

    def search(self, q, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``k`` nearest stored codes of each query: ``(D int32 (nq, k), I int64 (nq, k))``."""
        if int(k) != k or k <= 0:
            raise DataError(f"k must be a positive whole number, got {k!r}")
        k = int(k)
        q = self._check_query(q)
        nq = q.shape[0]
        D = np.full((nq, k), self.bits + 1, dtype=np.int32)
        I = np.full((nq, k), -1, dtype=np.int64)
        if self.ntotal == 0:
            return D, I
        kk = min(k, self.ntotal)
        if self._built() is not None:
            d, i = self._faiss_index.search(q, kk)
            d[i < 0] = self.bits + 1  # IVF: fewer than kk found in the probed lists
            D[:, :kk], I[:, :kk] = d, i
            if self.kind != "hnsw":
                D[:, :kk], I[:, :kk] = _sort_pairs(D[:, :kk], I[:, :kk])
            return D, self._as_ids(I)
        n = self.ntotal
        step = max(1, (1 << 22) // n)
        for s in range(0, nq, step):
            dist = hamming_distance(q[s:s + step], self._codes).astype(np.int64)
            key = dist * n + np.arange(n)  # unique keys: distance first, then id
            part = np.argpartition(key, kk - 1, axis=1)[:, :kk] if kk < n else np.broadcast_to(np.arange(n), key.shape)
            kp = np.take_along_axis(key, part, axis=1)
            o = np.argsort(kp, axis=1)
            kp = np.take_along_axis(kp, o, axis=1)
            D[s:s + step, :kk] = kp // n
            I[s:s + step, :kk] = kp % n
        return D, self._as_ids(I)

    def range_search(self, q, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All stored codes within Hamming distance ``radius`` (inclusive) of each query.

        Exact for every kind (an HNSW or IVF index answers range queries from its stored codes).
        """
        if int(radius) != radius or radius < 0:
            raise DataError(f"radius must be a non-negative whole number, got {radius!r}")
        q = self._check_query(q)
        n = max(1, self.ntotal)
        step = max(1, (1 << 22) // n)
        counts, Ds, Is = [], [], []
        for s in range(0, q.shape[0], step):
            dist = hamming_distance(q[s:s + step], self._codes)
            rows, ids = np.nonzero(dist <= radius)  # row-major: ids ascend within a row
            dd = dist[rows, ids].astype(np.int32)
            o = np.lexsort((ids, dd, rows))
            Ds.append(dd[o])
            Is.append(ids[o].astype(np.int64))
            counts.append(np.bincount(rows, minlength=dist.shape[0]))
        lims = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
        return lims, np.concatenate(Ds), self._as_ids(np.concatenate(Is))

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the index to one ``.npz`` file (codes, ids of your own, settings, the FAISS graph
        or trained lists of an HNSW / IVF index); atomic."""
        path = Path(path)
        if self.kind == "ivf":
            self._built()  # fixes nlist before the header records it
        header = {
            "format": INDEX_FORMAT, "crossmodal": __version__, "bits": self.bits, "kind": self.kind,
            "backend": self.backend, "hnsw_m": self.hnsw_m, "ef_construction": self.ef_construction,
            "ef_search": self.ef_search, "nlist": self.nlist, "nprobe": self.nprobe, "meta": self.meta,
        }
        arrays = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), "codes": self._codes}
        if self._ids is not None:
            arrays["ids"] = self._ids
        if self.kind != "flat" and self._faiss_index is not None:
            arrays["faiss"] = _faiss().serialize_index_binary(self._faiss_index)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, expect: dict | None = None) -> "HammingIndex":
        """Read an index written by :meth:`save`. ``expect``: entries its ``meta`` must hold
        (e.g. the identity of the model that made the codes); a difference is an error."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: index file not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                codes = z["codes"]
                ids = z["ids"] if "ids" in z.files else None
                graph = z["faiss"] if "faiss" in z.files else None
            if not isinstance(header, dict):
                raise ValueError("header is not an object")
        except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(f"{path}: not a crossmodal Hamming index, or truncated ({exc}); rebuild it") from None
        if header.get("format") != INDEX_FORMAT:
            raise DataError(f"{path}: index format {header.get('format')} is not the one this crossmodal reads "
                            f"({INDEX_FORMAT}); rebuild it")
        meta = header.get("meta") if isinstance(header.get("meta"), dict) else {}
        legacy = "meta" not in header  # written before indexes recorded their model: nothing to check
        for k, want in ({} if legacy else expect or {}).items():
            if meta.get(k) != want:
                raise DataError(f"{path}: the index was built for {k} {meta.get(k)!r}, not {want!r} (copied from "
                                "another run?); use the index of this run, or train again")
        try:
            backend = header["backend"] if header["backend"] in available_backends() else "numpy"
            idx = cls(header["bits"], kind=header["kind"], backend=backend, hnsw_m=header["hnsw_m"],
                      ef_construction=header["ef_construction"], ef_search=header["ef_search"],
                      nlist=header.get("nlist"), nprobe=header.get("nprobe", 32))
        except (KeyError, TypeError) as exc:
            raise DataError(f"{path}: damaged index header ({exc}); rebuild it") from None
        if ids is not None and (ids.shape != (len(codes),) or ids.dtype != np.int64):
            raise DataError(f"{path}: damaged index ({len(codes)} codes but ids of shape {ids.shape}); rebuild it")
        idx.meta = meta
        if graph is not None and backend == "faiss":
            idx._faiss_index = _faiss().deserialize_index_binary(graph)
            if idx.kind == "hnsw":
                idx._faiss_index.hnsw.efSearch = idx.ef_search
            else:
                idx._faiss_index.nprobe = idx.nprobe
            idx._codes, idx._ids = codes, ids
        else:
            idx.add(codes, ids)
        return idx


def _sort_pairs(D: np.ndarray, I: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order each row by (distance, id)."""
    o = np.argsort(D.astype(np.int64) * (int(I.max()) + 2) + I, axis=1, kind="stable")
    return np.take_along_axis(D, o, 1), np.take_along_axis(I, o, 1)
