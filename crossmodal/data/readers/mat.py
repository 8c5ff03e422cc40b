"""Reading paired feature files in MATLAB format, v5 (scipy) and v7.3 (HDF5 via h5py).

MATLAB stores matrices column-major; h5py therefore returns a v7.3 matrix transposed
(a 20015x1386 MATLAB matrix reads as 1386x20015). :func:`read_mat` transposes every 2-D
array of a v7.3 file back, so both versions give the MATLAB shape.

The key schemes that make paired data of these arrays are :mod:`crossmodal.data.readers.paired`.
:func:`mat_variables` lists a file's variables and shapes without reading the data (how the
community files of a benchmark are found by variable name).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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
    return {k: np.asarray(v) for k, v in raw.items()
            if not k.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "biuf"}


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


def read_mat_variable(path: Path, key: str) -> np.ndarray:
    """The numeric variable ``key`` of a ``.mat`` file (MATLAB shape)."""
    arrays = read_mat(path)
    if key not in arrays:
        raise DataError(f"{path}: variable {key!r} is not numeric")
    return arrays[key]


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
