"""IAPR TC-12 (Grubinger et al., 2006) with the SAIAPR TC-12 segment labels (Escalante et
al., 2010): 20,000 images with English descriptions.

Standard cleaning: keep the images with a non-empty description and at least one segment
label; labels = the SAIAPR labels used by at least one kept image (255 in the standard
release), multi-hot; BoW text = the 2,912 most frequent description words (lower-cased,
stopwords removed), the dimension of the community release.

Raw layout::

    ROOT/images/<dir>/<id>.jpg
    ROOT/annotations_complete_eng/<dir>/<id>.eng    SGML with <DESCRIPTION>...</DESCRIPTION>
    ROOT/saiapr_tc-12/<dir>/labels.txt               lines "image_id segment_id label_id"
    ROOT/saiapr_tc-12/wlist.txt (or ROOT/wlist.txt)  lines "label_id label_name"

Licence: free for research (IAPR TC-12 terms). Cite: M. Grubinger et al., The IAPR TC-12
Benchmark, OntoImage 2006; H. J. Escalante et al., The segmented and annotated IAPR TC-12
benchmark, CVIU 2010.
"""

from __future__ import annotations

import re
from pathlib import Path

from crossmodal.data.sources.spec import RawCollection, SourceSpec, multi_hot, word_tokens
from crossmodal.errors import DataError

_DESC = re.compile(r"<DESCRIPTION>(.*?)</DESCRIPTION>", re.S | re.I)


def parse_raw(root: Path) -> RawCollection:
    img_dir, ann_dir, seg_dir = root / "images", root / "annotations_complete_eng", root / "saiapr_tc-12"
    for d in (img_dir, ann_dir, seg_dir):
        if not d.is_dir():
            raise DataError(f"{root}: missing {d.name}/ (expected images/, annotations_complete_eng/, saiapr_tc-12/)")
    wlist = next((p for p in (seg_dir / "wlist.txt", root / "wlist.txt") if p.is_file()), None)
    if wlist is None:
        raise DataError(f"{seg_dir}: missing wlist.txt (the label names)")
    names: dict[int, str] = {}
    for line in wlist.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1].strip()
    seg: dict[str, set] = {}
    for f in sorted(seg_dir.glob("*/labels.txt")):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                seg.setdefault(parts[0], set()).add(int(parts[2]))
    label_ids = sorted(names)
    ids, images, sentences = [], [], []
    for f in sorted(img_dir.glob("*/*.jpg")):
        ids.append(f"{f.parent.name}/{f.stem}")
        images.append(f)
        eng = ann_dir / f.parent.name / f"{f.stem}.eng"
        text = ""
        if eng.is_file():
            m = _DESC.search(eng.read_text(encoding="latin-1"))
            text = " ".join(m.group(1).split()) if m else ""
        sentences.append(text)
    labels = multi_hot([seg.get(i.split("/")[1], ()) for i in ids], label_ids)
    return RawCollection(ids=ids, images=images, tokens=word_tokens(sentences), labels=labels,
                         label_names=[names[c] for c in label_ids], sentences=sentences)


SPEC = SourceSpec(
    name="iaprtc12",
    title="IAPR TC-12: 20,000 images with descriptions, 255 labels",
    citation="M. Grubinger et al., The IAPR TC-12 Benchmark, OntoImage 2006; H. J. Escalante et al., CVIU 2010",
    licence="free for research under the IAPR TC-12 terms",
    expected={"items": 20000, "labels": 255, "text_dim": 2912},
    protocols={"unsupervised": {"query": 2000, "train": 5000, "validation": 500}},
    default_protocol="unsupervised",
    parse_raw=parse_raw,
    bow_top_k=2912,
    count_scope="labelled",
    require_token=True,
    tags=False,
    binary=False,
    keep_used_labels=True,
    community_files="iapr-tc12 XAll / YAll / LAll .mat files",
)
