"""Core data types: :class:`PairedData`, :class:`Split`, and the canonical dataset folder.

A canonical dataset folder holds::

    image.npy      (N, Di) float32 image features
    text.npy       (N, Dt) float32 text features   -- or text.npz, a CSR matrix
    labels.npy     (N, C)  uint8 multi-hot labels  (optional)
    ids.txt        N lines, one id each
    split.json     named index arrays train / validation / query / database, seed, hash
    meta.json      source, feature extractors, format version, extras

Everything is plain NumPy / JSON: memory-mappable, diffable, no pickle. Extra arrays a
source needs (the toy set's rendered pixels) are kept as ``extra_<name>.npy``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from crossmodal.errors import DataError

FORMAT_VERSION = 1
SPLIT_PARTS = ("train", "validation", "query", "database")


def as_2d_float(name: str, x: Any) -> np.ndarray | sp.csr_matrix:
    """Validate a feature matrix: 2-D, numeric, finite; returns float32 (dense or CSR)."""
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float32)
        values = x.data
        shape = x.shape
    else:
        if isinstance(x, np.memmap) or (isinstance(x, np.ndarray) and x.dtype == np.float32):
            arr = x
        else:
            try:
                arr = np.asarray(x, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise DataError(f"{name}: could not be read as numbers ({exc}); give a numeric array") from None
        if arr.ndim != 2:
            raise DataError(
                f"{name}: expected a 2-D array (items x features), got {arr.ndim}-D shape {arr.shape}; "
                "reshape it, e.g. x.reshape(1, -1) for a single item"
            )
        x = arr
        values = arr
        shape = arr.shape
    if shape[0] == 0 or shape[1] == 0:
        raise DataError(f"{name}: empty array of shape {shape}; it needs at least one item and one feature")
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(np.size(finite) - np.count_nonzero(finite))
        where = ""
        if not sp.issparse(x):
            row = int(np.argwhere(~np.isfinite(x))[0, 0])
            where = f" (first in row {row})"
        raise DataError(f"{name}: {bad} NaN or infinite value(s){where}; clean or impute them before use")
    return x


def _as_labels(labels: Any, n: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise DataError(
            f"labels: expected a 2-D multi-hot array (items x classes), got shape {lab.shape}; "
            "convert class numbers with crossmodal.data.labels_from_classes"
        )
    if lab.shape[0] != n:
        raise DataError(f"labels: {lab.shape[0]} rows but the features have {n}; every item needs one label row")
    if lab.size and not np.isin(lab, (0, 1)).all():
        raise DataError("labels: values must be 0 or 1 (multi-hot); convert class numbers with labels_from_classes")
    return lab.astype(np.uint8, copy=False)


def labels_from_classes(classes: Any, n_classes: int | None = None) -> np.ndarray:
    """One-hot ``(N, C)`` uint8 labels from class numbers ``(N,)``.

    Class values are mapped in sorted order to columns, so 1..10 and 0..9 both give 10
    columns. ``n_classes`` forces the number of columns (values must then be 0..C-1 or 1..C).
    """
    c = np.asarray(classes).reshape(-1)
    if c.size == 0:
        raise DataError("labels: no class numbers given")
    if not np.issubdtype(c.dtype, np.number) or not np.all(np.equal(np.mod(c, 1), 0)):
        raise DataError("labels: class numbers must be integers")
    c = c.astype(np.int64)
    if n_classes is None:
        values, inverse = np.unique(c, return_inverse=True)
        n_classes = len(values)
    else:
        offset = 1 if c.min() >= 1 and c.max() == n_classes else 0
        inverse = c - offset
        if inverse.min() < 0 or inverse.max() >= n_classes:
            raise DataError(f"labels: class numbers {c.min()}..{c.max()} do not fit {n_classes} classes")
    out = np.zeros((c.size, n_classes), dtype=np.uint8)
    out[np.arange(c.size), inverse] = 1
    return out


@dataclass
class PairedData:
    """Image and text features of N paired items, with optional multi-hot labels.

    Parameters
    ----------
    image : array of shape (N, Di), float32 (converted) -- image features.
    text : array or CSR matrix of shape (N, Dt), or None for image-only data.
    labels : array of shape (N, C) with 0/1 values, or None (unlabelled).
    ids : N strings; defaults to "0".."N-1".
    meta : free-form provenance: source, feature extractors, version.

    Validated on construction: 2-D, equal N, finite values; a :class:`DataError` names the
    field and the fix.
    """

    image: np.ndarray
    text: np.ndarray | sp.csr_matrix | None = None
    labels: np.ndarray | None = None
    ids: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image = as_2d_float("image features", self.image)
        if sp.issparse(self.image):
            self.image = np.asarray(self.image.todense(), dtype=np.float32)
        n = self.image.shape[0]
        if self.text is not None:
            self.text = as_2d_float("text features", self.text)
            if self.text.shape[0] != n:
                raise DataError(
                    f"text features have {self.text.shape[0]} rows but image features have {n}; "
                    "rows must be paired one to one"
                )
        if self.labels is not None:
            self.labels = _as_labels(self.labels, n)
        if self.ids is None:
            self.ids = np.array([str(i) for i in range(n)])
        else:
            self.ids = np.asarray(self.ids).astype(str)
            if self.ids.shape != (n,):
                raise DataError(f"ids: {self.ids.shape[0] if self.ids.ndim else 0} ids for {n} items; give one id per item")
        self.meta = dict(self.meta)

    @property
    def n(self) -> int:
        return int(self.image.shape[0])

    @property
    def image_dim(self) -> int:
        return int(self.image.shape[1])

    @property
    def text_dim(self) -> int:
        return 0 if self.text is None else int(self.text.shape[1])

    def text_dense(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Text features as a dense float32 array (rows ``idx`` if given)."""
        if self.text is None:
            raise DataError("this dataset has no text modality")
        t = self.text if idx is None else self.text[idx]
        return np.asarray(t.todense() if sp.issparse(t) else t, dtype=np.float32)

    def subset(self, idx: np.ndarray) -> "PairedData":
        """Rows ``idx`` as a new PairedData (arrays are copied into memory)."""
        idx = np.asarray(idx, dtype=np.int64)
        return PairedData(
            image=np.ascontiguousarray(self.image[idx]),
            text=None if self.text is None else self.text[idx],
            labels=None if self.labels is None else np.asarray(self.labels[idx]),
            ids=self.ids[idx],
            meta=self.meta,
        )

    def modality(self, name: str) -> np.ndarray:
        """Dense features of one modality, ``"image"`` or ``"text"``."""
        if name == "image":
            return np.asarray(self.image)
        if name == "text":
            return self.text_dense()
        raise DataError(f"unknown modality {name!r}; use 'image' or 'text'")


@dataclass
class Split:
    """Index arrays of a protocol: ``train``, ``validation``, ``query``, ``database``.

    Rules (checked): indices lie in [0, N); ``query`` shares no item with ``train``,
    ``validation`` or ``database`` (the query set is never used for training or model
    selection); ``validation`` is carved from the training side and shares no item with
    ``train``, so model selection measures generalisation to unseen items. (A model that
    memorises its training items otherwise looks far better on validation than on queries:
    on Wikipedia, 0.40 vs 0.21 I->T mAP.) During model selection validation items are searched
    against ``train``.
    """

    train: np.ndarray
    validation: np.ndarray
    query: np.ndarray
    database: np.ndarray
    seed: int = 0
    protocol: str = "custom"

    def __post_init__(self) -> None:
        for part in SPLIT_PARTS:
            try:
                raw = np.asarray(getattr(self, part))
            except (TypeError, ValueError):
                raw = np.asarray([None])
            if raw.size and raw.dtype.kind not in "iu":
                raise DataError(f"split: {part} holds non-integer indices (dtype {raw.dtype}); indices must be "
                                "whole numbers in [0, N)")
            arr = raw.astype(np.int64).reshape(-1)
            if len(np.unique(arr)) != len(arr):
                raise DataError(f"split: {part} lists {len(arr) - len(np.unique(arr))} index(es) twice; "
                                "each item may appear once per part")
            setattr(self, part, arr)
        if len(self.train) == 0 or len(self.query) == 0 or len(self.database) == 0:
            raise DataError("split: train, query and database must each hold at least one item")
        q = set(self.query.tolist())
        for part in ("train", "validation", "database"):
            if q.intersection(getattr(self, part).tolist()):
                raise DataError(f"split: query and {part} share items; the query set must stay unseen")
        if set(self.validation.tolist()).intersection(self.train.tolist()):
            raise DataError("split: validation and train share items; carve validation out of the training side")

    def check(self, n: int) -> "Split":
        for part in SPLIT_PARTS:
            arr = getattr(self, part)
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise DataError(f"split: {part} has indices outside [0, {n}); the split belongs to another dataset")
        return self

    @property
    def hash(self) -> str:
        """Content hash of the four index arrays (12 hex digits)."""
        h = hashlib.sha256()
        for part in SPLIT_PARTS:
            h.update(part.encode())
            h.update(np.ascontiguousarray(getattr(self, part), dtype="<i8").tobytes())
        return h.hexdigest()[:12]

    def validation_database(self) -> np.ndarray:
        """Database for model selection: the training items."""
        return self.train

    def to_dict(self) -> dict:
        d = {part: getattr(self, part).tolist() for part in SPLIT_PARTS}
        d.update(seed=self.seed, protocol=self.protocol, hash=self.hash)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Split":
        if not isinstance(d, dict):
            raise DataError(f"split.json: expected an object with {', '.join(SPLIT_PARTS)}, got {type(d).__name__}")
        try:
            split = cls(**{p: d[p] for p in SPLIT_PARTS}, seed=int(d.get("seed", 0)), protocol=str(d.get("protocol", "custom")))
        except KeyError as exc:
            raise DataError(f"split.json: missing part {exc}; it needs {', '.join(SPLIT_PARTS)}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise DataError(f"split.json: {exc}") from None
            raise DataError(f"split.json: invalid content ({exc})") from None
        if "hash" in d and d["hash"] != split.hash:
            raise DataError(f"split.json: content hash {d['hash']} does not match the indices ({split.hash}); the file was edited")
        return split

    @classmethod
    def random(
        cls,
        n: int,
        n_query: int,
        n_train: int | None = None,
        n_validation: int = 0,
        seed: int = 0,
        protocol: str = "random",
    ) -> "Split":
        """Seeded random split: ``n_query`` queries, database = the rest; ``n_validation``
        database items held out for model selection and ``n_train`` training items drawn
        from the other database items (all of them when None)."""
        if n_query <= 0 or n_query >= n:
            raise DataError(f"split: n_query must be in 1..{n - 1}, got {n_query}")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n)
        query, database = np.sort(perm[:n_query]), np.sort(perm[n_query:])
        if not 0 <= n_validation < len(database):
            raise DataError(f"split: n_validation must be in 0..{len(database) - 1}, got {n_validation}")
        validation = np.sort(rng.choice(database, size=n_validation, replace=False))
        rest = np.setdiff1d(database, validation)
        n_train = len(rest) if n_train is None else n_train
        if not 0 < n_train <= len(rest):
            raise DataError(f"split: n_train must be in 1..{len(rest)}, got {n_train}")
        train = np.sort(rng.choice(rest, size=n_train, replace=False))
        return cls(train, validation, query, database, seed=seed, protocol=protocol)


def carve_validation(side, seed: int, fraction: float | None = None, count: int | None = None):
    """``(train, validation)`` index arrays: ``count`` items (or ``fraction`` of them, rounded) of
    ``side`` drawn with ``seed`` for validation, the rest for training. ``side``: (N,) int."""
    side = np.sort(np.asarray(side, dtype=np.int64))
    if count is None:
        try:
            fraction = float(fraction)
        except (TypeError, ValueError):
            raise DataError(f"validation_fraction must be a number in [0, 1), got {fraction!r}") from None
        if not 0.0 <= fraction < 1.0:
            raise DataError(f"validation_fraction must be in [0, 1), got {fraction:g}; 0 trains on every training pair")
        count = int(round(fraction * len(side)))
    if int(count) != count or not 0 <= count < len(side):
        raise DataError(f"validation size must be a whole number in 0..{len(side) - 1}, got {count!r}")
    rng = np.random.default_rng(seed)
    validation = np.sort(rng.choice(side, size=int(count), replace=False))
    return np.setdiff1d(side, validation), validation


@dataclass
class Dataset:
    """A :class:`PairedData` with its :class:`Split` and the extras a source ships
    (featurizers to embed new queries, raw pixels for contact sheets)."""

    data: PairedData
    split: Split
    name: str = "custom"
    featurizers: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)
    root: str | None = None  # resolved path the data was read from (recorded in run.json)
    notes: list = field(default_factory=list)  # protocol remarks shown to the user and kept in run.json

    def __post_init__(self) -> None:
        self.split.check(self.data.n)

    def with_validation_fraction(self, fraction: float, seed: int) -> "Dataset":
        """Re-carve ``validation`` as ``fraction`` of the training side (``train`` + ``validation``),
        drawn with ``seed``; the rest trains. ``fraction=0`` trains on every training pair and
        leaves no validation set (model selection is then off, and the report says so)."""
        s = self.split
        side = np.union1d(s.train, s.validation)
        train, validation = carve_validation(side, seed, fraction=fraction)
        self.split = Split(train, validation, s.query, s.database, seed=seed,
                           protocol=f"{s.protocol}+vf{float(fraction):g}")
        self.notes.append(f"validation_fraction={float(fraction):g}: {len(validation)} of the {len(side)} "
                          f"training-side items held out for model selection, {len(train)} train")
        return self

    def part(self, name: str) -> PairedData:
        return self.data.subset(getattr(self.split, name))

    def summary(self) -> dict:
        d = self.data
        return {
            "name": self.name,
            "items": d.n,
            "image_dim": d.image_dim,
            "text_dim": d.text_dim,
            "text_sparse": bool(sp.issparse(d.text)),
            "classes": None if d.labels is None else int(d.labels.shape[1]),
            "split": {p: int(len(getattr(self.split, p))) for p in SPLIT_PARTS},
            "split_protocol": self.split.protocol,
            "split_hash": self.split.hash,
            "source": d.meta.get("source"),
        }


FINGERPRINT_FULL_BYTES = 1 << 30  # arrays up to 1 GiB are hashed whole (about 1 s a GiB here)
FINGERPRINT_SAMPLE_BYTES = 64 << 20  # larger ones: 64 MiB of evenly strided row blocks


def _hash_array(h, name: str, arr: np.ndarray) -> None:
    arr = np.asarray(arr) if not isinstance(arr, np.ndarray) else arr
    h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
    if arr.ndim == 0 or arr.size == 0:
        h.update(np.ascontiguousarray(arr).tobytes())
        return
    rows = arr.shape[0]
    row_bytes = max(1, arr.nbytes // rows)
    block = max(1, (8 << 20) // row_bytes)  # rows per 8 MiB block
    if arr.nbytes <= FINGERPRINT_FULL_BYTES:
        starts = range(0, rows, block)
    else:
        n_blocks = max(2, FINGERPRINT_SAMPLE_BYTES // (block * row_bytes))
        starts = sorted(set(np.linspace(0, rows - block, n_blocks).astype(np.int64).tolist()))
        h.update(b"sampled")
    for s in starts:
        h.update(np.ascontiguousarray(arr[s:s + block]).data)


def data_fingerprint(data: "PairedData") -> str:
    """Content fingerprint of ``data``'s features, labels and ids (``sha256:`` + 16 hex digits).

    Shapes and dtypes always count; every array up to 1 GiB is hashed whole, in 8 MiB row
    blocks read from the memory map; larger arrays by 64 MiB of evenly strided row blocks
    (reordered or edited rows in a sampled block, any change of shape or dtype, are caught).
    Cost: about 0.15 s per 128 MiB (sha256 on one core).
    """
    h = hashlib.sha256()
    _hash_array(h, "image", data.image)
    if data.text is None:
        h.update(b"text:none")
    elif sp.issparse(data.text):
        t = data.text
        h.update(f"text:csr:{t.shape}".encode())
        _hash_array(h, "text.data", np.asarray(t.data, dtype=np.float32))
        _hash_array(h, "text.indices", np.asarray(t.indices, dtype=np.int64))
        _hash_array(h, "text.indptr", np.asarray(t.indptr, dtype=np.int64))
    else:
        _hash_array(h, "text", data.text)
    if data.labels is None:
        h.update(b"labels:none")
    else:
        _hash_array(h, "labels", data.labels)
    h.update("\n".join(map(str, data.ids.tolist())).encode("utf-8", "replace"))
    return "sha256:" + h.hexdigest()[:16]


def check_overwrite(out: str | os.PathLike, overwrite: bool, protect: tuple = ()) -> Path:
    """Refuse to write the dataset folder ``out`` over anything crossmodal did not write.

    ``out`` must not be a file. If it exists and is not empty it is replaced only with
    ``overwrite``, and only when it is a finished crossmodal dataset folder (its ``meta.json``
    has ``format_version``, ``summary`` and ``files``), and never when it holds the working
    directory or one of the paths in ``protect`` (the source data).
    """
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise DataError(f"--out {out}: is a file, not a folder; choose a new folder for the dataset")
    for p in out.parents:
        if p.exists() and not p.is_dir():
            raise DataError(f"--out {out}: {p} is a file, not a folder; choose a new folder for the dataset")
    if not out.exists() or not any(out.iterdir()):
        return out
    if not overwrite:
        raise DataError(f"{out}: folder exists and is not empty; choose another --out or pass --overwrite")
    real = out.resolve()
    guarded = [("the working directory", Path.cwd())] + [(f"the source {p}", Path(p)) for p in protect if p is not None]
    for what, p in guarded:
        q = p.resolve()
        if q == real or real in q.parents:
            raise DataError(f"--overwrite {out}: refusing, the folder holds {what}; choose another --out")
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
        ours = isinstance(meta, dict) and {"format_version", "summary", "files"} <= set(meta)
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise DataError(f"--overwrite {out}: refusing, it is not a dataset folder crossmodal wrote (no crossmodal "
                        "meta.json); --overwrite only replaces those, remove it yourself or choose another --out")
    return out


def _atomic_dir(out: Path, overwrite: bool) -> Path:
    out = check_overwrite(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))


def save_dataset(ds: Dataset, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``ds`` as a canonical dataset folder.

    The folder is written under a temporary name and renamed at the end, so an
    interrupted write never leaves something that looks finished. ``meta.json`` records the
    SHA-256 of every file (checked by ``crossmodal datasets verify``).
    """
    out = Path(out)
    tmp = _atomic_dir(out, overwrite)
    try:
        write_dataset_files(ds, tmp)
        finalize_dataset_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_dataset_files(ds: Dataset, folder: Path, present: tuple[str, ...] = ()) -> None:
    """Every file of the canonical format into ``folder``; arrays named in ``present``
    (``"image.npy"``, ``"text.npy"``) were already written there, chunk by chunk."""
    d = ds.data
    if "image.npy" not in present:
        np.save(folder / "image.npy", np.ascontiguousarray(d.image, dtype=np.float32))
    if d.text is not None and "text.npy" not in present:
        if sp.issparse(d.text):
            sp.save_npz(folder / "text.npz", d.text)
        else:
            np.save(folder / "text.npy", np.ascontiguousarray(d.text, dtype=np.float32))
    if d.labels is not None:
        np.save(folder / "labels.npy", np.ascontiguousarray(d.labels, dtype=np.uint8))
    (folder / "ids.txt").write_text("\n".join(d.ids.tolist()) + "\n", encoding="utf-8")
    (folder / "split.json").write_text(json.dumps(ds.split.to_dict()), encoding="utf-8")
    for key, arr in ds.extras.items():
        np.save(folder / f"extra_{key}.npy", arr)
    meta = {
        "format_version": FORMAT_VERSION,
        "name": ds.name,
        "meta": d.meta,
        "featurizers": {k: f.to_dict() for k, f in ds.featurizers.items()},
        "summary": ds.summary(),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def finalize_dataset_dir(tmp: Path, out: Path, protect: tuple = ()) -> Path:
    """Record file hashes in ``tmp/meta.json`` and move ``tmp`` to ``out`` in one rename.

    An existing ``out`` is replaced only when :func:`check_overwrite` allows it (a dataset
    folder crossmodal wrote, holding neither the source nor the working directory)."""
    meta = json.loads((tmp / "meta.json").read_text(encoding="utf-8"))
    meta["files"] = {f.name: file_sha256(f) for f in sorted(tmp.iterdir()) if f.is_file() and f.name != "meta.json"}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if out.exists() and any(out.iterdir()):
        check_overwrite(out, True, protect)
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        os.replace(out, old)  # out is briefly absent, never half-written
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return out
    if out.exists():
        out.rmdir()
    os.replace(tmp, out)
    return out


def load_dataset(path: str | os.PathLike, mmap: bool = True) -> Dataset:
    """Read a canonical dataset folder (arrays memory-mapped when ``mmap``).

    Every damage gives one :class:`DataError` naming the file: a missing or unreadable file,
    invalid JSON, a truncated ``.npy`` / ``.npz``, an object-dtype array (never unpickled), a
    file ``meta.json`` lists that is gone (``labels.npy``, ``text.npz`` ...), an ``ids.txt``
    with the wrong number of lines, or a ``split.json`` with non-integer or repeated indices.
    """
    import zipfile
    import zlib

    from crossmodal.features import featurizer_from_dict

    path = Path(path)
    if not (path / "meta.json").is_file():
        from crossmodal.data.files import NOT_A_DATASET_HINT

        raise DataError(f"{path}: not a crossmodal dataset folder (no meta.json); {NOT_A_DATASET_HINT}")
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise DataError(f"{path / 'meta.json'}: invalid JSON ({exc}); the folder is damaged") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path / 'meta.json'}: expected a JSON object; the folder is damaged")
    version = meta.get("format_version", 0)
    if not isinstance(version, int):
        raise DataError(f"{path / 'meta.json'}: format_version {version!r} is not a number; the folder is damaged")
    if version > FORMAT_VERSION:
        raise DataError(f"{path}: format version {meta.get('format_version')} is newer than this crossmodal reads ({FORMAT_VERSION}); upgrade crossmodal")
    listed = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    gone = sorted(f for f in listed if not (path / f).is_file())
    if gone:
        raise DataError(f"{path}: {', '.join(gone)} listed in meta.json but missing; the dataset folder is incomplete "
                        "(restore the file or prepare the dataset again)")
    summary = meta.get("summary") if isinstance(meta.get("summary"), dict) else {}
    mode = "r" if mmap else None

    def _npy(name: str, required: bool = True):
        f = path / name
        if not f.is_file():
            if required:
                raise DataError(f"{f}: missing; the dataset folder is incomplete")
            return None
        try:
            arr = np.load(f, mmap_mode=mode, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{f}: unreadable or truncated ({exc})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            raise DataError(f"{f}: holds {getattr(arr, 'dtype', type(arr).__name__)} data, not numbers; the file is damaged")
        return arr

    image = _npy("image.npy")
    text = _npy("text.npy", required=False)
    if text is None and (path / "text.npz").is_file():
        try:
            text = sp.load_npz(path / "text.npz")
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(f"{path / 'text.npz'}: unreadable or truncated ({exc}); prepare the dataset again") from None
    if text is None and summary.get("text_dim"):
        raise DataError(f"{path}: no text.npy or text.npz but meta.json records {summary['text_dim']}-d text features; "
                        "the dataset folder is incomplete")
    labels = _npy("labels.npy", required=False)
    if labels is None and summary.get("classes"):
        raise DataError(f"{path / 'labels.npy'}: missing but meta.json records {summary['classes']} classes; "
                        "the dataset folder is incomplete")
    try:
        ids = (path / "ids.txt").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path / 'ids.txt'}: missing; the dataset folder is incomplete") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path / 'ids.txt'}: unreadable ({exc})") from None
    try:
        data = PairedData(image=image, text=text, labels=labels, ids=np.array(ids), meta=meta.get("meta", {}))
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    try:
        split = Split.from_dict(json.loads((path / "split.json").read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DataError(f"{path / 'split.json'}: missing; the dataset folder is incomplete") from None
    except DataError as exc:
        raise DataError(f"{path}/{exc}") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"{path / 'split.json'}: invalid JSON ({exc}); the folder is damaged") from None
    extras = {f.name[len("extra_"):-len(".npy")]: _npy_any(f, mode) for f in sorted(path.glob("extra_*.npy"))}
    feats = meta.get("featurizers", {})
    if not isinstance(feats, dict):
        raise DataError(f"{path / 'meta.json'}: featurizers must be an object; the folder is damaged")
    featurizers = {k: featurizer_from_dict(v, where=f"{path / 'meta.json'}: featurizers.{k}") for k, v in feats.items()}
    try:
        return Dataset(data=data, split=split, name=str(meta.get("name", path.name)), featurizers=featurizers,
                       extras=extras, root=str(path.resolve()))
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def _npy_any(f: Path, mode) -> np.ndarray:
    """An extra array (strings allowed, never objects)."""
    try:
        return np.load(f, mmap_mode=mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{f}: unreadable or truncated ({exc})") from None
