"""Reading paired feature files in MATLAB format, v5 (scipy) and v7.3 (HDF5 via h5py).

MATLAB stores matrices column-major; h5py therefore returns a v7.3 matrix transposed
(a 20015x1386 MATLAB matrix reads as 1386x20015). :func:`read_mat` transposes every 2-D
array of a v7.3 file back, so both versions give the MATLAB shape.

Key schemes understood by :func:`paired_from_mat` (see :mod:`crossmodal.data.files`):

* ``I_tr, T_tr, L_tr, I_te, T_te, L_te`` -- train/test blocks (labels optional);
* ``XAll, YAll, LAll`` -- all items in one block (the community MIRFlickr / NUS-WIDE files),
  possibly spread over several files;
* ``image, text, labels``.

Labels may be class numbers (N or Nx1) or multi-hot (NxC). Variables no scheme reads are named
in ``meta["unused_variables"]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from crossmodal.data.core import PairedData, labels_from_classes
from crossmodal.errors import DataError

def read_mat(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All numeric arrays of a ``.mat`` file, v5 or v7.3, in MATLAB's (rows, cols) shape."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path (or --root / --data-root)")
    with open(path, "rb") as fh:
        head = fh.read(128)
    if head[:8] == b"\x89HDF\r\n\x1a\n" or head.startswith(b"MATLAB 7.3"):
        return _read_v73(path)
    try:
        import scipy.io

        raw = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several types on damaged files
        raise DataError(f"{path}: not a readable MATLAB file, or truncated ({type(exc).__name__}: {exc})") from None
    return {k: np.asarray(v) for k, v in raw.items() if not k.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "biuf"}


def _read_v73(path: Path) -> dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a core dependency
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) file needs h5py: pip install h5py") from None
    out = {}
    try:
        with h5py.File(path, "r") as f:
            for key, item in f.items():
                if key.startswith("#") or not isinstance(item, h5py.Dataset) or item.dtype.kind not in "biuf":
                    continue
                arr = item[()]
                out[key] = arr.T if arr.ndim == 2 else arr
    except OSError as exc:
        raise DataError(f"{path}: HDF5 (v7.3) file is unreadable or truncated ({exc})") from None
    return out


def labels_from_any(arr: np.ndarray | None, n: int, key: str) -> np.ndarray | None:
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


def paired_from_mat(*paths: str | os.PathLike, source: str = "mat") -> tuple[PairedData, dict]:
    """Build :class:`PairedData` from one or more ``.mat`` files.

    Returns ``(data, info)`` where ``info["n_train"]`` is set for the train/test scheme
    (items ``[0, n_train)`` came from the ``*_tr`` block, the rest from ``*_te``) and
    ``info["unused"]`` names the variables no scheme read (also in ``data.meta``).
    """
    from crossmodal.data.files import paired_from_arrays

    arrays: dict[str, np.ndarray] = {}
    for p in paths:
        arrays.update(read_mat(p))
    data, info = paired_from_arrays(arrays, ", ".join(str(p) for p in paths), source=source)
    if info["n_train"] is None:
        info.pop("n_train")
    return data, info
