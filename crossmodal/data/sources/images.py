"""Image-only datasets for the image hashing branch (evaluated I→I).

* ``digits`` -- scikit-learn's bundled 8x8 handwritten digits (1,797 real images, 10
  classes, offline). Features: the 64 pixels scaled to [0, 1] (also the input of the
  end-to-end mode, ``image_shape: [1, 8, 8]``). Split: 500 queries, database = the other
  1,297, of which 100 are held out for validation and 1,197 train. Cite: E. Alpaydin and
  C. Kaynak, UCI Optical Recognition of Handwritten Digits (1998).
* ``cifar10`` -- CIFAR-10 from its python batches (``cifar-10-batches-py/data_batch_1..5``,
  ``test_batch``; Krizhevsky 2009). Features: the 3,072 pixels in [0, 1] (C, H, W order, the
  end-to-end input, ``image_shape: [3, 32, 32]``), or prepared features. Protocols:
  ``1k`` -- 1,000 queries (100 per class) and 5,000 training images (500 per class) drawn from
  all 60,000, database = the other 59,000 (training images included); ``10k`` -- the 10,000
  test images as queries, the 50,000 training images as database, training = the database less
  1,000 validation images. The batches are pickles; they are read with an unpickler that only
  admits NumPy arrays, lists, dicts and bytes, so a tampered file cannot run code.
* image lists -- ``path label-vector`` files (``train.txt``, ``test.txt``, ``database.txt``, the
  layout of the NUS-WIDE-21 / MS-COCO / FLICKR25K image-hashing releases) or ``path class``
  (Clothing1M): :func:`parse_image_list`; ``crossmodal datasets prepare imagelist`` embeds them.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from crossmodal.data.types import Dataset, PairedData, Split, labels_from_classes
from crossmodal.errors import DataError


def stratified_pick(labels: np.ndarray, per_class: int, rng, pool: np.ndarray) -> np.ndarray:
    """``per_class`` items of each class (single-label ``labels``) from ``pool``, sorted."""
    out = []
    for c in np.unique(labels[pool]):
        members = pool[labels[pool] == c]
        if len(members) < per_class:
            raise DataError(f"class {c} has only {len(members)} items; {per_class} needed per class")
        out.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(out))


def load_digits_dataset(seed: int = 0, n_query: int = 500, n_validation: int = 100) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    data = PairedData(image=X, labels=labels_from_classes(d.target, n_classes=10),
                      meta={"source": "digits", "label_names": [str(i) for i in range(10)],
                            "citation": "Alpaydin & Kaynak, UCI Optical Recognition of Handwritten Digits, 1998"})
    split = Split.random(data.n, n_query=int(n_query), n_validation=int(n_validation), seed=seed, protocol="digits")
    pixels = np.repeat((d.images / 16.0 * 255).astype(np.uint8)[..., None], 3, axis=-1)
    return Dataset(data=data, split=split, name="digits", extras={"pixels": pixels})


class _SafeUnpickler(pickle.Unpickler):
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise DataError(f"CIFAR batch refers to {module}.{name}; only NumPy arrays are allowed "
                        "(damaged or tampered file)")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 3072) uint8 in C,H,W order, labels (N,))`` of one python batch file."""
    if not path.is_file():
        raise DataError(f"{path}: missing CIFAR-10 batch; --data-root must hold cifar-10-batches-py/")
    try:
        with open(path, "rb") as fh:
            d = _SafeUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CIFAR batch ({exc})") from None
    try:
        x = np.asarray(d[b"data"], dtype=np.uint8)
        y = np.asarray(d[b"labels"], dtype=np.int64)
    except (KeyError, TypeError):
        raise DataError(f"{path}: a CIFAR batch needs 'data' and 'labels'") from None
    if x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
        raise DataError(f"{path}: data of shape {x.shape} with {len(y)} labels; expected N x 3072 and N labels")
    return x, y


CIFAR_PROTOCOLS = ("1k", "10k")
CIFAR_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_CITATION = "A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009"


def load_cifar10(root: str | os.PathLike | None, seed: int = 0, protocol: str = "1k", n_validation: int = 500,
                 strict_counts: bool = True) -> Dataset:
    root = root or os.environ.get("CROSSMODAL_CIFAR10")
    if root is None:
        raise DataError("cifar10: no data folder; pass --data-root DIR (holding cifar-10-batches-py/) "
                        "or set CROSSMODAL_CIFAR10")
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if protocol not in CIFAR_PROTOCOLS:
        raise DataError(f"cifar10: unknown protocol {protocol!r}; known: {', '.join(CIFAR_PROTOCOLS)}")
    parts = [read_cifar_batch(root / f"data_batch_{i}") for i in range(1, 6)] + [read_cifar_batch(root / "test_batch")]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    n_train_files = sum(len(p[0]) for p in parts[:5])
    if strict_counts and (len(X), n_train_files) != (60000, 50000):
        raise DataError(f"cifar10: expected 50,000 training + 10,000 test images, found {n_train_files:,} + "
                        f"{len(X) - n_train_files:,}")
    rng = np.random.default_rng(seed)
    everything = np.arange(len(X))
    scale = len(X) / 60000
    if protocol == "1k":
        query = stratified_pick(y, max(1, round(100 * scale)), rng, everything)
        database = np.setdiff1d(everything, query)
        train_pool = database
        validation = stratified_pick(y, max(1, round(n_validation / 10 * scale)), rng, database)
        train = stratified_pick(y, max(1, round(500 * scale)), rng, np.setdiff1d(train_pool, validation))
    else:
        query, database = np.arange(n_train_files, len(X)), np.arange(n_train_files)
        size = min(int(round(1000 * scale)) or 1, len(database) - 1)
        validation = np.sort(rng.choice(database, size=size, replace=False))
        train = np.setdiff1d(database, validation)
    data = PairedData(image=X.astype(np.float32) / 255.0, labels=labels_from_classes(y, n_classes=10),
                      meta={"source": "cifar10", "citation": CIFAR_CITATION, "label_names": list(CIFAR_LABELS)})
    split = Split(train, validation, query, database, seed=seed, protocol=f"cifar10-{protocol}")
    pixels = X.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return Dataset(data=data, split=split, name="cifar10", extras={"pixels": np.ascontiguousarray(pixels)},
                   root=str(root.resolve()))


def parse_image_list(path: str | os.PathLike, n_classes: int | None = None) -> tuple[list[str], np.ndarray]:
    """``(paths, labels (N, C) uint8)`` from a ``path l1 l2 ... lC`` (multi-hot) or
    ``path class`` file; a line that fits neither is an error naming its number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image list not found")
    paths, rows = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not all(p.lstrip("-").isdigit() for p in parts[1:]):
            raise DataError(f"{path}:{lineno}: expected 'path label...' with integer labels, got {line[:80]!r}")
        paths.append(parts[0])
        rows.append([int(p) for p in parts[1:]])
    if not rows:
        raise DataError(f"{path}: empty image list")
    widths = {len(r) for r in rows}
    if widths == {1} and (n_classes is None or n_classes > 1):
        return paths, labels_from_classes(np.array([r[0] for r in rows]), n_classes=n_classes)
    if len(widths) != 1:
        raise DataError(f"{path}: lines have {sorted(widths)} label columns; every line needs the same number")
    lab = np.array(rows)
    if not np.isin(lab, (0, 1)).all():
        raise DataError(f"{path}: multi-label vectors must be 0/1")
    return paths, lab.astype(np.uint8)
