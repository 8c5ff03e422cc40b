"""Paired data from named arrays: the key schemes of ``.mat`` files, ``.npz`` archives and folders
of ``.npy`` / ``.npz`` feature files, read into a :class:`~crossmodal.data.types.PairedData`.

Key schemes, read from a ``.mat`` file's variables (v5 or v7.3) or from a folder's file stems
(``I_tr.npy``) and ``.npz`` archive keys alike (:data:`SCHEMES`):

* train/test blocks ``I_tr, T_tr, I_te, T_te`` (labels ``L_tr, L_te`` optional);
* all items in one block ``XAll, YAll`` (``LAll`` optional; the community MIRFlickr / NUS-WIDE
  files), possibly spread over several files;
* named ``image, text`` (``labels`` optional; ``text.npz`` may be a SciPy CSR matrix).

A matrix stored items-last is transposed to match its partner. Labels may be class numbers
(N or N x 1) or multi-hot (N x C). Variables that no scheme reads (a third view such as
``P_tr``) are named in ``meta["unused_variables"]``, never dropped silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from crossmodal.data.readers.mat import read_mat
from crossmodal.data.types import PairedData, labels_from_any
from crossmodal.errors import DataError

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


def _train_test(a: dict, where: str) -> tuple:
    """``(image, text, labels, n_train)`` of the train/test scheme's blocks ``a``."""
    a["I_tr"], a["T_tr"] = _orient_pair(a["I_tr"], a["T_tr"])
    a["I_te"], a["T_te"] = _orient_pair(a["I_te"], a["T_te"])
    for x, y in (("I_tr", "T_tr"), ("I_te", "T_te")):
        if a[x].shape[0] != a[y].shape[0]:
            raise DataError(f"{where}: {x} has {a[x].shape[0]} rows but {y} has {a[y].shape[0]}; rows must pair")
    if a["I_tr"].shape[1] != a["I_te"].shape[1] or a["T_tr"].shape[1] != a["T_te"].shape[1]:
        raise DataError(f"{where}: train and test blocks have different feature dimensions; "
                        "the file is inconsistent")
    n_tr, n_te = a["I_tr"].shape[0], a["I_te"].shape[0]
    image = np.concatenate([np.asarray(a["I_tr"]), np.asarray(a["I_te"])]).astype(np.float32)
    if sp.issparse(a["T_tr"]) or sp.issparse(a["T_te"]):
        text = sp.vstack([a["T_tr"], a["T_te"]]).tocsr()
    else:
        text = np.concatenate([np.asarray(a["T_tr"]), np.asarray(a["T_te"])]).astype(np.float32)
    labels = None
    if ("L_tr" in a) != ("L_te" in a):
        raise DataError(f"{where}: labels for one block only ({'L_tr' if 'L_tr' in a else 'L_te'}); "
                        "give both or neither")
    if "L_tr" in a:  # oriented per block, then read jointly: class numbers map to the same columns
        blocks = []
        for k, m in (("L_tr", n_tr), ("L_te", n_te)):
            lab = np.asarray(a[k])
            if lab.ndim == 2 and lab.shape[0] != m and lab.shape[1] == m:
                lab = lab.T
            blocks.append(lab.reshape(m, -1) if lab.ndim <= 2 and lab.size % max(m, 1) == 0 else lab)
        if blocks[0].shape[1] != blocks[1].shape[1]:
            raise DataError(f"{where}: L_tr and L_te have different numbers of classes; "
                            "give labels over the same classes")
        labels = labels_from_any(np.concatenate(blocks), n_tr + n_te, "L_tr/L_te")
    return image, text, labels, n_tr


def _one_block(a: dict, x: str, y: str, lab: str, where: str) -> tuple:
    """``(image, text, labels)`` of a scheme with every item in one block: ``a[x]``, ``a[y]``, ``a[lab]``."""
    a[x], a[y] = _orient_pair(a[x], a[y])
    n = a[x].shape[0]
    if a[y].shape[0] != n:
        raise DataError(f"{where}: {x} has {n} rows but {y} has {a[y].shape[0]}; "
                        "the files come from different datasets")
    image = np.asarray(a[x]).astype(np.float32)
    text = a[y].astype(np.float32) if sp.issparse(a[y]) else np.asarray(a[y]).astype(np.float32)
    return image, text, labels_from_any(a.get(lab), n, lab)


def paired_from_arrays(arrays: dict, where: str, source: str = "mat") -> tuple[PairedData, dict]:
    """:class:`PairedData` from named arrays in one of :data:`SCHEMES`.

    Returns ``(data, info)``: ``info["n_train"]`` is the size of the leading train block for the
    train/test scheme (None otherwise), ``info["scheme"]`` the scheme, ``info["unused"]`` the
    variables no scheme read.
    """
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
        image, text, labels, n_train = _train_test(a, where)
    else:
        image, text, labels = _one_block(a, *need, optional[0], where)
        n_train = None
    meta = {"source": source, "scheme": scheme}
    if unused:
        meta["unused_variables"] = unused
    data = PairedData(image=image, text=text, labels=labels, meta=meta)
    return data, {"n_train": n_train, "scheme": scheme, "unused": unused}


def paired_from_mat(*paths: str | os.PathLike, source: str = "mat") -> tuple[PairedData, dict]:
    """Build :class:`PairedData` from one or more ``.mat`` files.

    Returns ``(data, info)`` where ``info["n_train"]`` is set for the train/test scheme
    (items ``[0, n_train)`` came from the ``*_tr`` block, the rest from ``*_te``) and
    ``info["unused"]`` names the variables no scheme read (also in ``data.meta``).
    """
    arrays: dict[str, np.ndarray] = {}
    for p in paths:
        arrays.update(read_mat(p))
    data, info = paired_from_arrays(arrays, ", ".join(str(p) for p in paths), source=source)
    if info["n_train"] is None:
        info.pop("n_train")
    return data, info
