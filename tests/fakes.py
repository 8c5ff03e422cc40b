"""Tiny fake raw datasets in each benchmark's real layout, and a tiny random CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def make_tiny_clip(d: Path) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz0123456789":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
    import torch

    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=8)
    CLIPModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    return d


def _jpeg(path: Path, seed: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path, "JPEG")


def make_mirflickr(root: Path) -> dict:
    """9 images: im7 has no label, im8 only rare tags; with min count 2 the vocabulary is
    {sky, sea, tree} and 7 pairs are kept."""
    from crossmodal.data.sources.mirflickr import LABELS

    tags = {1: ["sky", "sea"], 2: ["sky"], 3: ["sea", "rare3"], 4: ["tree", "sky"], 5: ["tree"], 6: ["sea"],
            7: ["sky"], 8: ["rare8"], 9: ["tree", "sea", "sky"]}
    for i, t in tags.items():
        _jpeg(root / "mirflickr" / f"im{i}.jpg", i)
        (root / "mirflickr" / "meta" / "tags").mkdir(parents=True, exist_ok=True)
        (root / "mirflickr" / "meta" / "tags" / f"tags{i}.txt").write_text("\n".join(t) + "\n")
    ann = root / "mirflickr25k_annotations_v080"
    ann.mkdir(parents=True)
    members = {"sky": [1, 2, 4, 9], "sea": [1, 3, 6, 8], "tree": [4, 5, 9], "animals": [2]}
    for name in LABELS:
        (ann / f"{name}.txt").write_text("\n".join(str(k) for k in members.get(name, [])) + "\n")
    (ann / "sky_r1.txt").write_text("1\n")
    return {"kept": ["im1", "im2", "im3", "im4", "im5", "im6", "im9"], "vocab": ["sea", "sky", "tree"]}


def make_nuswide(root: Path) -> dict:
    concepts = [f"c{j:02d}" for j in range(12)]
    n = 10
    paths = [f"C:\\ImageData\\Flickr\\c{i % 3:02d}\\{i:04d}_{1000 + i}.jpg" for i in range(n)]
    (root / "ImageList").mkdir(parents=True)
    (root / "ImageList" / "Imagelist.txt").write_text("\n".join(paths) + "\n")
    (root / "Concepts81.txt").write_text("\n".join(concepts) + "\n")
    lab = root / "Groundtruth" / "AllLabels"
    lab.mkdir(parents=True)
    rng = np.random.default_rng(0)
    L = (rng.random((n, 12)) < 0.3).astype(int)
    L[:, 11] = 0  # two concepts never used: not in the top 10
    L[:, 10] = 0
    L[9] = 0  # item 9 has none of the labels
    L[0, 0] = 1
    for j, c in enumerate(concepts):
        (lab / f"Labels_{c}.txt").write_text("\n".join(str(v) for v in L[:, j]) + "\n")
    tags = ["dog", "beach", "city", "night", "tree"]
    T = (rng.random((n, 5)) < 0.4).astype(int)
    (root / "NUS_WID_Tags").mkdir()
    (root / "NUS_WID_Tags" / "TagList1k.txt").write_text("\n".join(tags) + "\n")
    (root / "NUS_WID_Tags" / "AllTags1k.txt").write_text("\n".join("\t".join(str(v) for v in row) for row in T) + "\n")
    for p in paths:
        parts = p.split("\\")
        _jpeg(root / "Flickr" / parts[-2] / parts[-1], len(parts[-1]))
    keep = np.flatnonzero(L[:, :10].any(1))
    return {"kept": len(keep), "labels": L[keep][:, :10], "tags": T[keep]}


def make_coco(root: Path) -> dict:
    cats = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]
    captions = {}
    for split, ids in (("train2014", [10, 11, 12]), ("val2014", [20, 21])):
        images = [{"id": i, "file_name": f"COCO_{split}_{i:012d}.jpg"} for i in ids]
        for im in images:
            _jpeg(root / split / im["file_name"], im["id"])
        inst = [{"image_id": i, "category_id": c} for i, c in ((10, 1), (10, 18), (11, 3), (20, 18), (21, 1)) if i in ids]
        caps = [{"image_id": i, "caption": f"A {w} on the street"} for i in ids for w in (("dog", "man") if i % 2 else ("car", "dog"))]
        captions.update({i: [c["caption"] for c in caps if c["image_id"] == i] for i in ids})
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps({"images": images, "annotations": inst, "categories": cats}))
        (root / "annotations" / f"captions_{split}.json").write_text(json.dumps({"images": images, "annotations": caps}))
    return {"kept": ["train2014/10", "train2014/11", "val2014/20", "val2014/21"]}


def make_iapr(root: Path) -> dict:
    descs = {"1": "A white house with a red roof.", "2": "Tourists on a beach.", "3": "", "4": "A red bus in the city."}
    for i, d in descs.items():
        _jpeg(root / "images" / "00" / f"{i}.jpg", int(i))
        (root / "annotations_complete_eng" / "00").mkdir(parents=True, exist_ok=True)
        (root / "annotations_complete_eng" / "00" / f"{i}.eng").write_text(
            f"<DOC>\n<DOCNO>annotations/00/{i}.eng</DOCNO>\n<TITLE>t</TITLE>\n<DESCRIPTION>{d}</DESCRIPTION>\n</DOC>\n")
    seg = root / "saiapr_tc-12" / "00"
    seg.mkdir(parents=True)
    seg.joinpath("labels.txt").write_text("1 1 5\n1 2 7\n2 1 9\n3 1 5\n4 1 7\n")
    (root / "saiapr_tc-12" / "wlist.txt").write_text("5\thouse\n7\tsky\n9\tbeach\n11\tunused\n")
    return {"kept": ["00/1", "00/2", "00/4"], "labels": ["house", "sky", "beach"]}
