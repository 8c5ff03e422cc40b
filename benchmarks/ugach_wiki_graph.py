"""UGACH graph quality on Wikipedia's training pairs (labels used only as a diagnostic).

For every training item i and its k nearest neighbours (the item itself excluded) in image
space and in text space, the fraction of neighbours that share i's class; chance is the
probability that a random other training item does. Usage::

    OMP_NUM_THREADS=1 python benchmarks/ugach_wiki_graph.py [--root /work/shared/data/wiki]
"""
from __future__ import annotations

import argparse

import numpy as np

from crossmodal.data.registry import get_dataset
from crossmodal.graph import knn


def precision_at(idx: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of the first ``k`` non-self neighbours ``idx (N, >k) int64`` sharing a label."""
    nb = idx[:, 1:k + 1]
    return float(((labels[:, None, :] & labels[nb]).any(2)).mean())


def zscore(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(0)) / np.maximum(X.std(0), 1e-8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/work/shared/data/wiki")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ds = get_dataset("wiki", root=args.root, seed=args.seed)
    tr = ds.part("train")
    lab = tr.labels.astype(bool)
    same = (lab.astype(np.float64) @ lab.T.astype(np.float64) > 0)
    n = len(lab)
    chance = (same.sum() - n) / (n * (n - 1))
    ks = (1, 2, 5, 10, 20, 50)
    print(f"wiki training pairs: {n}, chance (random other item shares the class): {chance:.3f}")
    spaces = {
        "image euclidean": (tr.image, "euclidean"),
        "image cosine": (tr.image, "cosine"),
        "image zscore euclidean": (zscore(tr.image), "euclidean"),
        "text euclidean": (tr.text_dense(), "euclidean"),
        "text cosine": (tr.text_dense(), "cosine"),
        "text zscore euclidean": (zscore(tr.text_dense()), "euclidean"),
    }
    print("space".ljust(26) + "".join(f"k={k}".rjust(8) for k in ks))
    for name, (X, metric) in spaces.items():
        idx, _ = knn(X, max(ks) + 1, metric=metric)
        print(name.ljust(26) + "".join(f"{precision_at(idx, lab, k):8.3f}" for k in ks))


if __name__ == "__main__":
    main()
