"""The canonical dataset folder: write it atomically, read it back, refuse to overwrite others' folders.

A canonical dataset folder holds::

    image.npy      (N, Di) float32 image features
    text.npy       (N, Dt) float32 text features   -- or text.npz, a CSR matrix
    labels.npy     (N, C)  uint8 multi-hot labels  (optional)
    ids.txt        N lines, one id each
    split.json     named index arrays train / validation / query / database, seed, hash
    meta.json      source, feature extractors, format version, summary, per-file SHA-256

Everything is plain NumPy / JSON: memory-mappable, diffable, no pickle. Extra arrays a
source needs (the toy set's rendered pixels) are kept as ``extra_<name>.npy``. The JSON files
are read through :func:`crossmodal.stored.read_json` (one error line naming the file).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from crossmodal.data.fingerprint import file_sha256
from crossmodal.data.readers.paired import NOT_A_DATASET_HINT
from crossmodal.data.types import Dataset, PairedData, Split
from crossmodal.errors import DataError
from crossmodal.features import featurizer_from_dict
from crossmodal.stored import read_json

FORMAT_VERSION = 1
DAMAGED = "restore it or prepare the dataset again"  # what to do about a damaged JSON file


def read_meta(path: str | os.PathLike) -> dict:
    """The ``meta.json`` object of the dataset folder ``path`` (one-line :class:`DataError` when it is
    missing, not UTF-8, not JSON or not an object)."""
    return read_json(Path(path) / "meta.json", hint=DAMAGED)


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
    guarded = [("the working directory", Path.cwd())]
    guarded += [(f"the source {p}", Path(p)) for p in protect if p is not None]
    for what, p in guarded:
        q = p.resolve()
        if q == real or real in q.parents:
            raise DataError(f"--overwrite {out}: refusing, the folder holds {what}; choose another --out")
    try:
        ours = {"format_version", "summary", "files"} <= set(read_meta(out))
    except DataError:
        ours = False
    if not ours:
        raise DataError(f"--overwrite {out}: refusing, it is not a dataset folder crossmodal wrote (no crossmodal "
                        "meta.json); --overwrite only replaces those, remove it yourself or choose another --out")
    return out


def save_dataset(ds: Dataset, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``ds`` as a canonical dataset folder.

    The folder is written under a temporary name and renamed at the end, so an
    interrupted write never leaves something that looks finished. ``meta.json`` records the
    SHA-256 of every file (checked by ``crossmodal datasets verify``).
    """
    out = check_overwrite(Path(out), overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
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


def finalize_dataset_dir(tmp: Path, out: Path, protect: tuple = ()) -> Path:
    """Record file hashes in ``tmp/meta.json`` and move ``tmp`` to ``out`` in one rename.

    An existing ``out`` is replaced only when :func:`check_overwrite` allows it (a dataset
    folder crossmodal wrote, holding neither the source nor the working directory)."""
    meta = read_meta(tmp)
    files = sorted(f for f in tmp.iterdir() if f.is_file() and f.name != "meta.json")
    meta["files"] = {f.name: file_sha256(f) for f in files}
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


def _load_array(f: Path, mode, numeric: bool = True) -> np.ndarray:
    """One ``.npy`` file, never unpickled; ``numeric``: refuse anything but numbers (extras may hold
    strings)."""
    try:
        arr = np.load(f, mmap_mode=mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{f}: unreadable or truncated ({exc})") from None
    if numeric and (not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf"):
        raise DataError(f"{f}: holds {getattr(arr, 'dtype', type(arr).__name__)} data, not numbers; "
                        "the file is damaged")
    return arr


def _check_meta(path: Path) -> dict:
    """``meta.json`` of ``path``, checked: a format this crossmodal reads, every listed file present."""
    if not (path / "meta.json").is_file():
        raise DataError(f"{path}: not a crossmodal dataset folder (no meta.json); {NOT_A_DATASET_HINT}")
    meta = read_meta(path)
    version = meta.get("format_version", 0)
    if not isinstance(version, int):
        raise DataError(f"{path / 'meta.json'}: format_version {version!r} is not a number; the folder is damaged")
    if version > FORMAT_VERSION:
        raise DataError(f"{path}: format version {meta.get('format_version')} is newer than this crossmodal reads "
                        f"({FORMAT_VERSION}); upgrade crossmodal")
    listed = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    gone = sorted(f for f in listed if not (path / f).is_file())
    if gone:
        raise DataError(f"{path}: {', '.join(gone)} listed in meta.json but missing; the dataset folder is incomplete "
                        "(restore the file or prepare the dataset again)")
    return meta


def _load_text(path: Path, mode, summary: dict):
    text = _load_array(path / "text.npy", mode) if (path / "text.npy").is_file() else None
    if text is None and (path / "text.npz").is_file():
        try:
            text = sp.load_npz(path / "text.npz")
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(f"{path / 'text.npz'}: unreadable or truncated ({exc}); "
                            "prepare the dataset again") from None
    if text is None and summary.get("text_dim"):
        raise DataError(f"{path}: no text.npy or text.npz but meta.json records {summary['text_dim']}-d text features; "
                        "the dataset folder is incomplete")
    return text


def _load_split(path: Path) -> Split:
    f = path / "split.json"
    if not f.is_file():
        raise DataError(f"{f}: missing; the dataset folder is incomplete")
    d = read_json(f, hint=DAMAGED)
    try:
        return Split.from_dict(d)
    except DataError as exc:
        raise DataError(f"{path}/{exc}") from None


def load_dataset(path: str | os.PathLike, mmap: bool = True) -> Dataset:
    """Read a canonical dataset folder (arrays memory-mapped when ``mmap``).

    Every damage gives one :class:`DataError` naming the file: a missing or unreadable file,
    a ``meta.json`` / ``split.json`` that is not UTF-8 JSON, a truncated ``.npy`` / ``.npz``, an
    object-dtype array (never unpickled), a file ``meta.json`` lists that is gone (``labels.npy``,
    ``text.npz`` ...), an ``ids.txt`` with the wrong number of lines, or a ``split.json`` with
    non-integer or repeated indices.
    """
    path = Path(path)
    meta = _check_meta(path)
    summary = meta.get("summary") if isinstance(meta.get("summary"), dict) else {}
    mode = "r" if mmap else None
    if not (path / "image.npy").is_file():
        raise DataError(f"{path / 'image.npy'}: missing; the dataset folder is incomplete")
    image = _load_array(path / "image.npy", mode)
    text = _load_text(path, mode, summary)
    labels = _load_array(path / "labels.npy", mode) if (path / "labels.npy").is_file() else None
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
    split = _load_split(path)
    extras = {f.name[len("extra_"):-len(".npy")]: _load_array(f, mode, numeric=False)
              for f in sorted(path.glob("extra_*.npy"))}
    feats = meta.get("featurizers", {})
    if not isinstance(feats, dict):
        raise DataError(f"{path / 'meta.json'}: featurizers must be an object; the folder is damaged")
    where = f"{path / 'meta.json'}: featurizers"
    featurizers = {k: featurizer_from_dict(v, where=f"{where}.{k}") for k, v in feats.items()}
    try:
        return Dataset(data=data, split=split, name=str(meta.get("name", path.name)), featurizers=featurizers,
                       extras=extras, root=str(path.resolve()))
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
