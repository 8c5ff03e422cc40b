"""Using a finished run: load its model and data, checked against what it was trained on
(:func:`load_run`), and search it: :class:`Searcher` loads a run once and answers many queries
(``crossmodal serve`` keeps one per served run), :func:`query_run` answers one (``crossmodal
query``), and :func:`describe_hits` is the one description of a hit (id, distance, labels, caption)
that both print or send.

Nothing here writes: the run folder is only read. Queries are embedded with the run's stored
featurizers (``model/featurizers.json``, read through the allow-list), coded by the run's hasher
and searched in the run's own index files (``index-image.npz`` / ``index-text.npz``, checked
against the model's identity), or in an index opened elsewhere and handed to :meth:`Searcher.attach`.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossmodal.errors import CrossmodalError, DataError
from crossmodal.retrieval.index import HammingIndex
from crossmodal.retrieval.labels import relevance
from crossmodal.runs.folder import model_identity
from crossmodal.runs.spec import RunSpec
from crossmodal.stored import read_json

MODALITIES = ("image", "text")
QUERY_PARTS = ("query", "database")

def load_run(run_dir: str | os.PathLike, data_root: str | os.PathLike | None = None):
    """``(spec, hasher, dataset)`` of a finished run folder (``spec``: its :class:`RunSpec`);
    refuses data whose split hash or content fingerprint differs from the one recorded at
    training time. ``data_root`` points at a moved copy of the data: the dataset file / folder
    itself for a path dataset, else the source's folder (checked by the same split hash and
    fingerprint)."""
    from crossmodal.data import get_dataset
    from crossmodal.data import data_fingerprint
    from crossmodal.methods import load_hasher

    run_dir = Path(run_dir)
    spec = RunSpec.read(run_dir)
    if not (run_dir / "model" / "hasher.json").is_file():
        raise CrossmodalError(f"{run_dir}: the run has no trained model yet (unfinished?); resume it with "
                              f"`crossmodal train --resume {run_dir}`")
    hasher = load_hasher(run_dir / "model")
    d = spec.dataset
    name, root = d["name"], d.get("root")
    if data_root is not None:
        if d.get("kind") == "path" or (d.get("kind") is None and Path(name).is_absolute()):
            name = str(data_root)
        else:
            root = str(data_root)
    elif d.get("kind") == "path" and not Path(name).exists():
        raise DataError(f"{run_dir}: the run's data {name} is gone; point --data-root at its new place")
    ds = get_dataset(name, root=root, seed=spec.seed, **d.get("params", {}))
    ds.name = d.get("display_name") or ds.name  # a moved copy keeps the name its tables use
    if ds.split.hash != spec.split_hash:
        raise DataError(f"{run_dir}: the dataset's split hash is {ds.split.hash}, the run used {spec.split_hash}; "
                        "the data changed")
    if spec.data_fingerprint:
        got = data_fingerprint(ds.data)
        if got != spec.data_fingerprint:
            raise DataError(f"{run_dir}: the dataset's features, labels or ids changed since training (fingerprint "
                            f"{got}, the run recorded {spec.data_fingerprint}); use the data it was trained on, "
                            "or train again")
    return spec, hasher, ds





def check_k(k) -> None:
    """A whole number ``k`` >= 1, or a one-line error."""
    if isinstance(k, bool) or int(k) != k or k <= 0:
        raise CrossmodalError(f"k must be a positive whole number, got {k!r}")


def check_query(text, image, k) -> None:
    """One of ``text`` / ``image`` and a whole ``k`` >= 1, or a one-line error."""
    if (text is None) == (image is None):
        raise CrossmodalError("query: give exactly one of --text or --image")
    check_k(k)


@dataclass
class Hit:
    """One search result: the item ``id`` as ``crossmodal query`` prints it, ``index`` (the id the
    index returned: the position in the run's database part, or a row of another collection),
    ``row`` (the dataset row; None outside the run's database), the Hamming ``distance``, the
    item's label names and its caption (None where the dataset keeps none)."""

    id: str
    index: int
    distance: int
    row: int | None = None
    labels: tuple = ()
    caption: str | None = None

    def description(self) -> str:
        """What ``crossmodal query`` prints after the id: the caption, else the labels."""
        return self.caption if self.caption is not None else ", ".join(self.labels)


def item_labels(ds, row: int) -> tuple:
    """Label names of dataset row ``row`` (label numbers where the dataset names none)."""
    labels = ds.data.labels
    if labels is None:
        return ()
    names = ds.data.meta.get("label_names")
    return tuple(names[j] if names else str(j) for j in np.asarray(labels[row]).nonzero()[0])


def item_caption(ds, row: int) -> str | None:
    caps = ds.extras.get("captions")
    return None if caps is None else str(caps[row])


def describe_hits(ds, D: np.ndarray, I: np.ndarray, database: bool = True) -> list[Hit]:
    """The hits of one query, ``D (k,) int32`` / ``I (k,) int64`` from an index search, in their
    order, padding (``I = -1``) left out. ``database``: the ids are positions in the dataset's
    database part (the run's own index); else ids of another collection, described by number."""
    hits = []
    for d, i in zip(D, I):
        if i < 0:
            continue
        if not database:
            hits.append(Hit(id=str(int(i)), index=int(i), distance=int(d)))
            continue
        row = int(ds.split.database[i])
        hits.append(Hit(id=str(ds.data.ids[row]), index=int(i), distance=int(d), row=row,
                        labels=item_labels(ds, row), caption=item_caption(ds, row)))
    return hits


class Searcher:
    """A finished run (its spec, hasher, dataset) loaded once; thread-safe for queries.

    ``search(text=... | image=PATH, k, target)`` is what ``crossmodal query`` runs; a dataset item
    is searched with :meth:`search_item`. Featurizers and indexes load on first use (or all at
    once with :meth:`load_all`); a model hub is reached only with ``allow_download``.
    """

    def __init__(self, run_dir: str | os.PathLike, data_root: str | os.PathLike | None = None,
                 allow_download: bool = False):
        self.run_dir = Path(run_dir)
        self.spec, self.hasher, self.ds = load_run(self.run_dir, data_root=data_root)
        self.allow_download = bool(allow_download)
        self.featurizers_file = self.run_dir / "model" / "featurizers.json"
        self.stored_featurizers = read_json(self.featurizers_file, default={})
        self.identity = model_identity(self.run_dir / "model")
        self._featurizers: dict = {}
        self._indexes: dict = {}  # target modality -> (index, ids are database positions, where)
        self._item_rows: dict = {}
        self._lock = threading.Lock()

    # -- what the run can do --------------------------------------------------------------
    @property
    def modalities(self) -> tuple:
        """The modalities the hasher codes (the indexes it can search)."""
        return tuple(self.hasher.modalities)

    @property
    def queryable(self) -> tuple:
        """The modalities a new query can come in: coded by the hasher, with a stored featurizer."""
        return tuple(m for m in self.modalities if m in self.stored_featurizers)

    def default_target(self, source: str) -> str:
        """The modality a ``source`` query searches by default: the other one when the run codes it."""
        other = "image" if source == "text" else "text"
        return other if other in self.modalities else source

    def load_all(self) -> "Searcher":
        """Build every stored featurizer and load every index now (refuse a run early)."""
        for m in self.queryable:
            self.featurizer(m)
        for m in self.modalities:
            self.index(m)
        return self

    # -- featurizers and indexes ----------------------------------------------------------
    def featurizer(self, modality: str):
        """The run's stored featurizer of ``modality`` (built once)."""
        from crossmodal.features import featurizer_from_dict

        with self._lock:
            if modality not in self._featurizers:
                if modality not in self.stored_featurizers:
                    raise CrossmodalError(
                        f"{self.run_dir}: dataset {self.ds.name!r} ships precomputed {modality} features only, so a "
                        f"new {modality} cannot be embedded; train on a dataset prepared with featurizers (e.g. toy)")
                self._featurizers[modality] = featurizer_from_dict(
                    self.stored_featurizers[modality], where=f"{self.featurizers_file}: {modality}",
                    allow_download=self.allow_download)
            return self._featurizers[modality]

    def index(self, target: str):
        """The index searched for ``target`` items: one attached, else the run's own file."""
        with self._lock:
            if target not in self._indexes:
                self._indexes[target] = (self._load_own_index(target), True, "run")
            return self._indexes[target][0]

    def index_source(self, target: str) -> str:
        """``"run"`` (the run's own index file) or where an attached index came from."""
        self.index(target)
        return self._indexes[target][2]

    def _load_own_index(self, target: str):
        index_file = self.run_dir / f"index-{target}.npz"
        index = HammingIndex.load(index_file, expect={"model": self.identity, "modality": target})
        if not index.meta:
            print(f"crossmodal: warning: {index_file} records no model identity (an older crossmodal wrote it); it "
                  "cannot be checked against this run's model", file=sys.stderr)
        self._check_database_size(index, index_file)
        return index

    def _check_database_size(self, index, where) -> None:
        n = len(self.ds.split.database)
        if index.ntotal != n:
            raise DataError(f"{where}: {index.ntotal} codes but the database has {n} items; "
                            "the index belongs to another run")

    def attach(self, index, where: str) -> str:
        """Search ``index`` (an object with ``search``, ``ntotal``, ``bits``, ``meta``) for the
        modality its ``meta`` names, instead of the run's own file. Its ``meta["model"]`` must be
        this run's model identity. With this run's ``split_hash`` its ids are database positions
        (the sizes must agree); without one it is another collection, whose hits are ids only.
        Returns the modality."""
        meta = index.meta if isinstance(getattr(index, "meta", None), dict) else {}
        if meta.get("model") != self.identity:
            raise DataError(f"{where}: the index was built for model {meta.get('model')!r}, not this run's "
                            f"{self.identity!r}; export this run's codes into it")
        target = meta.get("modality")
        if target not in self.modalities:
            raise DataError(f"{where}: the index records modality {target!r}; this run codes "
                            f"{', '.join(self.modalities)}")
        if index.bits != self.hasher.bits:
            raise DataError(f"{where}: {index.bits}-bit codes, the run's model makes {self.hasher.bits}-bit codes")
        split = meta.get("split_hash")
        if split is not None and split != self.spec.split_hash:
            raise DataError(f"{where}: built on split {split}, the run uses {self.spec.split_hash}")
        if split is not None:
            self._check_database_size(index, where)
        with self._lock:
            self._indexes[target] = (index, split is not None, where)
        return target

    def covers_database(self, target: str) -> bool:
        """Whether the ids of ``target``'s index are positions in the dataset's database part."""
        self.index(target)
        return self._indexes[target][1]

    # -- queries ------------------------------------------------------------------------
    def embed(self, modality: str, value) -> np.ndarray:
        """A sentence (text) or an image file path (image) as a ``(1, D)`` feature row."""
        from crossmodal.features import embed_query

        return embed_query(self.featurizer(modality), value)

    def search_codes(self, codes: np.ndarray, target: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(D (k,) int32, I (k,) int64)`` of one query's codes ``(1, ceil(bits/8)) uint8``."""
        D, I = self.index(target).search(codes, k)
        return D[0], I[0]

    def search(self, text: str | None = None, image=None, k: int = 10,
               target: str | None = None) -> tuple[str, np.ndarray, np.ndarray]:
        """Embed a sentence or an image file with the run's featurizer, code it and search the
        ``target`` modality (default: the other one). Returns ``(target, D (k,), I (k,))``."""
        check_query(text, image, k)
        modality = "text" if text is not None else "image"
        x = self.embed(modality, text if modality == "text" else image)
        codes = self.hasher.encode(modality, x)
        target = target or ("image" if modality == "text" else "text")
        return (target, *self.search_codes(codes, target, k))

    def item_row(self, part: str, item_id: str) -> int:
        """The dataset row of the item with id ``item_id`` in split part ``part`` (query |
        database; the first such item where ids repeat)."""
        if part not in QUERY_PARTS:
            raise DataError(f"part must be one of {', '.join(QUERY_PARTS)}, got {part!r}")
        with self._lock:
            if part not in self._item_rows:
                rows = getattr(self.ds.split, part)
                ids = self.ds.data.ids[rows]
                table = {}
                for r, i in zip(rows.tolist(), ids.tolist()):
                    table.setdefault(i, r)
                self._item_rows[part] = table
        row = self._item_rows[part].get(item_id)
        if row is None:
            raise DataError(f"no {part} item with id {item_id!r} in {self.ds.name}")
        return row

    def item_features(self, modality: str, row: int) -> np.ndarray:
        """The stored ``(1, D) float32`` features of dataset row ``row`` in ``modality``."""
        data = self.ds.data
        if modality == "text":
            return data.text_dense(np.array([row]))
        return np.asarray(data.image[[row]], dtype=np.float32)

    def search_item(self, part: str, item_id: str, modality: str, k: int,
                    target: str | None = None) -> tuple[str, np.ndarray, np.ndarray, int]:
        """Search with a dataset item's stored ``modality`` features. Returns ``(target, D, I, row)``."""
        if modality not in self.modalities:
            raise DataError(f"modality must be one this run codes ({', '.join(self.modalities)}), got {modality!r}")
        check_k(k)
        row = self.item_row(part, item_id)
        codes = self.hasher.encode(modality, self.item_features(modality, row))
        target = target or self.default_target(modality)
        return (target, *self.search_codes(codes, target, k), row)

    def hits(self, target: str, D: np.ndarray, I: np.ndarray) -> list[Hit]:
        """:func:`describe_hits` of a search of ``target``'s index."""
        return describe_hits(self.ds, D, I, database=self.covers_database(target))

    def relevance(self, row: int, hits: list[Hit]) -> tuple[list[bool], float] | None:
        """Relevance marks (shares a label with dataset row ``row``) of ``hits`` and their precision
        (relevant hits over ``min(k, database size)``, as the report's P@k); None without labels."""
        labels = self.ds.data.labels
        rows = [h.row for h in hits]
        if labels is None or any(r is None for r in rows):
            return None
        if not rows:
            return [], 0.0
        marks = relevance(np.asarray(labels[[row]]), np.asarray(labels[rows]))[0]
        return marks.tolist(), float(marks.sum()) / len(rows)


def query_run(run_dir: str | os.PathLike, text: str | None = None, image: str | None = None, k: int = 10,
              target: str | None = None, allow_download: bool = False,
              data_root: str | os.PathLike | None = None):
    """Embed a typed sentence or an image file with the run's featurizers and search the
    other modality of the database. Returns ``(modality searched, D, I, dataset)``.

    The stored featurizer settings are read through an allow-list; a model hub is reached only
    with ``allow_download`` (``--allow-download`` on this command line)."""
    check_query(text, image, k)
    searcher = Searcher(run_dir, data_root=data_root, allow_download=allow_download)
    target, D, I = searcher.search(text=text, image=image, k=k, target=target)
    return target, D, I, searcher.ds
