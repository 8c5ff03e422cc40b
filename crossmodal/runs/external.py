"""Codes produced by another repository, scored by crossmodal's own evaluation.

``crossmodal import-codes`` (or :func:`import_codes`) reads one code file per modality and part
(±1 or 0/1 values, ``.npy`` or ``.mat``; rows in the order of the dataset's query and database
parts), checks every file before anything is written, and writes a run folder whose model is an
:class:`ExternalCodes` "hasher" holding the packed codes. A ``("database", "pair")`` file
(``--database-pair``) holds one code per database *pair*, coded from both modalities (the unified
convention of the CMFH / LSSH / FSH papers): the run then reports ``database codes: unified``, and
``crossmodal evaluate --database-codes per-modality`` scores the per-modality database files of the
same import, if given. ``crossmodal evaluate`` and
``crossmodal report`` treat it like any other run; its ``run.json`` records each file's path and
SHA-256 as provenance. It cannot encode new features, so ``crossmodal query`` refuses it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from crossmodal.engine import new_run_dir
from crossmodal.errors import DataError
from crossmodal.methods.external import ExternalCodes
from crossmodal.retrieval.codes import check_bits, pack
from crossmodal.runs.evaluate import write_report
from crossmodal.runs.spec import RunSpec, dataset_record, environment

PARTS = ("query", "database")
MODALITIES = ("image", "text", "pair")


def read_code_file(path: str | os.PathLike, bits: int, n_rows: int, what: str) -> np.ndarray:
    """Read ±1 or 0/1 codes ``(n_rows, bits)`` (or its transpose) from ``.npy`` / ``.mat`` and
    return them packed, ``(n_rows, ceil(bits/8))`` uint8. A ``.mat`` file must hold exactly one
    2-D numeric variable (``FILE.mat:VAR`` names one)."""
    spec = str(path)
    var = None
    if ".mat:" in spec:
        spec, var = spec.rsplit(":", 1)
    p = Path(spec)
    if not p.is_file():
        raise DataError(f"{what}: {p} not found")
    if p.suffix == ".npy":
        try:
            B = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{what}: {p} is not a plain numeric .npy ({exc})") from None
    elif p.suffix == ".mat":
        from crossmodal.data import read_mat

        found = {k: v for k, v in read_mat(p).items() if getattr(v, "ndim", 0) == 2}
        if var is not None:
            if var not in found:
                raise DataError(f"{what}: {p} has no 2-D variable {var!r} (has {', '.join(sorted(found))})")
            B = found[var]
        elif len(found) != 1:
            raise DataError(f"{what}: {p} holds {len(found)} 2-D variables ({', '.join(sorted(found))}); "
                            f"name one as {p}:VAR")
        else:
            B = next(iter(found.values()))
    else:
        raise DataError(f"{what}: {p}: use a .npy or .mat file")
    B = np.asarray(B)
    if B.ndim != 2 or B.dtype.kind not in "biuf":
        raise DataError(f"{what}: {p} holds a {B.ndim}-D {B.dtype} array; expected a 2-D numeric matrix")
    if B.shape != (n_rows, bits) and B.shape == (bits, n_rows):
        B = B.T
    if B.shape != (n_rows, bits):
        raise DataError(f"{what}: {p} has shape {B.shape}; expected ({n_rows}, {bits}): one row per item of the "
                        f"dataset part, one column per bit")
    values = set(np.unique(B).tolist())
    if not (values <= {-1, 1} or values <= {0, 1}):
        raise DataError(f"{what}: {p} holds values {sorted(values)[:5]}; codes must be ±1 or 0/1")
    return pack(B > 0)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_codes(files: dict[tuple[str, str], str], dataset: str, bits: int, name: str,
                 data_root: str | None = None, seed: int = 0, out: str | os.PathLike = "runs",
                 ks=(100,), log=print, validation_fraction: float | None = None) -> Path:
    """Turn external code files into an evaluated run folder; returns the folder.

    ``files`` maps ``(part, modality)`` (part ``query`` or ``database``, modality ``image`` or
    ``text``; or ``("database", "pair")``, one code per database pair) to a file path. Every file
    is read and checked before the folder is created. ``validation_fraction`` is the dataset's
    (recorded, so the run's split hash is that of a port trained with the same value); only the
    query and database parts are read, and they do not depend on it. The folder's ``run.json``
    has the keys of a trained run (dataset record, split hash, data fingerprint, evaluation) plus
    ``provenance``: each file's path and SHA-256.
    """
    from crossmodal.data import get_dataset
    from crossmodal.data import data_fingerprint

    bits = check_bits(bits)
    if not files:
        raise DataError("import-codes: give at least one query and one database code file")
    params = {} if validation_fraction is None else {"validation_fraction": float(validation_fraction)}
    ds = get_dataset(dataset, root=data_root, seed=seed, **params)
    h = ExternalCodes(bits, seed=seed)
    provenance = {}
    for (part, modality), path in files.items():
        if part not in PARTS or modality not in MODALITIES or (part, modality) == ("query", "pair"):
            raise DataError(f"import-codes: unknown part/modality {part}/{modality}")
        n = len(getattr(ds.split, part))
        h.add_codes(part, modality, read_code_file(path, bits, n, f"{part} {modality} codes"))
        real = Path(str(path).rsplit(".mat:", 1)[0] + (".mat" if ".mat:" in str(path) else ""))
        provenance[f"{part}_{modality}"] = {"path": str(real.resolve()), "sha256": sha256(real)}
    directions = h.directions
    if not directions:
        raise DataError("import-codes: no direction can be scored; give query codes of one modality and "
                        "database codes of the other (or the same, for I->I / T->T)")
    h.dims = {"image": 0, "text": 0}
    convention = "unified" if h.unified_codes else "per-modality"
    spec = RunSpec(method=ExternalCodes.name, label=name, bits=bits, seed=seed, config={},
                   dataset=dataset_record(dataset, ds, data_root, params), split_hash=ds.split.hash,
                   split_protocol=ds.split.protocol, data_fingerprint=data_fingerprint(ds.data),
                   evaluation={"ks": list(ks), "directions": list(directions), "database_codes": convention},
                   provenance={"imported_codes": provenance}, environment=environment())
    run_dir = new_run_dir(out, f"{name}-{ds.name}-{bits}b-s{seed}")
    spec.write(run_dir)
    h.save(run_dir / "model")
    write_report(h, ds, run_dir, ks=ks, directions=directions, fingerprint=spec.data_fingerprint,
                 database_codes=convention)
    log(f"imported {name} ({bits} bits) on {ds.name}: {', '.join(directions)} -> {run_dir}")
    return run_dir
