"""The search service behind the HTTP API: several runs, each loaded once as a
:class:`~crossmodal.runs.Searcher` (the same object ``crossmodal query`` searches with, so hits
come out in the order it prints), answering searches, run descriptions and item lookups as
plain dicts. Nothing here knows HTTP; every refusal is a one-line ``CrossmodalError``."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from urllib.parse import quote

from crossmodal.errors import CrossmodalError, DataError, did_you_mean
from crossmodal.retrieval.evaluate import DIRECTIONS
from crossmodal.runs import Searcher
from crossmodal.runs.query import item_caption, item_labels
from crossmodal.serve.items import has_pixels, pixels_of, png_thumbnail
from crossmodal.serve.models import SearchRequest
from crossmodal.stored import read_json

THUMBNAILS_CACHED = 4096


class NotFound(DataError):
    """A run, item or picture the request names does not exist (HTTP 404)."""


def run_names(run_dirs) -> list[str]:
    """A short unique name per run folder: its folder name, ``-2``, ``-3`` ... after repeats."""
    names: list[str] = []
    for d in run_dirs:
        base = Path(d).resolve().name or "run"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


class SearchService:
    """Named :class:`Searcher` objects (the first is the default run) and what the API answers."""

    def __init__(self, searchers: dict[str, Searcher], threads: int | None = None):
        if not searchers:
            raise CrossmodalError("serve: give at least one run folder")
        self.searchers = dict(searchers)
        self.threads = threads
        self._thumbs: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closers: list = []

    @classmethod
    def open(cls, run_dirs, data_root: str | os.PathLike | None = None, index_uris=(),
             threads: int | None = None) -> "SearchService":
        """Load every run once (featurizers and indexes too: a featurizer that cannot load
        offline is refused now), then attach the indexes at ``index_uris`` (opened with
        :func:`crossmodal.retrieval.backends.open_index`) to the runs whose model made them."""
        run_dirs = list(run_dirs)
        searchers = {n: Searcher(d, data_root=data_root) for n, d in zip(run_names(run_dirs), run_dirs)}
        service = cls(searchers, threads=threads)
        try:
            for uri in index_uris:
                service.attach_uri(uri)
            for s in searchers.values():
                s.load_all()
        except BaseException:
            service.close()
            raise
        return service

    def attach_uri(self, uri: str) -> list[str]:
        """Open the index at ``uri`` read-only and search it for every served run whose model
        made its codes (``meta["model"]``); returns those runs' names."""
        from crossmodal.retrieval.backends import open_index

        index = open_index(uri, mode="r")
        self._closers.append(index)
        model = (index.meta or {}).get("model")
        names = [n for n, s in self.searchers.items() if s.identity == model]
        if not names:
            raise DataError(f"--index {uri}: its codes come from model {model!r}, which no served run has")
        for n in names:
            self.searchers[n].attach(index, where=uri)
        return names

    def close(self) -> None:
        """Close the indexes opened by :meth:`attach_uri`."""
        for index in self._closers:
            index.close()
        self._closers = []

    # -- runs -----------------------------------------------------------------------------
    def searcher(self, run: str | None) -> tuple[str, Searcher]:
        """``(name, searcher)`` of the served run ``run`` (None: the first)."""
        if run is None:
            return next(iter(self.searchers.items()))
        if run not in self.searchers:
            raise NotFound(f"no served run {run!r} (served: {', '.join(self.searchers)})"
                           f"{did_you_mean(run, self.searchers)}")
        return run, self.searchers[run]

    def runs(self) -> list[dict]:
        """What ``GET /api/runs`` lists: each run's method, bits, dataset, conventions and mAP."""
        return [self.describe_run(name, s) for name, s in self.searchers.items()]

    @staticmethod
    def describe_run(name: str, s: Searcher) -> dict:
        report = read_json(s.run_dir / "report.json", default={})
        meta = report.get("meta") if isinstance(report.get("meta"), dict) else {}
        results = report.get("results") if isinstance(report.get("results"), dict) else {}
        mean_ap = {d: r.get("mAP@all") for d, r in results.items() if isinstance(r, dict)}
        directions = [d for d, (q, t) in DIRECTIONS.items() if q in s.queryable and t in s.modalities]
        return {
            "name": name, "method": s.spec.method, "label": s.spec.label, "bits": int(s.hasher.bits),
            "seed": int(s.spec.seed), "dataset": s.ds.name, "n_query": int(len(s.ds.split.query)),
            "n_database": int(len(s.ds.split.database)), "modalities": list(s.modalities),
            "queryable": list(s.queryable), "directions": directions, "pixels": has_pixels(s),
            "index": {m: s.index_source(m).split(":")[0] for m in s.modalities},
            "database_codes": meta.get("database_codes"), "mAP": mean_ap,
            "conventions": report.get("conventions") if isinstance(report.get("conventions"), dict) else {},
        }

    # -- searches ------------------------------------------------------------------------
    def pin_threads(self) -> None:
        """FAISS' OpenMP thread count for the calling thread (a request runs in a worker thread,
        which OpenMP gives the process default, every core, not the count set in the main thread)."""
        if self.threads is None or getattr(self._local, "threads", None) == self.threads:
            return
        import faiss

        faiss.omp_set_num_threads(self.threads)
        self._local.threads = self.threads

    def search(self, req: SearchRequest, image=None) -> dict:
        """Answer one search: ``req.text``, ``req.item`` or ``image`` (a file path, from an upload).
        Returns ``{"run", "query", "hits"}`` with the hits in ``crossmodal query``'s order."""
        self.pin_threads()
        name, s = self.searcher(req.run)
        kind = "image" if image is not None else "text" if req.text is not None else "item"
        source, target = self.direction(s, req, kind)
        query = {"kind": kind, "modality": source, "k": req.k}
        row = None
        if kind == "item":
            self.row(s, req.part, req.item)  # an unknown item is a 404
            target, D, I, row = s.search_item(req.part, req.item, source, req.k, target=target)
            query.update(item=req.item, part=req.part, labels=list(item_labels(s.ds, row)))
        else:
            target, D, I = s.search(text=req.text, image=image, k=req.k, target=target)
            if kind == "text":
                query["text"] = req.text
        hits = s.hits(target, D, I)
        out = [self.hit_json(name, s, target, h) for h in hits]
        marks = s.relevance(row, hits) if row is not None else None
        if marks is not None:
            for h, relevant in zip(out, marks[0]):
                h["relevant"] = bool(relevant)
            query["precision"] = marks[1]
        query.update(target=target, direction=f"{source[0]}2{target[0]}")
        return {"run": name, "query": query, "hits": out}

    @staticmethod
    def direction(s: Searcher, req: SearchRequest, kind: str) -> tuple[str, str | None]:
        """``(query modality, searched modality or None for the run's default)`` of a request."""
        given = DIRECTIONS.get(req.direction) if req.direction else None
        if kind in ("text", "image"):
            source = kind
        elif req.modality is not None:
            source = req.modality
        elif given is not None:
            source = given[0]
        elif len(s.modalities) == 1:
            source = s.modalities[0]
        else:
            raise DataError("an item query needs its modality (image or text): which of its features to search with")
        if given is not None and given[0] != source:
            raise DataError(f"direction {req.direction} starts from {given[0]}, but the query is {source}")
        target = given[1] if given is not None else s.default_target(source)
        if target not in s.modalities:
            raise DataError(f"this run codes {', '.join(s.modalities)} only; it cannot search {target}")
        return source, target

    @staticmethod
    def hit_json(name: str, s: Searcher, target: str, hit) -> dict:
        out = {"id": hit.id, "index": hit.index, "distance": hit.distance, "labels": list(hit.labels)}
        if hit.row is None:
            return out
        if target == "text":
            out["text"] = hit.caption if hit.caption is not None else ", ".join(hit.labels)
        elif has_pixels(s):
            out["image_url"] = f"/api/items/database/{quote(hit.id, safe='')}?run={quote(name, safe='')}"
        return out

    # -- items ---------------------------------------------------------------------------
    def item(self, run: str | None, part: str, item_id: str, modality: str | None = None) -> dict | bytes:
        """A dataset item: PNG bytes of its picture (image modality, where the dataset keeps
        pixels), else ``{"id", "part", "text", "labels"}``."""
        name, s = self.searcher(run)
        row = self.row(s, part, item_id)
        if modality in (None, "image") and has_pixels(s):
            return self.thumbnail(name, s, row)
        if modality == "image":
            raise NotFound(f"dataset {s.ds.name!r} keeps no pixels: no picture of item {item_id!r}")
        caption = item_caption(s.ds, row)
        labels = list(item_labels(s.ds, row))
        return {"id": item_id, "part": part, "text": caption if caption is not None else ", ".join(labels),
                "labels": labels}

    @staticmethod
    def row(s: Searcher, part: str, item_id: str) -> int:
        """The dataset row of an item; an unknown id is :class:`NotFound`."""
        try:
            return s.item_row(part, item_id)
        except DataError as exc:
            raise NotFound(str(exc)) from None

    def thumbnail(self, name: str, s: Searcher, row: int) -> bytes:
        key = (name, row)
        with self._lock:
            if key in self._thumbs:
                self._thumbs.move_to_end(key)
                return self._thumbs[key]
        png = png_thumbnail(pixels_of(s, row))
        with self._lock:
            self._thumbs[key] = png
            while len(self._thumbs) > THUMBNAILS_CACHED:
                self._thumbs.popitem(last=False)
        return png
