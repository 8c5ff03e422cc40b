"""Hamming search in Milvus: :class:`MilvusIndex`, the index backend behind the ``milvus-lite:``
and ``milvus://`` URIs of :func:`crossmodal.retrieval.backends.open_index` (an extra:
``pip install crossmodal[milvus]``).

URIs::

    milvus-lite:PATH.db                embedded Milvus Lite: one file, one process holds it at a time
    milvus://HOST:PORT[/COLLECTION]    a Milvus server (token from $CROSSMODAL_MILVUS_TOKEN, if any)

Codes are stored as ``BINARY_VECTOR`` rows of ``8 * ceil(bits/8)`` bits (the packed bytes as
they are) with an ``INT64`` primary key (the ids given to :meth:`MilvusIndex.add`), searched
with the ``HAMMING`` metric on a ``BIN_FLAT`` index: exact, so the distances equal FAISS flat
search (``HammingIndex``); within a tie the ids may differ at the k-th place, and each answer is
ordered by (distance, id). Measured: Milvus Lite 3.x refuses ``BINARY_VECTOR``; ``milvus-lite
2.5.1`` with ``pymilvus`` 2.6 works, and offers ``BIN_FLAT`` only (a server also
``BIN_IVF_FLAT``). The code length and ``meta`` (model identity, modality, ...) live in a
second collection ``COLLECTION_meta`` of one row.

Modes: ``"r"`` reads an existing collection (nothing written); ``"w"`` creates a new one (an
existing collection is refused, never overwritten); ``"a"`` opens an existing one to add to
(or creates it).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from crossmodal.errors import DataError
from crossmodal.retrieval.codes import check_bits, check_codes, n_bytes

DEFAULT_COLLECTION = "crossmodal_codes"
MODES = ("r", "w", "a")
INSERT_ROWS = 20_000  # rows per insert call (well under the 64 MB gRPC message limit)
SEARCH_QUERIES = 256  # queries per search call
MAX_K = 16_384  # Milvus' own limit on top-k
FORMAT = 1
INSTALL = "pip install crossmodal[milvus]"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
_LITE_FILE = re.compile(r"^[A-Za-z0-9.\-_]{1,36}$")  # what Milvus Lite accepts as a file name


def parse_uri(uri: str) -> tuple[str, str, str]:
    """``(kind, address, collection)`` of a ``milvus-lite:PATH.db`` or ``milvus://HOST:PORT[/COLLECTION]``
    URI; kind is ``"lite"`` or ``"server"``."""
    if uri.startswith("milvus-lite:"):
        path = Path(uri[len("milvus-lite:"):]).expanduser()
        if path.suffix != ".db" or not _LITE_FILE.match(path.name):
            raise DataError(f"{uri}: a Milvus Lite file is named like codes.db (letters, digits, '.', '-', '_'; "
                            "at most 36 characters, ending in .db)")
        return "lite", str(path.absolute()), DEFAULT_COLLECTION
    m = re.match(r"^milvus://([^/:]+):(\d+)(?:/([^/]*))?/?$", uri)
    if not m:
        raise DataError(f"{uri}: not a Milvus URI; use milvus-lite:PATH.db or milvus://HOST:PORT[/COLLECTION]")
    collection = m.group(3) or DEFAULT_COLLECTION
    if not _NAME.match(collection):
        raise DataError(f"{uri}: collection {collection!r} must be letters, digits and '_', starting with a letter")
    return "server", f"http://{m.group(1)}:{m.group(2)}", collection


def _pymilvus():
    try:
        import pymilvus
    except ImportError:
        raise DataError(f"Milvus indexes need pymilvus; {INSTALL}") from None
    return pymilvus


def _lite_manager():
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        raise DataError(f"milvus-lite: URIs need the milvus-lite package; {INSTALL}") from None
    return server_manager_instance


class MilvusIndex:
    """Exact Hamming k-NN over packed codes in a Milvus collection (see the module docstring).

    ``add(codes (N, ceil(bits/8)) uint8, ids (N,) int64)``; ``search(q (M, ceil(bits/8)) uint8, k)
    -> (D (M, k) int32, I (M, k) int64)`` with the ids given to ``add``, padded with ``D = bits + 1``
    and ``I = -1`` where fewer than ``k`` codes are stored; ``ntotal``, ``bits``, ``meta``,
    ``set_meta(dict)``, ``close()``.
    """

    def __init__(self, uri: str, bits: int | None = None, mode: str = "r"):
        if mode not in MODES:
            raise DataError(f"{uri}: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.uri, self.mode = uri, mode
        self.kind, self.address, self.collection = parse_uri(uri)
        self.meta_collection = f"{self.collection}_meta"
        if self.kind == "lite" and not Path(self.address).parent.is_dir():
            raise DataError(f"{uri}: folder {Path(self.address).parent} does not exist")
        if self.kind == "lite" and mode == "r" and not Path(self.address).is_file():
            raise DataError(f"{uri}: no such Milvus Lite file; export codes into it first (crossmodal index)")
        pymilvus = _pymilvus()
        self._errors = (pymilvus.MilvusException,)
        self._client = None
        self._client = self._call("connect", lambda: self._connect(pymilvus))
        try:
            exists = self._call("list collections", lambda: self._client.has_collection(self.collection))
            if exists and mode == "w":
                raise DataError(f"{uri}: collection {self.collection!r} exists; crossmodal never overwrites an index "
                                "(choose another file or collection)")
            if not exists and mode == "r":
                raise DataError(f"{uri}: no collection {self.collection!r}; export codes into it first")
            if exists:
                self._open(bits)
            else:
                if bits is None:
                    raise DataError(f"{uri}: a new index needs its code length (bits)")
                self._create(check_bits(bits))
        except BaseException:
            self.close()
            raise

    # -- connection and collections ------------------------------------------------------
    def _connect(self, pymilvus):
        if self.kind == "lite":
            _lite_manager()
            return pymilvus.MilvusClient(self.address)
        return pymilvus.MilvusClient(uri=self.address, token=os.environ.get("CROSSMODAL_MILVUS_TOKEN", ""))

    def _call(self, what: str, fn):
        """Run one Milvus call; its failure is one DataError line naming the URI."""
        try:
            return fn()
        except DataError:
            raise
        except Exception as exc:  # pymilvus raises its own exceptions and gRPC's
            first = (str(getattr(exc, "message", "") or exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(f"{self.uri}: {what} failed ({first[:200]})") from None

    def _create(self, bits: int) -> None:
        from pymilvus import DataType, MilvusClient

        c = self._client
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                            description="crossmodal packed binary codes")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("code", DataType.BINARY_VECTOR, dim=8 * n_bytes(bits))
        meta_schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        meta_schema.add_field("id", DataType.INT64, is_primary=True)
        meta_schema.add_field("meta", DataType.VARCHAR, max_length=65_535)
        meta_schema.add_field("v", DataType.BINARY_VECTOR, dim=8)
        for name, s, field in ((self.collection, schema, "code"), (self.meta_collection, meta_schema, "v")):
            params = c.prepare_index_params()
            params.add_index(field_name=field, index_type="BIN_FLAT", metric_type="HAMMING")
            self._call(f"create collection {name}", lambda: c.create_collection(name, schema=s, index_params=params))
        self.bits, self.meta, self._ntotal = bits, {}, 0
        self._write_meta()

    def _open(self, bits: int | None) -> None:
        c = self._client
        if not self._call("find the meta collection", lambda: c.has_collection(self.meta_collection)):
            raise DataError(f"{self.uri}: collection {self.collection!r} has no {self.meta_collection!r}; "
                            "not written by crossmodal")
        self._call("load", lambda: c.load_collection(self.meta_collection))
        rows = self._call("read meta", lambda: c.query(self.meta_collection, filter="id == 0", output_fields=["meta"]))
        try:
            stored = json.loads(rows[0]["meta"])
            self.bits, self.meta = check_bits(stored["bits"]), dict(stored["meta"])
        except (IndexError, KeyError, TypeError, ValueError, DataError):
            raise DataError(f"{self.uri}: damaged meta row in {self.meta_collection!r}; "
                            "export the codes again") from None
        if bits is not None and int(bits) != self.bits:
            raise DataError(f"{self.uri}: holds {self.bits}-bit codes, not {bits}")
        self._call("load", lambda: c.load_collection(self.collection))
        stats = self._call("count rows", lambda: c.get_collection_stats(self.collection))
        self._ntotal = int(stats.get("row_count", 0))

    def _write_meta(self) -> None:
        text = json.dumps({"format": FORMAT, "bits": self.bits, "meta": self.meta})
        if len(text.encode()) > 65_535:
            raise DataError(f"{self.uri}: meta too large to store ({len(text)} characters)")
        row = {"id": 0, "meta": text, "v": b"\x00"}
        self._call("write meta", lambda: self._client.upsert(self.meta_collection, [row]))

    def _writable(self, what: str) -> None:
        if self.mode == "r":
            raise DataError(f"{self.uri}: opened read-only; {what} needs mode 'w' or 'a'")

    # -- the index interface -------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return self._ntotal

    def __len__(self) -> int:
        return self._ntotal

    def set_meta(self, meta: dict) -> None:
        """Replace the stored ``meta`` (model identity, modality, ...), a JSON object."""
        self._writable("set_meta")
        if not isinstance(meta, dict):
            raise DataError(f"{self.uri}: meta must be a dict, got {type(meta).__name__}")
        self.meta = dict(meta)
        self._write_meta()

    def add(self, codes, ids) -> "MilvusIndex":
        """Store packed codes ``(N, ceil(bits/8))`` uint8 under ``ids (N,)`` int64."""
        self._writable("add")
        codes = check_codes(codes, self.bits, "codes to add")
        ids = np.asarray(ids)
        if ids.shape != (len(codes),) or ids.dtype.kind not in "iu":
            raise DataError(f"{self.uri}: ids must be ({len(codes)},) integers, got {ids.dtype} {ids.shape}")
        ids = ids.astype(np.int64)
        for s in range(0, len(codes), INSERT_ROWS):
            part = zip(ids[s:s + INSERT_ROWS], codes[s:s + INSERT_ROWS])
            rows = [{"id": int(i), "code": c.tobytes()} for i, c in part]
            self._call("insert", lambda: self._client.insert(self.collection, rows))
        self._ntotal += len(codes)
        return self

    def search(self, q, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``k`` nearest stored codes of each query: ``(D int32 (M, k), I int64 (M, k))``, each row
        ordered by (distance, id)."""
        if isinstance(k, bool) or int(k) != k or not 0 < k <= MAX_K:
            raise DataError(f"k must be a whole number in 1..{MAX_K}, got {k!r}")
        q = np.asarray(q)
        q = check_codes(q[None, :] if q.ndim == 1 else q, self.bits, "query codes")
        k = int(k)
        D = np.full((len(q), k), self.bits + 1, dtype=np.int32)
        I = np.full((len(q), k), -1, dtype=np.int64)
        if self._ntotal == 0 or len(q) == 0:
            return D, I
        for s in range(0, len(q), SEARCH_QUERIES):
            batch = [row.tobytes() for row in q[s:s + SEARCH_QUERIES]]
            res = self._call("search", lambda: self._client.search(
                self.collection, data=batch, limit=k, anns_field="code", output_fields=[],
                search_params={"metric_type": "HAMMING"}))
            for j, hits in enumerate(res):
                pairs = sorted((int(round(h["distance"])), int(h["id"])) for h in hits)
                if pairs:
                    D[s + j, :len(pairs)], I[s + j, :len(pairs)] = np.array(pairs).T
        return D, I

    def close(self) -> None:
        """Flush what was added, close the connection (and stop the Milvus Lite process)."""
        if self._client is None:
            return
        try:
            if self.mode != "r" and hasattr(self, "bits"):
                self._call("flush", lambda: [self._client.flush(n) for n in (self.collection, self.meta_collection)])
        finally:
            client, self._client = self._client, None
            client.close()
            if self.kind == "lite":
                _lite_manager().release_server(self.address)

    def __enter__(self) -> "MilvusIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MilvusIndex({self.uri!r}, bits={self.bits}, ntotal={self._ntotal}, mode={self.mode!r})"
