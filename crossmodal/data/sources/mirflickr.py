"""MIRFlickr-25K (Huiskes & Lew, ACM MIR 2008): 25,000 Flickr images with their tags and
24 annotated concepts.

Standard cleaning (the DCMH / UGACH / DJSRH release): the 1,386-tag vocabulary is the tags
that occur at least 20 times over all 25,000 images; a pair is kept when it has at least
one of the 24 labels and at least one vocabulary tag -> 20,015 pairs, binary 1,386-d tag
vectors, 24-d multi-hot labels. (Checked on the community YAll: every row holds a tag, and
some tags occur only 17 times among the 20,015 kept pairs, so the count of 20 is over all
25,000 images.)

Community files (found by variable, any file names): ``mirflickr25k-iall-vgg.mat`` (XAll,
20,015 x 4,096 VGG19 fc7), ``mirflickr25k-yall.mat`` (YAll), ``mirflickr25k-lall.mat``
(LAll), raw images ``mirflickr25k-iall.mat`` (IAll, HDF5, N x 3 x 224 x 224).

Raw layout (as unpacked from mirflickr25k.zip and mirflickr25k_annotations_v080.zip)::

    ROOT/mirflickr/im1.jpg ... im25000.jpg
    ROOT/mirflickr/meta/tags/tags1.txt ...     one (processed) tag per line
    ROOT/mirflickr25k_annotations_v080/animals.txt ...   image numbers, one per line
                                      (the *_r1.txt "relevant" files are not used)

Licence: the images are Flickr photos under Creative Commons licences; see the dataset's
README for attribution. Cite: M. J. Huiskes and M. S. Lew, The MIR Flickr Retrieval
Evaluation, ACM MIR 2008.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from crossmodal.data.sources.spec import RawCollection, SourceSpec
from crossmodal.errors import DataError

LABELS = ["animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor", "lake", "male",
          "night", "people", "plant_life", "portrait", "river", "sea", "sky", "structures", "sunset", "transport",
          "tree", "water"]


def _find(root: Path, candidates: list[str], what: str) -> Path:
    for c in candidates:
        if (root / c).exists():
            return root / c
    raise DataError(f"{root}: no {what}; looked for {', '.join(candidates)} (the layout of the official zip files)")


def parse_raw(root: Path) -> RawCollection:
    img_dir = _find(root, ["mirflickr", "."], "image folder") if not (root / "im1.jpg").exists() else root
    if not any(img_dir.glob("im*.jpg")):
        raise DataError(f"{img_dir}: no im*.jpg images; point --root at the folder that holds mirflickr/")
    tag_dir = _find(img_dir, ["meta/tags", "tags"], "tag folder (meta/tags/tags*.txt)")
    ann_dir = None
    for c in ["mirflickr25k_annotations_v080", "annotations", "mirflickr/annotations", "."]:
        if (root / c / "animals.txt").is_file():
            ann_dir = root / c
            break
    if ann_dir is None:
        raise DataError(f"{root}: no annotation files (animals.txt ...); "
                        "unpack mirflickr25k_annotations_v080.zip there")
    numbers = sorted(int(m.group(1)) for p in img_dir.glob("im*.jpg") if (m := re.fullmatch(r"im(\d+)\.jpg", p.name)))
    pos = {k: i for i, k in enumerate(numbers)}
    labels = np.zeros((len(numbers), len(LABELS)), dtype=np.uint8)
    for j, name in enumerate(LABELS):
        f = ann_dir / f"{name}.txt"
        if not f.is_file():
            raise DataError(f"{f}: missing annotation file (all 24 concept files are needed)")
        for line in f.read_text(encoding="utf-8").split():
            k = int(line)
            if k in pos:
                labels[pos[k], j] = 1
    tokens = []
    for k in numbers:
        f = tag_dir / f"tags{k}.txt"
        tokens.append(f.read_text(encoding="utf-8", errors="replace").lower().split() if f.is_file() else [])
    return RawCollection(ids=[f"im{k}" for k in numbers], images=[img_dir / f"im{k}.jpg" for k in numbers],
                         tokens=tokens, labels=labels, label_names=list(LABELS))


SPEC = SourceSpec(
    name="mirflickr25k",
    title="MIRFlickr-25K: 20,015 image-tag pairs, 24 labels",
    citation="M. J. Huiskes and M. S. Lew, The MIR Flickr Retrieval Evaluation, ACM MIR 2008",
    licence="Flickr images under Creative Commons licences (see the dataset README); for research use",
    expected={"items": 20015, "labels": 24, "text_dim": 1386},
    protocols={
        # unsupervised cross-modal protocol (DJSRH / UCCH family): 2,000 queries, rest database,
        # 5,000 training pairs from the database
        "unsupervised": {"query": 2000, "train": 5000, "validation": 500},
        # UGACH's official split: 2,000 queries, the other 18,015 pairs as database, 15,000 of
        # them the training graph of its code
        "ugach": {"query": 2000, "train": 15000, "validation": 500},
    },
    default_protocol="unsupervised",
    parse_raw=parse_raw,
    bow_min_count=20,
    count_scope="all",
    require_token=True,
    tags=True,
    binary=True,
    community_files="mirflickr25k-iall-vgg.mat (XAll), mirflickr25k-yall.mat (YAll), mirflickr25k-lall.mat (LAll)",
)
