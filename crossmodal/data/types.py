"""The data types every layer above shares: :class:`PairedData`, :class:`Split`, :class:`Dataset`.

* :class:`PairedData`: image features ``(N, Di) float32``, text features ``(N, Dt) float32``
  (dense or CSR, or None for image-only data), labels ``(N, C) uint8`` multi-hot (or None),
  ids ``(N,) str`` and free-form ``meta``; validated on construction.
* :class:`Split`: the index arrays ``train``, ``validation``, ``query``, ``database`` of a
  protocol, with a content hash; :func:`carve_validation` draws validation from a training side.
* :class:`Dataset`: a PairedData with its Split and what its source ships (featurizers, extras).
* Label helpers: :func:`labels_from_classes` (class numbers -> one-hot), :func:`labels_from_any`
  (class numbers or multi-hot, either orientation).

The folder format that stores them is :mod:`crossmodal.data.folder`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from crossmodal.errors import DataError

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
                raise DataError(f"{name}: could not be read as numbers ({exc}); "
                                "give a numeric array") from None
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
        raise DataError(f"labels: {lab.shape[0]} rows but the features have {n}; "
                        "every item needs one label row")
    if lab.size and not np.isin(lab, (0, 1)).all():
        raise DataError("labels: values must be 0 or 1 (multi-hot); "
                        "convert class numbers with labels_from_classes")
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


def labels_from_any(arr: Any, n: int, key: str) -> np.ndarray | None:
    """``(n, C) uint8`` labels from class numbers ``(n,)`` / ``(n, 1)`` or multi-hot 0/1 ``(n, C)``,
    either orientation (``(C, n)`` is transposed); None stays None. ``key`` names the variable in
    the error."""
    if arr is None:
        return None
    a = np.asarray(arr)
    if a.ndim == 2 and a.shape[0] != n and a.shape[1] == n:
        a = a.T
    if a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1 and not np.isin(a, (0, 1)).all()):
        return labels_from_classes(a.reshape(-1))
    if a.ndim == 2 and a.shape[0] == n and np.isin(a, (0, 1)).all():
        return a.astype(np.uint8)
    raise DataError(f"{key}: labels of shape {a.shape} are neither class numbers nor multi-hot 0/1 for {n} items")


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
                given = self.ids.shape[0] if self.ids.ndim else 0
                raise DataError(f"ids: {given} ids for {n} items; give one id per item")
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
        """``self`` when every index lies in ``[0, n)``, else a :class:`DataError`."""
        for part in SPLIT_PARTS:
            arr = getattr(self, part)
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise DataError(f"split: {part} has indices outside [0, {n}); "
                                "the split belongs to another dataset")
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
        """The ``split.json`` object: the four index lists, seed, protocol and hash."""
        d = {part: getattr(self, part).tolist() for part in SPLIT_PARTS}
        d.update(seed=self.seed, protocol=self.protocol, hash=self.hash)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Split":
        """The split of a ``split.json`` object, checked (a recorded hash must match the indices)."""
        if not isinstance(d, dict):
            raise DataError(f"split.json: expected an object with {', '.join(SPLIT_PARTS)}, "
                            f"got {type(d).__name__}")
        try:
            split = cls(**{p: d[p] for p in SPLIT_PARTS}, seed=int(d.get("seed", 0)),
                        protocol=str(d.get("protocol", "custom")))
        except KeyError as exc:
            raise DataError(f"split.json: missing part {exc}; it needs {', '.join(SPLIT_PARTS)}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise DataError(f"split.json: {exc}") from None
            raise DataError(f"split.json: invalid content ({exc})") from None
        if "hash" in d and d["hash"] != split.hash:
            raise DataError(f"split.json: content hash {d['hash']} does not match the indices "
                            f"({split.hash}); the file was edited")
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
            raise DataError(f"validation_fraction must be in [0, 1), got {fraction:g}; "
                            "0 trains on every training pair")
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
    notes: list = field(default_factory=list)  # protocol remarks shown to the user, kept in run.json

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
        """The rows of split part ``name`` (``"train"``, ``"query"`` ...) as a new PairedData."""
        return self.data.subset(getattr(self.split, name))

    def summary(self) -> dict:
        """Sizes, dimensions, split sizes and hash (the ``summary`` of ``meta.json``)."""
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
