"""UGACH graph quality on a dataset's training pairs (labels used only as a diagnostic).

For every training item i and its k nearest neighbours (the item itself excluded) in image
space and in text space, the fraction of neighbours that share a label with i (any label, for
multi-label sets); chance is the probability that a random other training item does. Then the
graph UGACH trains on (the union of the first ``n_image`` image-space and ``n_text`` text-space
neighbours, the item itself included in each list, as :func:`crossmodal.graph.correlation_graph`
builds it): its purity over the non-self pairs, its mean size, and how concentrated the
in-degrees are (ties among identical features, e.g. toy's 9-word bags, can make hubs).
Usage::

    OMP_NUM_THREADS=1 python benchmarks/ugach_graph.py --dataset toy
    OMP_NUM_THREADS=1 python benchmarks/ugach_graph.py --dataset wiki --root /work/shared/data/wiki
"""
from __future__ import annotations

import argparse

import numpy as np

from crossmodal.data import get_dataset
from crossmodal.graph import correlation_graph, knn

ROOTS = {"wiki": "/work/shared/data/wiki"}


def precision_at(idx: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of the first ``k`` non-self neighbours ``idx (N, >k) int64`` sharing a label."""
    nb = idx[:, 1:k + 1]
    return float(((labels[:, None, :] & labels[nb]).any(2)).mean())


def zscore(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(0)) / np.maximum(X.std(0), 1e-8)


def graph_stats(image: np.ndarray, text: np.ndarray, labels: np.ndarray, n_image: int, n_text: int,
                metric: str) -> dict:
    """Purity of UGACH's correlation graph: share of its non-self pairs that share a label, mean
    non-self neighbours per item, and the share of all pair slots that point at the 1 % most
    frequent targets (1 % would be no concentration)."""
    g = correlation_graph(image, text, k=max(n_image, n_text, 1), n_image=n_image, n_text=n_text, metric=metric)
    n = len(labels)
    rows = np.repeat(np.arange(n), g.neighbours.shape[1]).reshape(g.neighbours.shape)
    ok = (g.neighbours >= 0) & (g.neighbours != rows)
    src, dst = rows[ok], g.neighbours[ok]
    pure = float((labels[src] & labels[dst]).any(1).mean())
    indeg = np.bincount(dst, minlength=n)
    top = np.sort(indeg)[::-1][:max(1, n // 100)].sum() / max(1, len(dst))
    return {"purity": pure, "size": len(dst) / n, "top1pct": float(top)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="wiki")
    ap.add_argument("--root", default=None, help="data folder (default: /work/shared/data/wiki for wiki)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ds = get_dataset(args.dataset, root=args.root or ROOTS.get(args.dataset), seed=args.seed)
    tr = ds.part("train")
    lab = tr.labels.astype(bool)
    same = (lab.astype(np.float64) @ lab.T.astype(np.float64) > 0)
    n = len(lab)
    chance = (same.sum() - n) / (n * (n - 1))
    ks = (1, 2, 4, 5, 10, 20, 50)
    print(f"{args.dataset} training pairs: {n}, chance (random other item shares a label): {chance:.3f}")
    image, text = tr.image.astype(np.float32), tr.text_dense().astype(np.float32)
    spaces = {
        "image euclidean": (image, "euclidean"),
        "image cosine": (image, "cosine"),
        "image zscore euclidean": (zscore(image), "euclidean"),
        "text euclidean": (text, "euclidean"),
        "text cosine": (text, "cosine"),
        "text zscore euclidean": (zscore(text), "euclidean"),
    }
    print("space".ljust(26) + "".join(f"k={k}".rjust(8) for k in ks))
    for name, (X, metric) in spaces.items():
        idx, _ = knn(X, max(ks) + 1, metric=metric)
        print(name.ljust(26) + "".join(f"{precision_at(idx, lab, k):8.3f}" for k in ks))
    uniq = len(np.unique(text, axis=0))
    print(f"distinct text vectors: {uniq} of {n}")
    print("graph (n_image, n_text, metric)".ljust(34) + "purity".rjust(8) + "size".rjust(8) + "top1%".rjust(8))
    for n_img, n_txt in ((5, 5), (1, 5), (1, 10), (1, 20), (5, 0), (10, 0), (2, 5), (3, 3), (5, 10), (10, 10)):
        for metric in ("euclidean", "cosine"):
            s = graph_stats(image, text, lab, n_img, n_txt, metric)
            print(f"({n_img}, {n_txt}, {metric})".ljust(34) + f"{s['purity']:8.3f}{s['size']:8.2f}{s['top1pct']:8.3f}")


if __name__ == "__main__":
    main()
