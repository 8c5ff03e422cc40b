"""A path given as ``--dataset PATH`` that is not a canonical folder: a paired ``.mat`` / ``.npz``
file or a folder of ``.npy`` / ``.npz`` feature files, read into a
:class:`~crossmodal.data.types.Dataset` with no code (:func:`load_paired_path`).

The arrays follow one of the key schemes of :mod:`crossmodal.data.readers.paired`. Protocols:
``blocks`` (the file's own train/test blocks: query = the test block, database = the train block;
the default for the train/test scheme) or ``random`` (a seeded draw of ``n_query`` queries,
default 10% capped at 2,000, database = the rest; the default otherwise). Either way the training
side is the database (or ``n_train`` items drawn from it) and ``validation_fraction`` of it
(default 0.1; 0 trains on every pair) is held out for model selection. Variables that no scheme
reads are named in :attr:`Dataset.notes` too; ``crossmodal datasets prepare mat`` writes the
canonical folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from crossmodal.data.readers.mat import read_mat
from crossmodal.data.readers.paired import (
    NOT_A_DATASET_HINT,
    SCHEME_TEXT,
    paired_from_arrays,
    read_feature_folder,
)
from crossmodal.data.types import Dataset, Split, carve_validation
from crossmodal.errors import DataError

PROTOCOLS = ("blocks", "random")


def _arrays_of(path: Path) -> dict:
    """The named arrays of a ``.mat`` file, an ``.npz`` archive or a folder of feature files."""
    if path.is_dir():
        arrays = read_feature_folder(path)
        if not arrays:
            raise DataError(f"{path}: no meta.json and no .npy/.npz files; {NOT_A_DATASET_HINT}")
        return arrays
    if path.suffix.lower() == ".mat":
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
            raise DataError(f"{path}: n_query does nothing under protocol 'blocks' (the queries are the test "
                            "block); drop it or use protocol random")
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
    fraction = 0.1 if validation_fraction is None else validation_fraction
    train, validation = carve_validation(side, seed, fraction=fraction, count=n_validation)
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
