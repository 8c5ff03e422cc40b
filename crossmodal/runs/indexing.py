"""Building a search index from stored codes (``crossmodal index``): the shards of an encode
folder, or the database codes of a finished run, into any backend of
:func:`crossmodal.retrieval.backends.open_index` (a FAISS index file, Milvus).

    crossmodal index db-codes/ --kind ivf                      # -> db-codes/index-ivf.npz
    crossmodal index runs/ugach-wiki-64b-s0 --kind hnsw         # -> RUN/indexes/image-hnsw.npz, text-hnsw.npz
    crossmodal index db-codes/ --to milvus-lite:db.db          # the same codes into Milvus Lite

Ids: an encode folder's ids are the rows of its feature file; a run's are the positions of its
database items (what ``crossmodal query`` returns). The index records the model identity and the
modality (its ``meta``), so whoever searches it can check it against the model that codes the
queries. Every code is checked before anything is written; an existing file is never replaced.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from crossmodal.errors import DataError
from crossmodal.retrieval.backends import open_index
from crossmodal.retrieval.index import HammingIndex
from crossmodal.runs.folder import finished, model_identity
from crossmodal.runs.shards import MANIFEST, EncodedCodes
from crossmodal.runs.spec import RUN_FILE, RunSpec


def run_sources(run: Path, modality: str | None) -> list[dict]:
    """The database codes of a finished run, one source per modality (or only ``modality``)."""
    spec = RunSpec.read(run)
    if not finished(run):
        raise DataError(f"{run}: the run is not finished (no report.json); nothing to index yet")
    have = [m for m in ("image", "text") if (run / f"index-{m}.npz").is_file()]
    if modality is not None and modality not in have:
        raise DataError(f"{run}: has no {modality} database codes (index-{modality}.npz); it has "
                        f"{', '.join(have) or 'none'}")
    identity = model_identity(run / "model") if (run / "model").is_dir() else None
    out = []
    for m in [modality] if modality else have:
        index = HammingIndex.load(run / f"index-{m}.npz", expect={"model": identity, "modality": m}
                                  if identity else {"modality": m})
        meta = {"model": index.meta.get("model", identity), "modality": m, "method": spec.method,
                "run": str(run.resolve()), "split_hash": spec.split_hash, "rows": index.ntotal,
                "source": str(run.resolve())}
        out.append({"modality": m, "bits": index.bits, "meta": meta, "batches": [(index.ids, index.codes)],
                    "default": run / "indexes" / f"{m}-{{kind}}.npz"})
    return out


def encode_source(folder: Path, modality: str | None) -> dict:
    """The shards of a finished encode folder, every one checked against the manifest."""
    codes = EncodedCodes(folder)
    if modality is not None and modality != codes.modality:
        raise DataError(f"{folder}: holds {codes.modality} codes, not {modality}")
    codes.verify()
    return {"modality": codes.modality, "bits": codes.bits, "meta": codes.meta, "batches": codes,
            "default": folder / "index-{kind}.npz"}


def build_index(source: str | os.PathLike, kind: str = "flat", to: str | None = None, modality: str | None = None,
                log=print, **options) -> list[str]:
    """Index the codes of ``source`` (an encode folder or a finished run folder) into ``to``
    (an :func:`~crossmodal.retrieval.backends.open_index` URI; default: a file
    ``index-KIND.npz`` in the encode folder, ``RUN/indexes/MODALITY-KIND.npz`` for a run).
    ``options`` shape a FAISS index (``nlist``, ``nprobe``, ``hnsw_m``, ...). Returns the URIs written."""
    src = Path(source)
    if (src / MANIFEST).is_file():
        sources = [encode_source(src, modality)]
    elif (src / RUN_FILE).is_file():
        sources = run_sources(src, modality)
    else:
        raise DataError(f"{source}: neither an encode folder ({MANIFEST}) nor a run folder ({RUN_FILE})")
    if to is not None and len(sources) > 1:
        raise DataError(f"{source}: has image and text codes; with --to give --modality image or text")
    written = []
    for s in sources:
        uri = to or str(s["default"]).format(kind=kind)
        if to is None and not Path(uri).exists():
            Path(uri).parent.mkdir(exist_ok=True)  # RUN/indexes/: beside the run's files, like evaluations/
        with open_index(uri, bits=s["bits"], mode="w", kind=kind, **options) as index:
            for ids, codes in s["batches"]:
                index.add(codes, np.asarray(ids, dtype=np.int64))
            index.set_meta(s["meta"])
            n = index.ntotal
        log(f"{s['modality']} codes of {src}: {n} x {s['bits']} bits -> {uri}")
        written.append(uri)
    return written
