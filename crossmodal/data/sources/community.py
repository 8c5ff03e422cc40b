"""The community ``.mat`` releases of the benchmarks (MIRFlickr-25K, NUS-WIDE, ...): found by their
variables, not their file names (``XAll`` image features, ``IAll`` raw images, ``YAll`` tag vectors,
``LAll`` labels), so renamed files work.

:func:`load_source` loads a benchmark for training straight from these files (or from a folder
``crossmodal datasets prepare`` wrote), with the protocol's seeded split; nothing is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from crossmodal.data.folder import load_dataset
from crossmodal.data.readers.mat import mat_variables, read_mat_variable
from crossmodal.data.sources.spec import SourceSpec
from crossmodal.data.types import Dataset, PairedData
from crossmodal.errors import DataError

IMAGE_KEYS = ("XAll", "X", "I_all", "image_features")
RAW_IMAGE_KEYS = ("IAll", "images")
TEXT_KEYS = ("YAll", "Y", "T_all", "text_features", "tags")
LABEL_KEYS = ("LAll", "L", "L_all", "labels")
ROLES = (("image", IMAGE_KEYS), ("raw_image", RAW_IMAGE_KEYS), ("text", TEXT_KEYS), ("labels", LABEL_KEYS))


def find_community_files(root: Path) -> dict[str, tuple[Path, str]]:
    """``{"image"|"raw_image"|"text"|"labels": (file, variable)}`` for the .mat files in
    ``root`` (and one level below), recognised by their variables."""
    found: dict[str, tuple[Path, str]] = {}
    files = sorted(root.glob("*.mat")) + sorted(root.glob("*/*.mat"))
    for f in files:
        names = mat_variables(f)
        for role, keys in ROLES:
            for k in keys:
                if k in names and role not in found:
                    found[role] = (f, k)
    return found


def _orient(a: np.ndarray, n: int | None, what: str) -> np.ndarray:
    """``a`` with items as rows: transposed when its columns, not its rows, count ``n``."""
    if a.ndim != 2:
        raise DataError(f"{what}: expected a 2-D matrix, got shape {a.shape}")
    if n is not None and a.shape[0] != n and a.shape[1] == n:
        return a.T
    return a


class IAllReader:
    """Raw images of a community ``IAll`` variable (MATLAB N x 3 x H x W), read in chunks:
    ``reader[s:e]`` is a list of ``(H, W, 3) uint8`` images."""

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
                self._h5 = np.ascontiguousarray(read_mat_variable(self.path, self.key).transpose(3, 2, 1, 0))
        block = np.asarray(self._h5[..., sl])  # (W, H, 3, n) as HDF5 stores MATLAB's N x 3 x H x W
        return list(block.transpose(3, 1, 0, 2).astype(np.uint8))  # -> (n, H, W, 3)


def read_community(spec: SourceSpec, root: Path, community: dict | None = None, need_features: bool = True,
                   strict_counts: bool = True, log=print) -> dict:
    """Read community ``.mat`` files: ``{"n", "labels" (N, C) uint8, "text" CSR (N, Dt),
    "image" (N, Di) float32 or None}``, oriented items-first and checked against the
    standard counts (every differing figure is named)."""
    community = find_community_files(root) if community is None else community
    expected = f"expected {spec.community_files}"
    if not community:
        raise DataError(f"{root}: no community .mat files (variables XAll/YAll/LAll); {expected}")
    missing = [r for r in ("text", "labels") if r not in community]
    if need_features and "image" not in community:
        raw_only = " -- only raw images (IAll) found; choose --image-features vgg19|clip|hf"
        missing.insert(0, "image features (XAll)" + (raw_only if "raw_image" in community else ""))
    if missing:
        raise DataError(f"{root}: community files found but no {', '.join(missing)}; {expected}")
    labels = read_mat_variable(*community["labels"])
    if labels.ndim != 2:
        raise DataError(f"{community['labels'][0]}: labels of shape {labels.shape}; expected N x C")
    if labels.shape[1] > labels.shape[0]:
        labels = labels.T  # stored transposed (C x N)
    n = labels.shape[0]
    if not np.isin(labels, (0, 1)).all():
        raise DataError(f"{community['labels'][0]}: labels are not 0/1 multi-hot")
    other = "the files come from different datasets"
    text = _orient(read_mat_variable(*community["text"]), n, "text")
    if text.shape[0] != n:
        raise DataError(f"{community['text'][0]}: {text.shape[0]} text rows but {n} label rows; {other}")
    image = None
    if need_features:
        image = _orient(read_mat_variable(*community["image"]), n, "image features").astype(np.float32)
        if image.shape[0] != n:
            raise DataError(f"{community['image'][0]}: {image.shape[0]} image rows but {n} label rows; {other}")
    spec.check_counts({"items": n, "labels": labels.shape[1], "text_dim": text.shape[1]}, strict_counts, log)
    return {"n": n, "labels": labels.astype(np.uint8), "text": sp.csr_matrix(text.astype(np.float32)), "image": image}


def load_source(spec: SourceSpec, root: str | os.PathLike | None, seed: int = 0, protocol: str | None = None,
                strict_counts: bool = True, **sizes) -> Dataset:
    """The benchmark ``spec`` as a :class:`Dataset`: from a prepared folder (``meta.json``), or
    straight from the community ``.mat`` files with the protocol's seeded split (nothing written).
    ``root`` None: ``$CROSSMODAL_DATA_ROOT/<name>``. ``sizes``: n_query, n_train, n_validation."""
    if root is None:
        env = os.environ.get("CROSSMODAL_DATA_ROOT")
        if not env:
            raise DataError(f"{spec.name}: no data folder given; pass --data-root DIR (a prepared folder or the "
                            "community .mat files)")
        root = Path(env) / spec.name
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
