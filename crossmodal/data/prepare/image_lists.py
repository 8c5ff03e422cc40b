"""An image-only dataset folder from image lists (``crossmodal datasets prepare imagelist``):
:func:`prepare_image_lists`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossmodal.data.folder import check_overwrite, finalize_dataset_dir, write_dataset_files
from crossmodal.data.prepare.options import PrepareOptions
from crossmodal.data.prepare.writer import featurize_into, job_fingerprint
from crossmodal.data.sources.images import parse_image_list
from crossmodal.data.types import Dataset, PairedData, Split
from crossmodal.errors import DataError

DEFAULT_VALIDATION = 500  # validation items when options.n_validation is None


def _merge_lists(parsed: dict) -> tuple[dict[str, int], list[np.ndarray], dict[str, list[int]]]:
    """One row per distinct image path over the parsed lists: ``(row of each path, labels per row,
    rows of each list)``; an image listed twice with different labels is an error."""
    index: dict[str, int] = {}
    labels: list[np.ndarray] = []
    parts: dict[str, list[int]] = {}
    for part in ("database", "query", "train"):
        if part not in parsed:
            continue
        paths, lab = parsed[part]
        rows = []
        for p, row_labels in zip(paths, lab):
            if p not in index:
                index[p] = len(index)
                labels.append(row_labels)
            elif not np.array_equal(labels[index[p]], row_labels):
                raise DataError(f"image lists: {p} has different labels in different lists")
            rows.append(index[p])
        parts[part] = rows
    return index, labels, parts


def prepare_image_lists(options: PrepareOptions, log=print, image_featurizer=None) -> Path:
    """An image-only dataset folder from ``path label-vector`` (or ``path class``) lists, the
    layout of the NUS-WIDE-21 / MS-COCO / FLICKR25K image-hashing releases and Clothing1M.

    ``options``: ``query_list`` and ``database_list`` (and optionally ``train_list``), relative to
    ``root``; the split is the lists' own (query = the query list, database = the database list,
    train = the train list or the database), with ``n_validation`` (default 500) database items
    outside train held out for model selection. Images are embedded with ``image_features``
    (default clip) or the ready-made ``image_featurizer``. Returns the folder written.
    """
    if not (options.query_list and options.database_list):
        raise DataError("imagelist needs --query-list and --database-list (and optionally --train-list)")
    name, seed = options.name, options.seed
    n_validation = DEFAULT_VALIDATION if options.n_validation is None else options.n_validation
    root, out = Path(options.root), options.out_path
    check_overwrite(out, options.overwrite, protect=(root,))
    lists = {"query": options.query_list, "database": options.database_list, "train": options.train_list}
    parsed = {k: parse_image_list(v if Path(v).is_absolute() else root / v) for k, v in lists.items() if v}
    widths = {lab.shape[1] for _, lab in parsed.values()}
    if len(widths) != 1:
        raise DataError(f"image lists: label vectors of different widths {sorted(widths)}; the lists come from "
                        "different releases")
    index, labels, parts = _merge_lists(parsed)
    files = [root / p for p in index]
    missing = [str(f) for f in files[:1000] if not f.is_file()]
    if missing:
        raise DataError(f"image lists: {len(missing)} listed image(s) not found under {root}, e.g. {missing[0]}")
    img_f = image_featurizer or options.featurizer("image", options.image_features or "clip", options.image_model)
    partial = options.partial_path
    partial.mkdir(parents=True, exist_ok=True)
    fp = job_fingerprint(name, str(root.resolve()), list(index), img_f.to_dict())
    image = featurize_into(partial, "image", files, img_f, fp, chunk=options.chunk, progress=options.progress)
    query, database = np.array(parts["query"]), np.array(parts["database"])
    train = np.array(parts.get("train", parts["database"]))
    rng = np.random.default_rng(seed)
    pool = np.setdiff1d(database, train)
    if len(pool) < n_validation:  # no room outside train: hold validation out of the training items
        validation = np.sort(rng.choice(train, size=min(n_validation, len(train) - 1), replace=False))
        train = np.setdiff1d(train, validation)
    else:
        validation = np.sort(rng.choice(pool, size=n_validation, replace=False))
    data = PairedData(image=image, labels=np.stack(labels), ids=list(index),
                      meta={"source": name, "mode": "imagelist", "root": str(root.resolve()),
                            "lists": {k: str(v) for k, v in lists.items() if v}})
    split = Split(train, validation, query, database, seed=seed, protocol="lists")
    ds = Dataset(data=data, split=split, name=name, featurizers={"image": img_f})
    write_dataset_files(ds, partial, present=("image.npy",))
    finalize_dataset_dir(partial, out, protect=(root,))
    log(f"wrote {out}: {data.n:,} images, {data.image_dim}-d features, {data.labels.shape[1]} labels; "
        f"{len(query):,} queries, {len(database):,} database, {len(train):,} train, {len(validation):,} validation")
    return out
