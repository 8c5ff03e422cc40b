"""NUS-WIDE (Chua et al., CIVR 2009): 269,648 Flickr images, 1,000 most frequent tags, 81
concepts.

Standard cleaning: keep the images labelled with at least one of the 10 (``nuswide-tc10``,
186,577 pairs) or 21 (``nuswide-tc21``, 195,834 pairs) most frequent concepts; text = the
binary 1,000-d tag vector of ``AllTags1k.txt``; labels = those 10 / 21 concepts.

Community files (found by variable): ``nus-wide-tc10-xall-vgg.mat`` (XAll), ``-yall.mat``
(YAll), ``-lall.mat`` (LAll), ``-iall.mat`` (IAll raw images).

Raw layout (the official ImageList, Groundtruth, NUS_WID_Tags and Concepts zips, images
unpacked into Flickr/)::

    ROOT/ImageList/Imagelist.txt          one path per image, e.g. C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg
    ROOT/Groundtruth/AllLabels/Labels_<concept>.txt   one 0/1 per image
    ROOT/Concepts81.txt                   the 81 concept names
    ROOT/NUS_WID_Tags/AllTags1k.txt       one row of 1,000 0/1 per image
    ROOT/NUS_WID_Tags/TagList1k.txt       the 1,000 tag names (also accepted at ROOT/)
    ROOT/Flickr/<concept>/<file>.jpg      the images

Licence: Flickr images, for research use; cite T.-S. Chua et al., NUS-WIDE: A Real-World
Web Image Database from National University of Singapore, CIVR 2009.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from crossmodal.data.sources.spec import RawCollection, SourceSpec
from crossmodal.errors import DataError


def _first(root: Path, names: list[str], what: str) -> Path:
    for n in names:
        if (root / n).is_file():
            return root / n
    raise DataError(f"{root}: missing {what}; looked for {', '.join(names)}")


def _read_lines(p: Path) -> list[str]:
    return [ln.strip() for ln in p.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]


def _read_01(p: Path, n: int, cols: int | None = None) -> np.ndarray:
    arr = np.array(p.read_text(encoding="utf-8").split(), dtype=np.uint8)
    if cols is None:
        if arr.size != n:
            raise DataError(f"{p}: {arr.size} values for {n} images in Imagelist.txt; "
                            "the files come from different releases")
        return arr
    if arr.size != n * cols:
        raise DataError(f"{p}: {arr.size} values, expected {n} rows x {cols} tags")
    return arr.reshape(n, cols)


def parse_raw(root: Path, top: int = 10) -> RawCollection:
    paths = _read_lines(_first(root, ["ImageList/Imagelist.txt", "Imagelist.txt"], "ImageList/Imagelist.txt"))
    n = len(paths)
    concept_files = ["Concepts81.txt", "ConceptsList/Concepts81.txt", "Groundtruth/Concepts81.txt"]
    concepts = _read_lines(_first(root, concept_files, "Concepts81.txt"))
    lab_dir = root / "Groundtruth" / "AllLabels"
    if not lab_dir.is_dir():
        raise DataError(f"{root}: missing Groundtruth/AllLabels/ (unpack Groundtruth.zip)")
    all_labels = np.zeros((n, len(concepts)), dtype=np.uint8)
    for j, c in enumerate(concepts):
        f = lab_dir / f"Labels_{c}.txt"
        if not f.is_file():
            raise DataError(f"{f}: missing label file for concept {c!r}")
        all_labels[:, j] = _read_01(f, n)
    order = np.argsort(-all_labels.sum(axis=0).astype(np.int64), kind="stable")[:top]
    order = np.sort(order)  # keep the concepts in their list order
    tag_names = _read_lines(_first(root, ["NUS_WID_Tags/TagList1k.txt", "TagList1k.txt"], "TagList1k.txt"))
    tags = _read_01(_first(root, ["NUS_WID_Tags/AllTags1k.txt", "AllTags1k.txt"], "AllTags1k.txt"), n, len(tag_names))
    tokens = [[tag_names[j] for j in np.flatnonzero(row)] for row in tags]
    img_root = root / "Flickr" if (root / "Flickr").is_dir() else root / "images"
    images, ids = [], []
    for p in paths:
        parts = p.replace("\\", "/").split("/")
        images.append(img_root / parts[-2] / parts[-1])
        ids.append(f"{parts[-2]}/{parts[-1]}")
    return RawCollection(ids=ids, images=images, tokens=tokens, labels=all_labels[:, order],
                         label_names=[concepts[j] for j in order], vocabulary=tag_names,
                         notes={"concepts_by_frequency": [concepts[j] for j in order]})


def _spec(top: int, items: int) -> SourceSpec:
    return SourceSpec(
        name=f"nuswide-tc{top}",
        title=f"NUS-WIDE, {top} most frequent concepts: {items:,} pairs, 1,000-d tags",
        citation="T.-S. Chua et al., NUS-WIDE: A Real-World Web Image Database from National University of "
                 "Singapore, CIVR 2009",
        licence="Flickr images; research use (see the NUS-WIDE page)",
        expected={"items": items, "labels": top, "text_dim": 1000},
        protocols={
            "unsupervised": {"query": 2100, "train": 5000, "validation": 500},
            # UGACH's official split: 1% queries rounded down (tc10: 1,865 queries, 184,712
            # database) and the 15,000-pair training graph of its code
            "ugach": {"query": items // 100, "train": 15000, "validation": 500},
        },
        default_protocol="unsupervised",
        parse_raw=partial(parse_raw, top=top),
        require_token=False,
        tags=True,
        binary=True,
        community_files=f"nus-wide-tc{top}-xall-vgg.mat (XAll), nus-wide-tc{top}-yall.mat (YAll), "
                        f"nus-wide-tc{top}-lall.mat (LAll)",
    )


SPEC_TC10 = _spec(10, 186577)
SPEC_TC21 = _spec(21, 195834)
