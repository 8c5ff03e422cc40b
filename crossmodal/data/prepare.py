"""From a raw dataset or the community ``.mat`` files to a canonical dataset folder.

``prepare(name, root, out, ...)`` (``crossmodal datasets prepare`` / ``python -m data_prep.NAME``;
``datasets prepare mat`` reads any paired file through :mod:`crossmodal.data.files`):

1. ``root`` may be an archive (``.zip``, ``.tar[.gz]``): it is extracted beside ``out``, and an
   entry that would land outside that folder (``../x``, an absolute path, a link) is refused.
2. If ``root`` holds community ``.mat`` files they are found by their *variables*, not their
   names (``XAll`` image features, ``IAll`` raw images, ``YAll`` tag vectors, ``LAll`` labels),
   so renamed files work. Otherwise the source's raw parser reads the images, tags or
   captions and labels in the dataset's own layout and applies the standard cleaning.
3. Expected counts are checked; a mismatch names every figure that differs.
4. Features are computed in batches (GPU when present, progress bar) and written chunk by
   chunk into a memory-mapped ``.npy`` inside ``.{out}.partial``. Each chunk is flushed before
   its progress record, so a killed run resumes at the first unfinished chunk; the folder only
   takes its final name, with file hashes in ``meta.json``, when everything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

from crossmodal.data.core import (
    Dataset,
    check_overwrite,
    PairedData,
    Split,
    file_sha256,
    finalize_dataset_dir,
    load_dataset,
    write_dataset_files,
)
from crossmodal.errors import DataError

# --------------------------------------------------------------------------- sources


@dataclass
class RawCollection:
    """What a raw parser returns, before cleaning: N candidate items.

    ``tokens[i]`` are the tags or words of item i (the BoW input); ``sentences[i]`` the text a
    neural text encoder reads (defaults to the tokens joined by spaces).
    """

    ids: list[str]
    images: list[Path]
    tokens: list[list[str]]
    labels: np.ndarray
    label_names: list[str]
    sentences: list[str] | None = None
    vocabulary: list[str] | None = None  # a fixed vocabulary (NUS-WIDE's 1,000 tags)
    notes: dict = field(default_factory=dict)


@dataclass
class SourceSpec:
    """A benchmark: citation, expected counts, split protocols, raw parser and cleaning rule.

    Cleaning: the BoW vocabulary is the tokens occurring at least ``bow_min_count`` times
    (counted over all parsed items when ``count_scope == "all"``, else over the labelled
    ones), cut to the ``bow_top_k`` most frequent when set; an item is kept when it has a
    label and, if ``require_token``, at least one vocabulary token.
    """

    name: str
    title: str
    citation: str
    licence: str
    expected: dict
    protocols: dict
    default_protocol: str
    parse_raw: Callable[[Path], RawCollection]
    bow_min_count: int = 1
    bow_top_k: int | None = None
    count_scope: str = "all"
    require_token: bool = True
    tags: bool = True
    binary: bool = True
    keep_used_labels: bool = False
    community_files: str = ""

    def split(self, n: int, seed: int = 0, protocol: str | None = None, n_query=None, n_train=None,
              n_validation=None) -> Split:
        """The named protocol's seeded split (sizes overridable); validation comes out of the
        database and is disjoint from train."""
        protocol = protocol or self.default_protocol
        if protocol not in self.protocols:
            raise DataError(f"{self.name}: unknown protocol {protocol!r}; known: {', '.join(self.protocols)}")
        p = dict(self.protocols[protocol])
        nq = int(n_query if n_query is not None else p["query"])
        nv = int(n_validation if n_validation is not None else p.get("validation", 0))
        nt = n_train if n_train is not None else p.get("train")
        nt = None if nt == 0 else nt  # 0: every database item not held out for validation
        if nq >= n:
            raise DataError(f"{self.name}: protocol {protocol!r} wants {nq} queries but there are only {n} items; "
                            "give smaller --query/--train sizes")
        rest = n - nq - nv
        if nt is not None and int(nt) > rest:
            raise DataError(f"{self.name}: protocol {protocol!r} wants {nt} training pairs but only {rest} remain "
                            f"after {nq} queries and {nv} validation items")
        name = protocol if (n_query, n_train, n_validation) == (None, None, None) else f"{protocol}+custom"
        return Split.random(n, n_query=nq, n_train=None if nt is None else int(nt), n_validation=nv, seed=seed,
                            protocol=name)


def multi_hot(label_sets: list, keys: list) -> np.ndarray:
    """``(N, len(keys)) uint8`` with a 1 where item r's set holds ``keys[j]`` (others ignored)."""
    col = {k: j for j, k in enumerate(keys)}
    out = np.zeros((len(label_sets), len(keys)), dtype=np.uint8)
    for r, s in enumerate(label_sets):
        for k in s:
            if k in col:
                out[r, col[k]] = 1
    return out


def word_tokens(texts: list[str]) -> list[list[str]]:
    """Lower-cased words of each text without stopwords (the BoW featurizer's tokens)."""
    from crossmodal.features import STOPWORDS, tokenize

    return [[w for w in tokenize(t) if w not in STOPWORDS] for t in texts]


def source_specs() -> dict[str, SourceSpec]:
    from crossmodal.data import coco, iaprtc12, mirflickr, nuswide

    specs = [mirflickr.SPEC, nuswide.SPEC_TC10, nuswide.SPEC_TC21, coco.SPEC, iaprtc12.SPEC]
    return {s.name: s for s in specs}


def get_spec(name: str) -> SourceSpec:
    specs = source_specs()
    if name not in specs:
        import difflib

        close = difflib.get_close_matches(name, list(specs), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"no preparable dataset {name!r}{hint} known: {', '.join(specs)}; also imagelist (image-only, "
                        "from 'path label-vector' lists) and mat (any paired .mat/.npz file or .npy folder: --root FILE)")
    return specs[name]


# --------------------------------------------------------------------------- archives


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a ``.zip`` / ``.tar[.gz|.bz2|.xz]`` into ``dest``, refusing any entry that would
    land outside it (absolute paths, ``..``, links). Nothing is left behind on refusal."""
    dest = Path(dest)
    root = dest.resolve()

    def check(name: str, is_link: bool = False):
        target = (root / name).resolve()
        if is_link or name.startswith(("/", "\\")) or (target != root and root not in target.parents):
            raise DataError(f"{archive}: archive entry {name!r} escapes its folder{' (a link)' if is_link else ''}; "
                            "refusing to extract it")

    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    check(info.filename, is_link=(info.external_attr >> 28) == 0o12)
                z.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                members = t.getmembers()
                for m in members:
                    check(m.name, is_link=m.issym() or m.islnk() or m.isdev())
                t.extractall(dest, members=members, filter="data")
        else:
            raise DataError(f"{archive}: not a folder, zip or tar archive")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


# --------------------------------------------------------------------------- community files

IMAGE_KEYS = ("XAll", "X", "I_all", "image_features")
RAW_IMAGE_KEYS = ("IAll", "images")
TEXT_KEYS = ("YAll", "Y", "T_all", "text_features", "tags")
LABEL_KEYS = ("LAll", "L", "L_all", "labels")


def mat_variables(path: Path) -> dict[str, tuple]:
    """Variable names and MATLAB shapes of a ``.mat`` file, without reading the data."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == b"\x89HDF\r\n\x1a\n" or head.startswith(b"MATLAB 7"):
        try:
            import h5py

            with h5py.File(path, "r") as f:
                return {k: tuple(reversed(v.shape)) for k, v in f.items() if isinstance(v, h5py.Dataset)}
        except OSError:
            pass
    import scipy.io

    try:
        return {name: tuple(shape) for name, shape, _ in scipy.io.whosmat(path)}
    except Exception as exc:
        raise DataError(f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc})") from None


def find_community_files(root: Path) -> dict[str, tuple[Path, str]]:
    """``{"image"|"raw_image"|"text"|"labels": (file, variable)}`` for the .mat files in
    ``root`` (and one level below), recognised by their variables."""
    found: dict[str, tuple[Path, str]] = {}
    files = sorted(root.glob("*.mat")) + sorted(root.glob("*/*.mat"))
    for f in files:
        names = mat_variables(f)
        for role, keys in (("image", IMAGE_KEYS), ("raw_image", RAW_IMAGE_KEYS), ("text", TEXT_KEYS), ("labels", LABEL_KEYS)):
            for k in keys:
                if k in names and role not in found:
                    found[role] = (f, k)
    return found


def _read_var(path: Path, key: str) -> np.ndarray:
    from crossmodal.data.matfile import read_mat

    arrays = read_mat(path)
    if key not in arrays:
        raise DataError(f"{path}: variable {key!r} is not numeric")
    return arrays[key]


def _orient(a: np.ndarray, n: int | None, what: str) -> np.ndarray:
    if a.ndim != 2:
        raise DataError(f"{what}: expected a 2-D matrix, got shape {a.shape}")
    if n is not None and a.shape[0] != n and a.shape[1] == n:
        return a.T
    return a


class _IAllReader:
    """Raw images of a community ``IAll`` variable (MATLAB N x 3 x H x W), read in chunks."""

    def __init__(self, path: Path, key: str):
        self.path, self.key = path, key
        shape = mat_variables(path)[key]
        if len(shape) != 4:
            raise DataError(f"{path}: {key} has shape {shape}; expected N x 3 x H x W raw images")
        self.n = int(shape[0])
        self._h5 = None

    def __len__(self):
        return self.n

    def __getitem__(self, sl: slice) -> list[np.ndarray]:
        import h5py

        if self._h5 is None:
            try:
                self._h5 = h5py.File(self.path, "r")[self.key]
            except OSError:  # a v5 file: small enough to read whole
                self._h5 = np.ascontiguousarray(_read_var(self.path, self.key).transpose(3, 2, 1, 0))
        block = np.asarray(self._h5[..., sl])  # (W, H, 3, n) as HDF5 stores MATLAB's N x 3 x H x W
        return list(block.transpose(3, 1, 0, 2).astype(np.uint8))  # -> (n, H, W, 3)


def read_community(spec: SourceSpec, root: Path, community: dict | None = None, need_features: bool = True,
                   strict_counts: bool = True, log=print) -> dict:
    """Read community ``.mat`` files: ``{"n", "labels" (N, C) uint8, "text" CSR (N, Dt),
    "image" (N, Di) float32 or None}``, oriented items-first and checked against the
    standard counts (every differing figure is named)."""
    community = find_community_files(root) if community is None else community
    if not community:
        raise DataError(f"{root}: no community .mat files (variables XAll/YAll/LAll); expected {spec.community_files}")
    missing = [r for r in ("text", "labels") if r not in community]
    if need_features and "image" not in community:
        missing.insert(0, "image features (XAll)" + (" -- only raw images (IAll) found; choose --image-features vgg19|clip|hf"
                                                     if "raw_image" in community else ""))
    if missing:
        raise DataError(f"{root}: community files found but no {', '.join(missing)}; expected {spec.community_files}")
    labels = _read_var(*community["labels"])
    if labels.ndim != 2:
        raise DataError(f"{community['labels'][0]}: labels of shape {labels.shape}; expected N x C")
    if labels.shape[1] > labels.shape[0]:
        labels = labels.T  # stored transposed (C x N)
    n = labels.shape[0]
    if not np.isin(labels, (0, 1)).all():
        raise DataError(f"{community['labels'][0]}: labels are not 0/1 multi-hot")
    text = _orient(_read_var(*community["text"]), n, "text")
    if text.shape[0] != n:
        raise DataError(f"{community['text'][0]}: {text.shape[0]} text rows but {n} label rows; the files come from different datasets")
    image = None
    if need_features:
        image = _orient(_read_var(*community["image"]), n, "image features").astype(np.float32)
        if image.shape[0] != n:
            raise DataError(f"{community['image'][0]}: {image.shape[0]} image rows but {n} label rows; the files come from different datasets")
    check_counts(spec, {"items": n, "labels": labels.shape[1], "text_dim": text.shape[1]}, strict_counts, log)
    return {"n": n, "labels": labels.astype(np.uint8), "text": sp.csr_matrix(text.astype(np.float32)), "image": image}


def load_source(name: str, root: str | os.PathLike | None, seed: int = 0, protocol: str | None = None,
                strict_counts: bool = True, **sizes) -> Dataset:
    """A benchmark as a :class:`Dataset`: from a prepared folder (``meta.json``), or straight
    from the community ``.mat`` files with the protocol's seeded split (nothing written)."""
    spec = get_spec(name)
    if root is None:
        env = os.environ.get("CROSSMODAL_DATA_ROOT")
        if not env:
            raise DataError(f"{name}: no data folder given; pass --data-root DIR (a prepared folder or the community .mat files)")
        root = Path(env) / name
    root = Path(root)
    if (root / "meta.json").is_file():
        ds = load_dataset(root)
        if protocol is None and not any(v is not None for v in sizes.values()) and ds.split.seed == seed:
            return ds
        ds.split = spec.split(ds.data.n, seed=seed, protocol=protocol, **sizes)
        return ds
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; --data-root must hold the community .mat files or a prepared dataset")
    c = read_community(spec, root, strict_counts=strict_counts)
    data = PairedData(image=c["image"], text=c["text"], labels=c["labels"],
                      meta={"source": spec.name, "mode": "community", "root": str(root.resolve())})
    split = spec.split(data.n, seed=seed, protocol=protocol, **sizes)
    return Dataset(data=data, split=split, name=spec.name, root=str(root.resolve()))


# --------------------------------------------------------------------------- chunked writer


class ChunkedArrayWriter:
    """Writes an (N, D) float32 array into ``folder/name.npy`` (memory-mapped) chunk by chunk.

    ``name.progress.json`` holds how many leading rows are done and the job's fingerprint;
    it is updated only after the rows are flushed to disk, so :attr:`done` is never ahead of
    the data. A writer opened on a folder with the same fingerprint continues from there.
    """

    def __init__(self, folder: Path, name: str, n: int, dim: int, fingerprint: str):
        self.path = folder / f"{name}.npy"
        self.progress = folder / f"{name}.progress.json"
        self.n, self.dim, self.fingerprint = int(n), int(dim), fingerprint
        self.done = 0
        if self.path.is_file() and self.progress.is_file():
            try:
                state = json.loads(self.progress.read_text(encoding="utf-8"))
                arr = np.load(self.path, mmap_mode="r+")
                if state.get("fingerprint") == fingerprint and arr.shape == (self.n, self.dim):
                    self.arr, self.done = arr, int(state["rows"])
                    return
            except (ValueError, OSError, KeyError, json.JSONDecodeError):
                pass
        self.arr = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float32, shape=(self.n, self.dim))
        self._commit(0)

    def _commit(self, rows: int) -> None:
        tmp = self.progress.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rows": rows, "fingerprint": self.fingerprint}), encoding="utf-8")
        os.replace(tmp, self.progress)
        self.done = rows

    def write(self, start: int, rows: np.ndarray) -> None:
        if start != self.done:
            raise DataError(f"{self.path.name}: chunk at row {start} but {self.done} rows are done")
        if rows.shape[1] != self.dim:
            raise DataError(f"{self.path.name}: featurizer gave {rows.shape[1]}-d rows, expected {self.dim}")
        self.arr[start:start + len(rows)] = rows
        self.arr.flush()
        self._commit(start + len(rows))

    def close(self) -> np.ndarray:
        if self.done != self.n:
            raise DataError(f"{self.path.name}: only {self.done} of {self.n} rows written")
        self.progress.unlink(missing_ok=True)
        del self.arr
        return np.load(self.path, mmap_mode="r")


def featurize_into(folder: Path, name: str, items, featurizer, fingerprint: str, chunk: int = 1024,
                   progress: bool = True) -> np.ndarray:
    """Featurize ``items`` (a sequence supporting slicing) into ``folder/name.npy``, resumably."""
    from crossmodal.progress import tqdm

    n = len(items)
    dim = int(featurizer.dim)
    w = ChunkedArrayWriter(folder, name, n, dim, fingerprint)
    with tqdm(total=n, initial=w.done, desc=f"{name} features", unit="item", disable=not progress) as bar:
        for s in range(w.done, n, chunk):
            batch = items[s:s + chunk]
            w.write(s, np.asarray(featurizer.transform(batch), dtype=np.float32))
            bar.update(len(batch))
    return w.close()


# --------------------------------------------------------------------------- cleaning


def clean(raw: RawCollection, spec: SourceSpec, min_count: int | None = None,
          top_k: int | None = None) -> tuple[np.ndarray, list[str], dict]:
    """Apply the source's cleaning rule: ``(kept item indices, vocabulary, counts)``."""
    n = len(raw.ids)
    labelled = raw.labels.any(axis=1)
    if raw.vocabulary is not None:
        vocab = list(raw.vocabulary)
    else:
        min_count = spec.bow_min_count if min_count is None else int(min_count)
        top_k = spec.bow_top_k if top_k is None else top_k
        scope = range(n) if spec.count_scope == "all" else np.flatnonzero(labelled)
        counts = Counter()
        for i in scope:
            counts.update(set(raw.tokens[i]) if spec.binary else raw.tokens[i])
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        vocab = sorted(ranked[:top_k] if top_k else ranked)
    keep = labelled.copy()
    if spec.require_token:
        vs = set(vocab)
        has = np.fromiter((any(t in vs for t in toks) for toks in raw.tokens), dtype=bool, count=n)
        keep &= has
    counts = {"parsed": n, "labelled": int(labelled.sum()), "kept": int(keep.sum()), "vocabulary": len(vocab)}
    return np.flatnonzero(keep), vocab, counts


def bow_matrix(tokens: list[list[str]], vocab: list[str], binary: bool) -> sp.csr_matrix:
    index = {w: i for i, w in enumerate(vocab)}
    indptr, cols = [0], []
    for toks in tokens:
        hits = [index[t] for t in toks if t in index]
        if binary:
            hits = sorted(set(hits))
        cols.extend(hits)
        indptr.append(len(cols))
    data = np.ones(len(cols), dtype=np.float32)
    m = sp.csr_matrix((data, np.array(cols, dtype=np.int64), np.array(indptr, dtype=np.int64)),
                      shape=(len(tokens), len(vocab)))
    m.sum_duplicates()
    return m


def check_counts(spec: SourceSpec, found: dict, strict: bool, log=print) -> None:
    """Compare ``found`` figures with ``spec.expected``; every difference is named."""
    diffs = [f"{k}: expected {spec.expected[k]:,}, found {v:,}" for k, v in found.items()
             if k in spec.expected and spec.expected[k] is not None and v != spec.expected[k]]
    if not diffs:
        return
    msg = f"{spec.name}: counts differ from the standard release ({'; '.join(diffs)})"
    if strict:
        raise DataError(msg + "; if this is a deliberate subset, pass --allow-count-mismatch")
    warnings.warn(msg, stacklevel=2)
    log("warning: " + msg)


# --------------------------------------------------------------------------- prepare


def _out_path(out) -> Path:
    """``--out`` as a path with a real last component (``.`` and ``..`` resolved)."""
    out = Path(out)
    return out.resolve() if out.name in ("", ".", "..") else out


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare(name: str, root: str | os.PathLike, out: str | os.PathLike, image_features: str | None = None,
            text_features: str | None = None, image_model: str | None = None, text_model: str | None = None,
            protocol: str | None = None, seed: int = 0, n_query: int | None = None, n_train: int | None = None,
            n_validation: int | None = None, min_count: int | None = None, device: str = "auto",
            batch_size: int = 64, chunk: int = 1024, allow_download: bool = False, strict_counts: bool = True,
            overwrite: bool = False, progress: bool = True, log=print, image_featurizer=None,
            text_featurizer=None, pixel_size: int = 224) -> Path:
    """Build the canonical dataset folder ``out`` for source ``name`` from ``root``.

    ``image_features``: ``None``/``"community"`` (the file's XAll), ``vgg19``, ``clip``, ``hf``,
    ``pixels`` (raw images at ``pixel_size`` x ``pixel_size``, (H, W, C) rows in [0, 1], the
    input of ``mode: end2end``: 602 KB a row at 224);
    ``text_features``: ``None``/``"bow"`` (or the file's YAll), ``clip``, ``hf``. Ready-made
    featurizer objects may be passed instead (``image_featurizer=``, ``text_featurizer=``).
    Returns ``out``.
    """
    from crossmodal.features import STOPWORDS, BowFeaturizer, make_featurizer

    spec = get_spec(name)
    out = _out_path(out)
    source = Path(root)
    check_overwrite(out, overwrite, protect=(source,))
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: not found; --root must be the dataset folder, an archive of it, or the folder of community .mat files")
    partial = out.parent / f".{out.name}.partial"  # created only when something is written
    if root.is_file():
        extracted = out.parent / f".{out.name}.extract"
        if not (extracted / ".complete").is_file():
            log(f"extracting {root} -> {extracted}")
            shutil.rmtree(extracted, ignore_errors=True)
            safe_extract(root, extracted)
            (extracted / ".complete").write_text("ok")
        root = extracted
        subdirs = [d for d in root.iterdir() if d.is_dir()]
        if len(subdirs) == 1 and not any(f.suffix == ".mat" for f in root.iterdir()):
            root = subdirs[0]

    def neural(modality, kind, model, given):
        if given is not None:
            return given
        if kind in (None, "community", "bow"):
            return None
        return make_featurizer(modality, kind, model=model, device=device, allow_download=allow_download,
                               batch_size=batch_size, pixel_size=pixel_size)

    community = find_community_files(root)
    featurizers: dict = {}
    meta = {"source": spec.name, "citation": spec.citation, "licence": spec.licence, "root": str(root.resolve())}
    if community:
        mode = "community"
        if text_features not in (None, "community", "bow") or text_featurizer is not None:
            raise DataError(f"{spec.name}: the community files hold tag vectors only; --text-features {text_features} needs the raw dataset")
        img_f = neural("image", image_features, image_model, image_featurizer)
        c = read_community(spec, root, community, need_features=img_f is None, strict_counts=strict_counts, log=log)
        n, present = c["n"], ()
        if img_f is not None:
            if "raw_image" not in community:
                raise DataError(f"{root}: --image-features {image_features} needs the raw images (IAll file, e.g. {spec.name}-iall.mat)")
            reader = _IAllReader(*community["raw_image"])
            if len(reader) != n:
                raise DataError(f"{community['raw_image'][0]}: {len(reader)} images but {n} label rows")
            partial.mkdir(parents=True, exist_ok=True)
            fp = _fingerprint(spec.name, meta["root"], n, img_f.to_dict())
            image = featurize_into(partial, "image", reader, img_f, fp, chunk=chunk, progress=progress)
            featurizers["image"] = img_f
            present = ("image.npy",)
        else:
            image = c["image"]
        data = PairedData(image=image, text=c["text"], labels=c["labels"], meta=meta)
        meta["files"] = {role: f"{p.name}:{k}" for role, (p, k) in community.items()}
    else:
        mode = "raw"
        raw = spec.parse_raw(root)
        keep, vocab, counts = clean(raw, spec, min_count=min_count)
        log(f"{spec.name}: parsed {counts['parsed']:,} items, {counts['labelled']:,} labelled, kept {counts['kept']:,}; "
            f"vocabulary {counts['vocabulary']:,}")
        labels = raw.labels[keep]
        label_names = list(raw.label_names)
        if spec.keep_used_labels:
            used = labels.any(axis=0)
            labels, label_names = labels[:, used], [w for w, u in zip(label_names, used) if u]
        found = {"items": len(keep), "labels": labels.shape[1]}
        txt_f = neural("text", text_features, text_model, text_featurizer)
        if txt_f is None:
            found["text_dim"] = len(vocab)
        check_counts(spec, found, strict_counts, log)
        if len(keep) == 0:
            raise DataError(f"{spec.name}: no item survives cleaning ({counts}); check the annotation files")
        ids = [raw.ids[i] for i in keep]
        img_f = neural("image", image_features or "clip", image_model, image_featurizer)
        fp = _fingerprint(spec.name, meta["root"], ids, img_f.to_dict(), None if txt_f is None else txt_f.to_dict())
        images = [raw.images[i] for i in keep]
        partial.mkdir(parents=True, exist_ok=True)
        image = featurize_into(partial, "image", images, img_f, fp, chunk=chunk, progress=progress)
        featurizers["image"] = img_f
        present = ("image.npy",)
        if txt_f is None:
            text = bow_matrix([raw.tokens[i] for i in keep], vocab, spec.binary)
            featurizers["text"] = BowFeaturizer(vocab, stopwords=() if spec.tags else STOPWORDS, binary=spec.binary, tags=spec.tags)
        else:
            sentences = raw.sentences or [" ".join(t) for t in raw.tokens]
            text = featurize_into(partial, "text", [sentences[i] for i in keep], txt_f, fp, chunk=chunk, progress=progress)
            featurizers["text"] = txt_f
            present = present + ("text.npy",)
        meta.update(label_names=label_names, cleaning=counts, notes=raw.notes)
        data = PairedData(image=image, text=text, labels=labels, ids=ids, meta=meta)
    meta["mode"] = mode
    meta["features"] = {k: f.to_dict() for k, f in featurizers.items() if k == "image" or f.to_dict().get("kind") != "bow"}
    split = spec.split(data.n, seed=seed, protocol=protocol, n_query=n_query, n_train=n_train, n_validation=n_validation)
    ds = Dataset(data=data, split=split, name=spec.name, featurizers=featurizers)
    partial.mkdir(parents=True, exist_ok=True)
    write_dataset_files(ds, partial, present=present)
    finalize_dataset_dir(partial, out, protect=(source,))
    log(f"wrote {out}: {data.n:,} pairs, image {data.image_dim}-d, text {data.text_dim}-d, "
        f"{data.labels.shape[1]} labels; split {split.protocol} (hash {split.hash})")
    return out


# --------------------------------------------------------------------------- verify


def verify(path: str | os.PathLike) -> list[tuple[str, bool, str]]:
    """Check a dataset folder: file hashes, shapes against the recorded summary, the split
    hash, and the standard counts of its source. Returns ``[(check, ok, detail)]``."""
    path = Path(path)
    results: list[tuple[str, bool, str]] = []
    partial = path.parent / f".{path.name}.partial"
    if not (path / "meta.json").is_file():
        why = f" (an unfinished preparation is at {partial}; rerun the same prepare command to resume)" if partial.exists() else ""
        return [("folder", False, f"{path}: no meta.json, not a finished dataset folder{why}")]
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [("meta.json", False, f"invalid JSON ({exc})")]
    if not isinstance(meta, dict):
        return [("meta.json", False, "not a JSON object")]
    files = meta.get("files", {})
    if not isinstance(files, dict):
        results.append(("file hashes", False, "meta.json 'files' is not an object"))
        files = {}
    for fname, digest in files.items():
        f = path / fname
        if Path(fname).name != fname or not isinstance(digest, str):
            results.append((f"file {fname}", False, "not a plain file name with a sha256 (meta.json was edited)"))
        elif not f.is_file():
            results.append((f"file {fname}", False, "missing"))
        else:
            got = file_sha256(f)
            results.append((f"file {fname}", got == digest, "sha256 ok" if got == digest else f"sha256 {got[:12]} != recorded {digest[:12]}"))
    if "files" not in meta:
        results.append(("file hashes", False, "meta.json records no file hashes (written by an older crossmodal)"))
    try:
        ds = load_dataset(path)
    except DataError as exc:
        return results + [("load", False, str(exc))]
    s, want = ds.summary(), meta.get("summary", {})
    want = want if isinstance(want, dict) else {}
    for key in ("items", "image_dim", "text_dim", "classes", "split", "split_hash"):
        if key in want:
            results.append((key, s[key] == want[key], f"{s[key]}" if s[key] == want[key] else f"{s[key]} != recorded {want[key]}"))
    source = ds.data.meta.get("source")
    try:
        spec = get_spec(source) if source else None
    except DataError:
        spec = None
    if spec is not None:
        found = {"items": s["items"], "labels": s["classes"]}
        if ds.data.meta.get("mode") == "community" or "text" not in ds.data.meta.get("features", {}):
            found["text_dim"] = s["text_dim"]
        for k, v in found.items():
            exp = spec.expected.get(k)
            if exp is not None:
                results.append((f"standard {k}", v == exp, f"{v:,}" + ("" if v == exp else f" (standard release: {exp:,})")))
    return results


# --------------------------------------------------------------------------- image lists


def prepare_image_lists(root: str | os.PathLike, out: str | os.PathLike, query_list: str, database_list: str,
                        train_list: str | None = None, name: str = "imagelist", image_features: str | None = None,
                        image_model: str | None = None, n_validation: int = 500, seed: int = 0,
                        device: str = "auto", batch_size: int = 64, chunk: int = 1024, allow_download: bool = False,
                        overwrite: bool = False, progress: bool = True, log=print, image_featurizer=None,
                        pixel_size: int = 224) -> Path:
    """An image-only dataset folder from ``path label-vector`` (or ``path class``) lists, the
    layout of the NUS-WIDE-21 / MS-COCO / FLICKR25K image-hashing releases and Clothing1M.

    Paths are relative to ``root``; the split is the lists' own (query = the query list,
    database = the database list, train = the train list or the database), with
    ``n_validation`` database items outside train held out for model selection.
    """
    from crossmodal.data.images import parse_image_list
    from crossmodal.features import make_featurizer

    root, out = Path(root), _out_path(out)
    check_overwrite(out, overwrite, protect=(root,))
    lists = {"query": query_list, "database": database_list, "train": train_list}
    parsed = {k: parse_image_list(v if Path(v).is_absolute() else root / v) for k, v in lists.items() if v}
    widths = {lab.shape[1] for _, lab in parsed.values()}
    if len(widths) != 1:
        raise DataError(f"image lists: label vectors of different widths {sorted(widths)}; the lists come from different releases")
    index: dict[str, int] = {}
    labels: list[np.ndarray] = []
    parts: dict[str, list[int]] = {}
    for part in ("database", "query", "train"):
        if part not in parsed:
            continue
        paths, lab = parsed[part]
        rows = []
        for p, l in zip(paths, lab):
            if p not in index:
                index[p] = len(index)
                labels.append(l)
            elif not np.array_equal(labels[index[p]], l):
                raise DataError(f"image lists: {p} has different labels in different lists")
            rows.append(index[p])
        parts[part] = rows
    files = [root / p for p in index]
    missing = [str(f) for f in files[:1000] if not f.is_file()]
    if missing:
        raise DataError(f"image lists: {len(missing)} listed image(s) not found under {root}, e.g. {missing[0]}")
    img_f = image_featurizer or make_featurizer("image", image_features or "clip", model=image_model, device=device,
                                                allow_download=allow_download, batch_size=batch_size,
                                                pixel_size=pixel_size)
    partial = out.parent / f".{out.name}.partial"
    partial.mkdir(parents=True, exist_ok=True)
    fp = _fingerprint(name, str(root.resolve()), list(index), img_f.to_dict())
    image = featurize_into(partial, "image", files, img_f, fp, chunk=chunk, progress=progress)
    query, database = np.array(parts["query"]), np.array(parts["database"])
    train = np.array(parts.get("train", parts["database"]))
    rng = np.random.default_rng(seed)
    pool = np.setdiff1d(database, train)
    if len(pool) < n_validation:  # no room outside train: hold validation out of the training items
        validation = np.sort(rng.choice(train, size=min(n_validation, len(train) - 1), replace=False))
        train = np.setdiff1d(train, validation)
    else:
        validation = np.sort(rng.choice(pool, size=n_validation, replace=False))
    data = PairedData(image=image, labels=np.stack(labels), ids=list(index),
                      meta={"source": name, "mode": "imagelist", "root": str(root.resolve()),
                            "lists": {k: str(v) for k, v in lists.items() if v}})
    split = Split(train, validation, query, database, seed=seed, protocol="lists")
    ds = Dataset(data=data, split=split, name=name, featurizers={"image": img_f})
    write_dataset_files(ds, partial, present=("image.npy",))
    finalize_dataset_dir(partial, out, protect=(root,))
    log(f"wrote {out}: {data.n:,} images, {data.image_dim}-d features, {data.labels.shape[1]} labels; "
        f"{len(query):,} queries, {len(database):,} database, {len(train):,} train, {len(validation):,} validation")
    return out
