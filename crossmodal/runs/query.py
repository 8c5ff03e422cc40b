"""Using a finished run: load its model and data, checked against what it was trained on
(:func:`load_run`), and search it with a typed sentence or an image file (:func:`query_run`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from crossmodal.errors import CrossmodalError, DataError
from crossmodal.retrieval.index import HammingIndex
from crossmodal.runs.folder import model_identity
from crossmodal.runs.spec import RunSpec
from crossmodal.stored import read_json


def load_run(run_dir: str | os.PathLike, data_root: str | os.PathLike | None = None):
    """``(spec, hasher, dataset)`` of a finished run folder (``spec``: its :class:`RunSpec`);
    refuses data whose split hash or content fingerprint differs from the one recorded at
    training time. ``data_root`` points at a moved copy of the data: the dataset file / folder
    itself for a path dataset, else the source's folder (checked by the same split hash and
    fingerprint)."""
    from crossmodal.data import get_dataset
    from crossmodal.data import data_fingerprint
    from crossmodal.methods import load_hasher

    run_dir = Path(run_dir)
    spec = RunSpec.read(run_dir)
    if not (run_dir / "model" / "hasher.json").is_file():
        raise CrossmodalError(f"{run_dir}: the run has no trained model yet (unfinished?); resume it with "
                              f"`crossmodal train --resume {run_dir}`")
    hasher = load_hasher(run_dir / "model")
    d = spec.dataset
    name, root = d["name"], d.get("root")
    if data_root is not None:
        if d.get("kind") == "path" or (d.get("kind") is None and Path(name).is_absolute()):
            name = str(data_root)
        else:
            root = str(data_root)
    elif d.get("kind") == "path" and not Path(name).exists():
        raise DataError(f"{run_dir}: the run's data {name} is gone; point --data-root at its new place")
    ds = get_dataset(name, root=root, seed=spec.seed, **d.get("params", {}))
    ds.name = d.get("display_name") or ds.name  # a moved copy keeps the name its tables use
    if ds.split.hash != spec.split_hash:
        raise DataError(f"{run_dir}: the dataset's split hash is {ds.split.hash}, the run used {spec.split_hash}; "
                        "the data changed")
    if spec.data_fingerprint:
        got = data_fingerprint(ds.data)
        if got != spec.data_fingerprint:
            raise DataError(f"{run_dir}: the dataset's features, labels or ids changed since training (fingerprint "
                            f"{got}, the run recorded {spec.data_fingerprint}); use the data it was trained on, "
                            "or train again")
    return spec, hasher, ds


def query_run(run_dir: str | os.PathLike, text: str | None = None, image: str | None = None, k: int = 10,
              target: str | None = None, allow_download: bool = False,
              data_root: str | os.PathLike | None = None):
    """Embed a typed sentence or an image file with the run's featurizers and search the
    other modality of the database. Returns ``(modality searched, D, I, dataset)``.

    The stored featurizer settings are read through an allow-list; a model hub is reached only
    with ``allow_download`` (``--allow-download`` on this command line)."""
    from crossmodal.features import embed_query, featurizer_from_dict

    if (text is None) == (image is None):
        raise CrossmodalError("query: give exactly one of --text or --image")
    if int(k) != k or k <= 0:
        raise CrossmodalError(f"k must be a positive whole number, got {k!r}")
    run_dir = Path(run_dir)
    spec, hasher, ds = load_run(run_dir, data_root=data_root)
    feats_file = run_dir / "model" / "featurizers.json"
    feats = read_json(feats_file, default={})
    modality = "text" if text is not None else "image"
    if modality not in feats:
        raise CrossmodalError(
            f"{run_dir}: dataset {ds.name!r} ships precomputed {modality} features only, so a new {modality} "
            "cannot be embedded; train on a dataset prepared with featurizers (e.g. toy)")
    f = featurizer_from_dict(feats[modality], where=f"{feats_file}: {modality}", allow_download=bool(allow_download))
    x = embed_query(f, text if modality == "text" else image)
    codes = hasher.encode(modality, x)
    target = target or ("image" if modality == "text" else "text")
    index_file = run_dir / f"index-{target}.npz"
    index = HammingIndex.load(index_file, expect={"model": model_identity(run_dir / "model"), "modality": target})
    if not index.meta:
        print(f"crossmodal: warning: {index_file} records no model identity (an older crossmodal wrote it); it "
              "cannot be checked against this run's model", file=sys.stderr)
    if index.ntotal != len(ds.split.database):
        raise DataError(f"{index_file}: {index.ntotal} codes but the database has {len(ds.split.database)} items; "
                        "the index belongs to another run")
    D, I = index.search(codes, k)
    return target, D[0], I[0], ds
