"""Correlation graph of UGACH: kNN within each modality, joined across modalities.

For each training item i, :func:`knn` finds its k nearest items in image space and in text
space (the item itself first). The cross-modal neighbour set of i is the first
``n_image`` image-space neighbours followed by the first ``n_text`` text-space neighbours
(duplicates removed): for the query "image i" these texts are its true pairs, and for the
query "text i" these images are (UGACH official code: K=10, 5 + 5, Euclidean).

Memory is never quadratic: exact distances are computed in row blocks on the torch device
(CUDA when present), ``block x N`` at a time, and only the k best are kept. Exact kNN costs
2 N^2 D flops (3e14 at 190,000 x 4096: minutes on a GPU, most of an hour on 2 CPU cores), so
:func:`knn_ivf` offers an approximate path for large N on a CPU: PCA to ``pca_dim`` then a
FAISS inverted-file index searched with ``nprobe`` lists (``method="ivf"``; recall measured
in ``benchmarks/bench_ugach.py graph``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from crossmodal.errors import DataError


def knn(X, k: int, metric: str = "euclidean", device=None, block_elems: int = 1 << 24,
        progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every row of ``X (N, D)`` among the rows of ``X``.

    Returns ``(idx (N, k) int64, dist (N, k) float32)``, nearest first; each item is its own
    first neighbour. ``metric``: "euclidean" (squared distances are returned) or "cosine"
    (returns 1 - cosine similarity).
    """
    if metric not in ("euclidean", "cosine"):
        raise DataError(f"knn: metric must be 'euclidean' or 'cosine', got {metric!r}")
    device = torch.device(device or "cpu")
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
    n = Xt.shape[0]
    if not 0 < k <= n:
        raise DataError(f"knn: k must be in 1..{n}, got {k}")
    if metric == "cosine":
        Xt = torch.nn.functional.normalize(Xt, dim=1)
    sq = (Xt * Xt).sum(1)
    step = max(1, block_elems // n)
    idx = torch.empty((n, k), dtype=torch.int64)
    dist = torch.empty((n, k), dtype=torch.float32)
    rows = range(0, n, step)
    if progress:
        from crossmodal.progress import tqdm

        rows = tqdm(rows, desc="kNN", unit="block", leave=False)
    for s in rows:
        e = min(n, s + step)
        d = sq[s:e, None] - 2.0 * (Xt[s:e] @ Xt.T) + sq[None, :]
        d.clamp_(min=0)
        ar = torch.arange(e - s, device=device)
        d[ar, ar + s] = -1.0  # the item itself is always its first neighbour
        v, i = torch.topk(d, k, dim=1, largest=False, sorted=True)
        v[:, 0] = 0.0
        if metric == "cosine":
            v = v / 2.0  # ||a - b||^2 = 2 (1 - cos) on unit vectors
        idx[s:e], dist[s:e] = i.cpu(), v.cpu()
    return idx.numpy(), dist.numpy()


def knn_ivf(X, k: int, pca_dim: int = 128, nlist: int | None = None, nprobe: int = 16, train_size: int = 50000,
            seed: int = 0, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Approximate Euclidean kNN with FAISS: PCA to ``pca_dim`` dimensions (fitted on a
    sample), an IVF-Flat index with ``nlist`` lists (default 4 sqrt(N)), ``nprobe`` lists
    searched per item. Same output as :func:`knn`; the item itself is forced first."""
    try:
        import faiss
    except ImportError:
        raise DataError("knn: method='ivf' needs faiss (pip install faiss-cpu); use method='exact'") from None
    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    if not 0 < k <= n:
        raise DataError(f"knn: k must be in 1..{n}, got {k}")
    rng = np.random.default_rng(seed)
    sample = X[rng.choice(n, size=min(n, train_size), replace=False)]
    if pca_dim and pca_dim < d:
        pca = faiss.PCAMatrix(d, pca_dim)
        pca.train(sample)
        X, sample = pca.apply(X), pca.apply(sample)
    nlist = nlist or max(1, min(int(4 * np.sqrt(n)), len(sample) // 39))
    quantizer = faiss.IndexFlatL2(X.shape[1])
    index = faiss.IndexIVFFlat(quantizer, X.shape[1], nlist)
    index.train(sample)
    index.add(X)
    index.nprobe = nprobe
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float32)
    rows = range(0, n, 65536)
    if progress:
        from crossmodal.progress import tqdm

        rows = tqdm(rows, desc="kNN (ivf)", unit="block", leave=False)
    for s in rows:
        e = min(n, s + 65536)
        D, I = index.search(X[s:e], k + 1)
        self_id = np.arange(s, e)[:, None]
        keep = I != self_id
        # drop the item itself wherever it was found, then put it first
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k - 1]
        idx[s:e, 0], dist[s:e, 0] = np.arange(s, e), 0.0
        idx[s:e, 1:] = np.take_along_axis(I, order, 1)
        dist[s:e, 1:] = np.take_along_axis(D, order, 1)
    return idx, dist


@dataclass
class CorrelationGraph:
    """Cross-modal neighbour sets as a padded array.

    ``neighbours[i, :counts[i]]`` are the distinct neighbours of item i (ascending ids);
    the rest of the row is -1.
    """

    neighbours: np.ndarray
    counts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.neighbours.shape[0])

    def to_sparse(self) -> sp.csr_matrix:
        """``(N, N)`` 0/1 CSR adjacency: row i marks i's neighbours."""
        rows = np.repeat(np.arange(self.n), self.counts)
        cols = self.neighbours[self.neighbours >= 0]
        return sp.csr_matrix((np.ones(len(cols), dtype=np.uint8), (rows, cols)), shape=(self.n, self.n))


def join_neighbours(lists: list[np.ndarray]) -> CorrelationGraph:
    """Union of neighbour lists per row, duplicates removed (vectorised)."""
    cat = np.concatenate(lists, axis=1).astype(np.int64)
    n, width = cat.shape
    cat.sort(axis=1)
    dup = np.zeros_like(cat, dtype=bool)
    dup[:, 1:] = cat[:, 1:] == cat[:, :-1]
    cat[dup] = np.iinfo(np.int64).max
    cat.sort(axis=1)
    counts = width - dup.sum(axis=1)
    cat[cat == np.iinfo(np.int64).max] = -1
    keep = int(counts.max())
    return CorrelationGraph(neighbours=cat[:, :keep], counts=counts.astype(np.int64))


def correlation_graph(image, text, k: int = 10, n_image: int = 5, n_text: int = 5, metric: str = "euclidean",
                      device=None, progress: bool = False, method: str = "exact") -> CorrelationGraph:
    """UGACH's correlation graph over paired training items (``image (N, Di)``, ``text (N, Dt)``).

    ``method``: "exact" (blocked, on ``device``) or "ivf" (approximate, FAISS, Euclidean only).
    """
    if not (0 < n_image <= k and 0 <= n_text <= k):
        raise DataError(f"graph: need 0 < n_image <= k and 0 <= n_text <= k "
                        f"(k={k}, n_image={n_image}, n_text={n_text})")
    if method not in ("exact", "ivf"):
        raise DataError(f"graph: method must be 'exact' or 'ivf', got {method!r}")
    if method == "ivf" and metric != "euclidean":
        raise DataError("graph: method='ivf' supports the euclidean metric only")

    def neighbours(X):
        if method == "ivf":
            return knn_ivf(X, k, progress=progress)[0]
        return knn(X, k, metric=metric, device=device, progress=progress)[0]

    lists = [neighbours(image)[:, :n_image]]
    if n_text:
        lists.append(neighbours(text)[:, :n_text])
    return join_neighbours(lists)
