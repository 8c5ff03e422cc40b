"""Encoding a feature matrix larger than memory with a trained run, chunk by chunk, into shards.

    crossmodal encode RUN --features db.npy --modality image --out db-codes/ [--executor dask --workers 2]

:func:`encode_features` reads the ``.npy`` feature file through a memory map of one chunk at a
time (``chunk_rows`` rows; each chunk one task of the executor, so any number of workers read
their own rows of the same file), codes each chunk with the run's model on the worker (on its GPU
when the model's device is ``auto`` and the worker has one) and writes one shard per chunk plus
``manifest.json`` (:mod:`crossmodal.runs.shards`). Memory: one chunk and its codes per task, never
the whole matrix.

Safety: nothing is written before the inputs are validated: the run (finished, with a model that
has the modality), the feature file (a 2-D float ``.npy`` in C order, of the model's width, every
value finite: a first pass over the chunks still to encode) and the output folder (new, empty, or
an unfinished encode of the same features and model). A rerun skips the chunks whose shards are
written and checked (a killed encode resumes); a damaged shard stops it with one line naming the
file. Shards and the manifest are written atomically; ``OUT/.lock`` keeps two encodes apart.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from crossmodal.engine import RunLock, check_out_folder, clean_stale_tmp
from crossmodal.errors import DataError
from crossmodal.runs.folder import finished, model_identity
from crossmodal.runs.shards import (
    FORMAT,
    MANIFEST,
    read_manifest,
    read_shard,
    shard_name,
    write_manifest,
    write_shard,
)
from crossmodal.stored import read_json

# 32768 x 512 float32 = 64 MB a chunk; with its copies while coding, a worker holds about 4 times that.
# A multiple of the methods' internal encoding batches (8192), so a chunk is coded in the same batches.
DEFAULT_CHUNK_ROWS = 32768
MODALITIES = ("image", "text")
_models: dict = {}  # per process: model folder -> (identity, hasher), loaded once per worker


@dataclass(frozen=True)
class FeatureFile:
    """A ``.npy`` feature matrix as its header describes it: ``(rows, dim)`` of ``dtype`` from
    byte ``offset``; ``bytes`` and ``mtime_ns`` identify the file's version."""

    path: str
    rows: int
    dim: int
    dtype: str
    offset: int
    bytes: int
    mtime_ns: int

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop`` as ``(stop - start, dim)`` float32, through a memory map of those
        rows only, unmapped again before returning (so the process keeps no file pages)."""
        dt = np.dtype(self.dtype)
        mm = np.memmap(self.path, dtype=dt, mode="r", offset=self.offset + start * self.dim * dt.itemsize,
                       shape=(stop - start, self.dim))
        x = np.array(mm, dtype=np.float32)
        del mm  # the last reference: the rows are unmapped here
        return x

    def record(self) -> dict:
        return {"path": self.path, "shape": [self.rows, self.dim], "dtype": self.dtype, "bytes": self.bytes,
                "mtime_ns": self.mtime_ns}


def open_features(path: str | os.PathLike, width: int | None = None, what: str = "features") -> FeatureFile:
    """The header of the ``.npy`` file at ``path``, checked: 2-D, float, C order, at least one
    row, ``width`` columns when given. Nothing is read but the header."""
    p = Path(path).resolve()
    if not p.is_file():
        raise DataError(f"--features {path}: file not found")
    try:
        mm = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"--features {path}: not a readable .npy array ({exc}); save it with numpy.save") from None
    if not isinstance(mm, np.memmap):
        raise DataError(f"--features {path}: a .npz archive or another format; give one .npy matrix")
    shape, dtype, offset = mm.shape, mm.dtype, mm.offset
    c_order = mm.flags.c_contiguous
    del mm
    if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
        raise DataError(f"--features {path}: expected a non-empty 2-D matrix (items x features), got shape {shape}")
    if dtype.kind != "f":
        raise DataError(f"--features {path}: {dtype} values; features are floats (float32 preferred)")
    if not c_order:
        raise DataError(f"--features {path}: stored in Fortran (column) order, so a chunk of rows is scattered over "
                        "the file; save it again with numpy.save(path, numpy.ascontiguousarray(x))")
    if width is not None and shape[1] != width:
        raise DataError(f"--features {path}: {shape[1]} features per row but the model's {what} side takes {width}; "
                        "use the features of the extractor it was trained on")
    st = p.stat()
    return FeatureFile(str(p), int(shape[0]), int(shape[1]), dtype.str, int(offset), st.st_size, st.st_mtime_ns)


def plan_chunks(rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``0..rows`` in chunks of ``chunk_rows`` (the last shorter)."""
    return [(s, min(rows, s + chunk_rows)) for s in range(0, rows, chunk_rows)]


def model_of(run: Path, modality: str) -> dict:
    """What the run's saved model says about itself (``hasher.json``), checked for ``modality``;
    the model itself is loaded by the tasks."""
    if modality not in MODALITIES:
        raise DataError(f"--modality must be image or text, got {modality!r}")
    model_dir = run / "model"
    if not (model_dir / "hasher.json").is_file():
        raise DataError(f"{run}: not a run folder with a trained model (no model/hasher.json)")
    if not finished(run):
        raise DataError(f"{run}: the run is not finished (no report.json); resume it with "
                        f"`crossmodal train --resume {run}` first")
    header = read_json(model_dir / "hasher.json", hint="train the run again")
    dims = header.get("dims") if isinstance(header.get("dims"), dict) else {}
    if not dims.get(modality):
        raise DataError(f"{run}: its model ({header.get('method')}) has no {modality} side; use --modality "
                        f"{'image' if modality == 'text' else 'text'}")
    return {"dir": str(model_dir.resolve()), "identity": model_identity(model_dir), "bits": int(header["bits"]),
            "method": str(header.get("method")), "width": int(dims[modality])}


def load_model(model_dir: str, identity: str):
    """The hasher saved in ``model_dir``, loaded once per process; refuses a model whose
    identity is no longer ``identity`` (replaced since the encode began)."""
    from crossmodal.methods import load_hasher

    if model_dir not in _models:
        got = model_identity(model_dir)
        _models[model_dir] = (got, load_hasher(model_dir))
    got, hasher = _models[model_dir]
    if got != identity:
        raise DataError(f"{model_dir}: the model changed since this encode began ({got}, not {identity}); encode "
                        "into a new --out")
    return hasher


def check_chunk(job: dict) -> int | None:
    """A task: load the model (it must have the modality) and read the job's rows; the first row
    holding a non-finite value, or None."""
    hasher = load_model(job["model"], job["identity"])
    if job["modality"] not in hasher.modalities:
        raise DataError(f"{job['model']}: the model has no {job['modality']} side (has {', '.join(hasher.modalities)})")
    x = FeatureFile(**job["features"]).read(job["start"], job["stop"])
    bad = ~np.isfinite(x).all(axis=1)
    return int(job["start"] + np.argmax(bad)) if bad.any() else None


def encode_chunk(job: dict) -> dict:
    """A task: code the job's rows with the model and write their shard; ``{"sha256", "rows"}``."""
    hasher = load_model(job["model"], job["identity"])
    x = FeatureFile(**job["features"]).read(job["start"], job["stop"])
    codes = hasher.encode(job["modality"], x)
    del x
    return {"sha256": write_shard(job["shard"], codes), "rows": int(codes.shape[0])}


def start_manifest(out: Path, model: dict, run: Path, modality: str, feats: FeatureFile,
                   chunk_rows: int | None) -> dict:
    """The manifest to (re)start from: a new one for a new folder, or the folder's own when it
    is an encode of the same features, model and chunk size; anything else is refused."""
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file; choose a folder")
    if (out / MANIFEST).exists():
        m = read_manifest(out)
        want = {"model": model["identity"], "modality": modality, "features": feats.record(),
                "chunk_rows": chunk_rows or m["chunk_rows"]}
        for key, value in want.items():
            if m[key] != value:
                raise DataError(f"--out {out}: holds an encode with another {key} ({m[key]!r}, now {value!r}); "
                                "encode into a new --out")
        return m
    if out.exists() and any(p.name != ".lock" for p in out.iterdir()):
        raise DataError(f"--out {out}: exists and is not an encode folder (no {MANIFEST}); choose a new folder")
    check_out_folder(out, "--out")
    bounds = plan_chunks(feats.rows, chunk_rows or DEFAULT_CHUNK_ROWS)
    chunks = [{"start": s, "stop": e, "file": shard_name(i, len(bounds)), "sha256": None}
              for i, (s, e) in enumerate(bounds)]
    return {"format": FORMAT, "rows": feats.rows, "bits": model["bits"], "bytes_per_code": (model["bits"] + 7) // 8,
            "modality": modality, "model": model["identity"], "method": model["method"], "run": str(run.resolve()),
            "features": feats.record(), "chunk_rows": chunk_rows or DEFAULT_CHUNK_ROWS, "chunks": chunks,
            "complete": False}


def chunks_to_encode(out: Path, m: dict, log) -> list[int]:
    """Chunks without a checked shard. A recorded shard that is missing is encoded again; one
    whose checksum differs stops the encode (:func:`~crossmodal.runs.shards.read_shard`)."""
    todo = []
    for i, c in enumerate(m["chunks"]):
        if c.get("sha256") is None:
            todo.append(i)
        elif not (out / c["file"]).exists():
            log(f"{out / c['file']}: missing, its rows {c['start']}..{c['stop']} are encoded again")
            c["sha256"] = None
            todo.append(i)
        else:
            read_shard(out, m, i)
    return todo


def encode_features(run: str | os.PathLike, features: str | os.PathLike, modality: str, out: str | os.PathLike,
                    chunk_rows: int | None = None, executor=None, log=print) -> Path:
    """Code every row of the ``.npy`` file ``features`` with the model of the finished run
    ``run`` into shards under ``out`` (see the module docstring); returns ``out``.

    ``chunk_rows``: rows per chunk (default :data:`DEFAULT_CHUNK_ROWS`; a rerun keeps the first
    run's). ``executor``: where the chunk tasks run (:mod:`crossmodal.experiments.executors`;
    default: this process, one chunk after another).
    """
    if chunk_rows is not None and (int(chunk_rows) != chunk_rows or chunk_rows < 1):
        raise DataError(f"--chunk-rows must be a whole number >= 1, got {chunk_rows!r}")
    run, out = Path(run), Path(out)
    model = model_of(run, modality)
    feats = open_features(features, model["width"], modality)
    m = start_manifest(out, model, run, modality, feats, chunk_rows)
    todo = chunks_to_encode(out, m, log) if out.is_dir() else list(range(len(m["chunks"])))
    if not todo and m["complete"]:
        log(f"{out}: every shard already encoded and checked; nothing to do")
        return out
    m["complete"] = False
    job = {"model": model["dir"], "identity": model["identity"], "modality": modality, "features": asdict(feats)}
    jobs = [{**job, "start": m["chunks"][i]["start"], "stop": m["chunks"][i]["stop"],
             "shard": str((out / m["chunks"][i]["file"]).resolve())} for i in todo]
    run_tasks = executor.map_unordered if executor is not None else _in_process
    for o in run_tasks(check_chunk, jobs, keys=[f"check-{i}" for i in todo]):
        if o.error is not None:
            raise o.error
        if o.value is not None:
            raise DataError(f"--features {features}: row {o.value} holds a NaN or infinite value; nothing was written")
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out):
        clean_stale_tmp(out, recursive=False)
        write_manifest(out, m)
        t0, rows = time.perf_counter(), 0
        if todo:
            log(f"encoding {sum(j['stop'] - j['start'] for j in jobs)} of {feats.rows} rows in {len(jobs)} chunks "
                f"({len(m['chunks']) - len(jobs)} already encoded) -> {out}")
        for k, o in enumerate(run_tasks(encode_chunk, jobs, keys=[f"encode-{i}" for i in todo]), 1):
            if o.error is not None:
                raise o.error
            c = m["chunks"][todo[o.index]]
            c["sha256"] = o.value["sha256"]
            rows += o.value["rows"]
            write_manifest(out, m)
            log(f"[{k}/{len(jobs)}] {c['file']}: rows {c['start']}..{c['stop']} in {o.seconds:.1f} s")
        m["complete"] = True
        write_manifest(out, m)
    rate = f", {rows / (time.perf_counter() - t0):.0f} rows/s" if rows else ""
    log(f"encoded {feats.rows} rows x {m['bits']} bits ({modality}) -> {out}: {len(m['chunks'])} shards{rate}")
    return out


def _in_process(fn, items, keys=None):
    """The chunks one after another in this process (no executor given)."""
    from types import SimpleNamespace

    for i, item in enumerate(items):
        t0 = time.perf_counter()
        value = fn(item)
        yield SimpleNamespace(index=i, value=value, error=None, seconds=time.perf_counter() - t0)
