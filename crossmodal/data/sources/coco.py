"""MS-COCO 2014 (Lin et al., ECCV 2014) as a cross-modal benchmark.

Standard cleaning: train2014 + val2014 (123,287 images), minus the images without any
instance annotation -> 122,218 pairs; labels = the 80 object categories (multi-hot, from
``instances_*.json``); text = the image's captions joined. BoW text: the 2,000 most frequent
words (lower-cased, stopwords removed) over the kept captions; or a sentence / CLIP text
embedding with ``--text-features clip|hf``.

Raw layout (the official 2014 zips)::

    ROOT/annotations/instances_train2014.json, instances_val2014.json
    ROOT/annotations/captions_train2014.json,  captions_val2014.json
    ROOT/train2014/*.jpg, ROOT/val2014/*.jpg

Licence: annotations CC BY 4.0, images under their Flickr licences (see cocodataset.org).
Cite: T.-Y. Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014.
"""

from __future__ import annotations

from pathlib import Path

from crossmodal.data.sources.spec import RawCollection, SourceSpec, multi_hot, word_tokens
from crossmodal.errors import DataError
from crossmodal.stored import read_json

SPLITS = ("train2014", "val2014")


def _load_json(p: Path) -> dict:
    return read_json(p, hint=f"unpack annotations_trainval2014.zip into {p.parent.parent}")


def parse_raw(root: Path) -> RawCollection:
    ann = root / "annotations"
    ids, images, captions, label_sets = [], [], [], []
    categories: dict[int, str] = {}
    for split in SPLITS:
        inst = _load_json(ann / f"instances_{split}.json")
        caps = _load_json(ann / f"captions_{split}.json")
        for c in inst.get("categories", []):
            categories[int(c["id"])] = c["name"]
        by_img_lab: dict[int, set] = {}
        for a in inst.get("annotations", []):
            by_img_lab.setdefault(int(a["image_id"]), set()).add(int(a["category_id"]))
        by_img_cap: dict[int, list] = {}
        for a in caps.get("annotations", []):
            by_img_cap.setdefault(int(a["image_id"]), []).append(a["caption"].strip())
        for im in sorted(inst.get("images", []), key=lambda d: int(d["id"])):
            i = int(im["id"])
            ids.append(f"{split}/{i}")
            images.append(root / split / im["file_name"])
            captions.append(" ".join(by_img_cap.get(i, [])))
            label_sets.append(by_img_lab.get(i, set()))
    if not categories:
        raise DataError(f"{ann}: the instance files list no categories")
    cat_ids = sorted(categories)
    return RawCollection(ids=ids, images=images, tokens=word_tokens(captions), labels=multi_hot(label_sets, cat_ids),
                         label_names=[categories[c] for c in cat_ids], sentences=captions)


SPEC = SourceSpec(
    name="coco",
    title="MS-COCO 2014: 122,218 image-caption pairs, 80 labels",
    citation="T.-Y. Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014",
    licence="annotations CC BY 4.0; images under their Flickr licences",
    expected={"items": 122218, "labels": 80, "text_dim": 2000},
    protocols={"unsupervised": {"query": 5000, "train": 10000, "validation": 500}},
    default_protocol="unsupervised",
    parse_raw=parse_raw,
    bow_min_count=1,
    bow_top_k=2000,
    count_scope="labelled",
    require_token=False,
    tags=False,
    binary=False,
    community_files="coco XAll / YAll / LAll .mat files",
)
