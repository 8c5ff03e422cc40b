"""The Wikipedia cross-modal dataset (Rasiwasia et al., ACM MM 2010).

2,866 image-text pairs from Wikipedia featured articles in 10 categories; images as 128-d
SIFT bag-of-visual-words histograms, texts as 10-d LDA topic proportions.

Files expected in the folder (``--data-root`` or ``$CROSSMODAL_WIKI``):
``raw_features.mat`` (I_tr 2173x128, T_tr 2173x10, I_te 693x128, T_te 693x10),
``trainset_txt_img_cat.list`` and ``testset_txt_img_cat.list`` (text id, image id, class
1-10, tab separated, in matrix order), ``categories.list`` (the class names).

Standard protocol: query = the 693 test pairs, database = the 2,173 training pairs;
relevant = same category. Validation (model selection) = 10% of the training pairs drawn
with the seed and held out of training, so methods train on the other 1,956 pairs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from crossmodal.data.readers.paired import paired_from_mat
from crossmodal.data.types import Dataset, Split, labels_from_classes
from crossmodal.errors import DataError

EXPECTED = {"train": 2173, "test": 693, "image_dim": 128, "text_dim": 10, "classes": 10}
CITATION = "N. Rasiwasia et al., A New Approach to Cross-Modal Multimedia Retrieval, ACM MM 2010"


def _read_list(path: Path) -> tuple[list[str], np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: missing; the wiki folder needs trainset_txt_img_cat.list and "
                        "testset_txt_img_cat.list")
    ids, cls = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 3 or not parts[2].strip().isdigit():
            raise DataError(f"{path}:{lineno}: expected 'text_id<TAB>image_id<TAB>class', got {line[:60]!r}")
        ids.append(parts[1].strip())
        cls.append(int(parts[2]))
    return ids, np.array(cls)


def resolve_root(root: str | os.PathLike | None) -> Path:
    root = root or os.environ.get("CROSSMODAL_WIKI")
    if root is None and os.environ.get("CROSSMODAL_DATA_ROOT"):
        root = Path(os.environ["CROSSMODAL_DATA_ROOT"]) / "wiki"
    if root is None:
        raise DataError("wiki: no data folder given; pass --data-root DIR (holding raw_features.mat) "
                        "or set CROSSMODAL_WIKI")
    root = Path(root)
    if (root / "wiki" / "raw_features.mat").is_file():
        root = root / "wiki"
    if not (root / "raw_features.mat").is_file():
        raise DataError(f"wiki: {root} has no raw_features.mat; point --data-root at the wiki folder")
    return root


def load_wiki(root: str | os.PathLike | None = None, seed: int = 0, validation_fraction: float = 0.1) -> Dataset:
    root = resolve_root(root)
    data, info = paired_from_mat(root / "raw_features.mat", source="wiki")
    tr_ids, tr_cls = _read_list(root / "trainset_txt_img_cat.list")
    te_ids, te_cls = _read_list(root / "testset_txt_img_cat.list")
    n_tr = info["n_train"]
    n_te = data.n - n_tr
    if (n_tr, n_te) != (len(tr_ids), len(te_ids)):
        raise DataError(
            f"wiki: raw_features.mat has {n_tr} train / {n_te} test pairs but the lists have "
            f"{len(tr_ids)} / {len(te_ids)}; the files come from different releases"
        )
    for key, want, got in (("train pairs", EXPECTED["train"], n_tr), ("test pairs", EXPECTED["test"], n_te),
                           ("image dim", EXPECTED["image_dim"], data.image_dim),
                           ("text dim", EXPECTED["text_dim"], data.text_dim)):
        if want != got:
            raise DataError(f"wiki: expected {want} {key}, found {got}; this is not the standard release")
    names_file = root / "categories.list"
    names = names_file.read_text(encoding="utf-8").split() if names_file.is_file() else [str(i) for i in range(1, 11)]
    data.labels = labels_from_classes(np.concatenate([tr_cls, te_cls]), n_classes=EXPECTED["classes"])
    data.ids = np.array(tr_ids + te_ids)
    data.meta.update(
        label_names=names,
        image_features="SIFT BoVW 128-d",
        text_features="LDA 10-d",
        citation=CITATION,
        root=str(root.resolve()),
    )
    rng = np.random.default_rng(seed)
    side = np.arange(n_tr)
    validation = np.sort(rng.choice(side, size=int(round(validation_fraction * n_tr)), replace=False))
    train = np.setdiff1d(side, validation)
    split = Split(train=train, validation=validation, query=np.arange(n_tr, data.n), database=side, seed=seed,
                  protocol="wiki-standard")
    return Dataset(data=data, split=split, name="wiki", root=str(root.resolve()))
