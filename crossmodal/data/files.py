"""Any paired data, no code: a paired ``.mat`` file or a folder of ``.npy`` / ``.npz`` feature
files read straight into a :class:`~crossmodal.data.core.Dataset` (``--dataset PATH``).

Key schemes, read from a ``.mat`` file's variables (v5 or v7.3) or from a folder's file stems
(``I_tr.npy``) and ``.npz`` archive keys alike:

* train/test blocks ``I_tr, T_tr, I_te, T_te`` (labels ``L_tr, L_te`` optional) -- protocol
  ``blocks`` by default: query = the test block, database = the train block;
* all items in one block ``XAll, YAll`` (``LAll`` optional) -- protocol ``random``;
* named ``image, text`` (``labels`` optional; ``text.npz`` may be a SciPy CSR matrix) -- ``random``.

Protocols: ``blocks`` (the file's own train/test blocks) or ``random`` (a seeded draw of
``n_query`` queries, default 10% capped at 2,000, database = the rest). Either way the training
side is the database (or ``n_train`` items drawn from it) and ``validation_fraction`` of it
(default 0.1; 0 trains on every pair) is held out for model selection. Labels may be class
numbers (N or N x 1) or multi-hot (N x C). Variables that no scheme reads (a third view such
as ``P_tr``) are named in :attr:`Dataset.notes` and ``meta["unused_variables"]``, never dropped
silently; ``crossmodal datasets prepare mat`` writes the canonical folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from crossmodal.data.core import Dataset, PairedData, Split, carve_validation
from crossmodal.errors import DataError

PROTOCOLS = ("blocks", "random")
SCHEMES = {
    "train/test": (("I_tr", "T_tr", "I_te", "T_te"), ("L_tr", "L_te")),
    "all": (("XAll", "YAll"), ("LAll",)),
    "named": (("image", "text"), ("labels",)),
}
SCHEME_TEXT = "I_tr/T_tr/I_te/T_te[/L_tr/L_te], XAll/YAll[/LAll] or image/text[/labels]"
NOT_A_DATASET_HINT = (
    "give a dataset name (`crossmodal datasets list`), a canonical folder (write one with `crossmodal datasets "
    "prepare NAME|mat|imagelist --out DIR`), a paired .mat file, or a folder of .npy/.npz feature files, "
    f"both with variables {SCHEME_TEXT}"
)


def read_feature_folder(path: str | os.PathLike) -> dict:
    """Arrays of a folder of ``.npy`` / ``.npz`` files: ``{stem or archive key: array}``; a SciPy
    ``save_npz`` file gives one CSR matrix under its stem. No pickle is ever loaded."""
    path = Path(path)
    out: dict = {}
    for f in sorted(path.iterdir()):
        if f.suffix not in (".npy", ".npz") or not f.is_file():
            continue
        try:
            if f.suffix == ".npy":
                items = {f.stem: np.load(f, mmap_mode="r", allow_pickle=False)}
            else:
                with np.load(f, allow_pickle=False) as z:
                    keys = set(z.files)
                    items = ({f.stem: sp.load_npz(f).tocsr()} if {"indptr", "indices", "data", "shape"} <= keys
                             else {k: z[k] for k in z.files})
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{f}: unreadable, truncated or pickled ({exc}); save plain arrays with np.save") from None
        for k, v in items.items():
            if k in out:
                raise DataError(f"{path}: array {k!r} is given twice (as {f.name} and another file); keep one")
            out[k] = v
    return out


def _orient_pair(a, b):
    """Transpose one of two matrices stored items-last so both have items as rows."""
    if a.shape[0] != b.shape[0]:
        if a.shape[0] == b.shape[1] and not sp.issparse(b):
            b = b.T
        elif a.shape[1] == b.shape[0] and not sp.issparse(a):
            a = a.T
    return a, b


def paired_from_arrays(arrays: dict, where: str, source: str = "mat") -> tuple[PairedData, dict]:
    """:class:`PairedData` from named arrays in one of :data:`SCHEMES`.

    Returns ``(data, info)``: ``info["n_train"]`` is the size of the leading train block for the
    train/test scheme (None otherwise), ``info["scheme"]`` the scheme, ``info["unused"]`` the
    variables no scheme read.
    """
    from crossmodal.data.matfile import labels_from_any

    names = ", ".join(sorted(arrays)) or "none"
    for scheme, (need, optional) in SCHEMES.items():
        if all(k in arrays for k in need):
            break
    else:
        raise DataError(f"{where}: unknown keys ({names}); expected {SCHEME_TEXT} -- rename the variables "
                        "or pass the right files")
    a = {k: arrays[k] for k in need + optional if k in arrays}
    for k, v in a.items():
        if k not in optional and (v.ndim if not sp.issparse(v) else 2) != 2:
            raise DataError(f"{where}: {k}: expected a 2-D matrix (items x features), got shape {v.shape}")
    unused = sorted(set(arrays) - set(a))
    if scheme == "train/test":
        a["I_tr"], a["T_tr"] = _orient_pair(a["I_tr"], a["T_tr"])
        a["I_te"], a["T_te"] = _orient_pair(a["I_te"], a["T_te"])
        for x, y in (("I_tr", "T_tr"), ("I_te", "T_te")):
            if a[x].shape[0] != a[y].shape[0]:
                raise DataError(f"{where}: {x} has {a[x].shape[0]} rows but {y} has {a[y].shape[0]}; rows must pair")
        if a["I_tr"].shape[1] != a["I_te"].shape[1] or a["T_tr"].shape[1] != a["T_te"].shape[1]:
            raise DataError(f"{where}: train and test blocks have different feature dimensions; the file is inconsistent")
        n_tr, n_te = a["I_tr"].shape[0], a["I_te"].shape[0]
        image = np.concatenate([np.asarray(a["I_tr"]), np.asarray(a["I_te"])]).astype(np.float32)
        text = (sp.vstack([a["T_tr"], a["T_te"]]).tocsr() if sp.issparse(a["T_tr"]) or sp.issparse(a["T_te"])
                else np.concatenate([np.asarray(a["T_tr"]), np.asarray(a["T_te"])]).astype(np.float32))
        labels = None
        if ("L_tr" in a) != ("L_te" in a):
            raise DataError(f"{where}: labels for one block only ({'L_tr' if 'L_tr' in a else 'L_te'}); give both or neither")
        if "L_tr" in a:  # oriented per block, then read jointly: class numbers map to the same columns
            blocks = []
            for k, m in (("L_tr", n_tr), ("L_te", n_te)):
                lab = np.asarray(a[k])
                if lab.ndim == 2 and lab.shape[0] != m and lab.shape[1] == m:
                    lab = lab.T
                blocks.append(lab.reshape(m, -1) if lab.ndim <= 2 and lab.size % max(m, 1) == 0 else lab)
            if blocks[0].shape[1] != blocks[1].shape[1]:
                raise DataError(f"{where}: L_tr and L_te have different numbers of classes; give labels over the same classes")
            labels = labels_from_any(np.concatenate(blocks), n_tr + n_te, "L_tr/L_te")
        n_train = n_tr
    else:
        x, y = need
        lab = optional[0]
        a[x], a[y] = _orient_pair(a[x], a[y])
        n = a[x].shape[0]
        if a[y].shape[0] != n:
            raise DataError(f"{where}: {x} has {n} rows but {y} has {a[y].shape[0]}; the files come from different datasets")
        image = np.asarray(a[x]).astype(np.float32)
        text = a[y].astype(np.float32) if sp.issparse(a[y]) else np.asarray(a[y]).astype(np.float32)
        labels = labels_from_any(a.get(lab), n, lab)
        n_train = None
    meta = {"source": source, "scheme": scheme}
    if unused:
        meta["unused_variables"] = unused
    data = PairedData(image=image, text=text, labels=labels, meta=meta)
    return data, {"n_train": n_train, "scheme": scheme, "unused": unused}


def _arrays_of(path: Path) -> dict:
    if path.is_dir():
        arrays = read_feature_folder(path)
        if not arrays:
            raise DataError(f"{path}: no meta.json and no .npy/.npz files; {NOT_A_DATASET_HINT}")
        return arrays
    if path.suffix.lower() == ".mat":
        from crossmodal.data.matfile import read_mat

        return read_mat(path)
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    raise DataError(f"{path}: not a .mat file, .npz archive or folder; {NOT_A_DATASET_HINT}")


def load_paired_path(path: str | os.PathLike, seed: int = 0, protocol: str | None = None,
                     validation_fraction: float | None = None, n_validation: int | None = None,
                     n_query: int | None = None, n_train: int | None = None) -> Dataset:
    """A paired ``.mat`` / ``.npz`` file or a feature folder as a :class:`Dataset` (see module doc)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found; {NOT_A_DATASET_HINT}")
    data, info = paired_from_arrays(_arrays_of(path), str(path), source=path.stem)
    n = data.n
    if protocol is None:
        protocol = "blocks" if info["n_train"] is not None else "random"
    if protocol not in PROTOCOLS:
        raise DataError(f"{path}: unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)} "
                        "(blocks: the file's I_tr/I_te blocks; random: a seeded draw of n_query queries)")
    if protocol == "blocks":
        if info["n_train"] is None:
            raise DataError(f"{path}: protocol 'blocks' needs train/test blocks (I_tr/I_te ...); this file has "
                            f"{info['scheme']} variables -- use protocol random")
        if n_query is not None:
            raise DataError(f"{path}: n_query does nothing under protocol 'blocks' (the queries are the test block); "
                            "drop it or use protocol random")
        database, query = np.arange(info["n_train"]), np.arange(info["n_train"], n)
    else:
        nq = int(n_query) if n_query is not None else max(1, min(2000, int(round(0.1 * n))))
        if not 0 < nq < n:
            raise DataError(f"{path}: n_query must be in 1..{n - 1}, got {nq}")
        perm = np.random.default_rng(seed).permutation(n)
        query, database = np.sort(perm[:nq]), np.sort(perm[nq:])
    side = database
    if n_train is not None:
        if int(n_train) != n_train or not 0 < int(n_train) <= len(database):
            raise DataError(f"{path}: n_train must be in 1..{len(database)}, got {n_train!r}")
        side = np.sort(np.random.default_rng(seed + 1).choice(database, size=int(n_train), replace=False))
    if n_validation is not None and validation_fraction is not None:
        raise DataError("give validation_fraction or n_validation, not both")
    train, validation = carve_validation(side, seed, fraction=0.1 if validation_fraction is None else validation_fraction,
                                         count=n_validation)
    name = protocol if (n_train, validation_fraction, n_validation) == (None, None, None) else f"{protocol}+custom"
    split = Split(train, validation, query, database, seed=seed, protocol=name)
    data.meta["root"] = str(path.resolve())
    notes = []
    if info["unused"]:
        notes.append(f"{path.name}: variable(s) {', '.join(info['unused'])} not used by the {info['scheme']} scheme "
                     f"(kept in the file; rename them to {SCHEME_TEXT} to use them)")
    return Dataset(data=data, split=split, name=path.stem, root=str(path.resolve()), notes=notes)


def is_paired_path(path: Path) -> bool:
    """A path :func:`load_paired_path` reads: a .mat / .npz file, or a folder without meta.json."""
    return (path.is_file() and path.suffix.lower() in (".mat", ".npz")) or (
        path.is_dir() and not (path / "meta.json").is_file())
