import numpy as np
import pytest

from crossmodal.errors import DataError
from crossmodal.graph import correlation_graph, join_neighbours, knn


def _brute_knn(X, k, metric):
    if metric == "cosine":
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
    d = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, -1)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("block_elems", [1, 500, 1 << 20])
def test_knn_matches_brute_force(rng, metric, block_elems):
    X = rng.standard_normal((120, 7))
    idx, dist = knn(X, 6, metric=metric, block_elems=block_elems)
    assert np.array_equal(idx, _brute_knn(X, 6, metric))
    assert (idx[:, 0] == np.arange(120)).all() and np.all(np.diff(dist, axis=1) >= -1e-5)


def test_join_neighbours_dedupes(rng):
    a = rng.integers(0, 30, size=(50, 5))
    b = rng.integers(0, 30, size=(50, 4))
    g = join_neighbours([a, b])
    for i in range(50):
        assert set(g.neighbours[i, :g.counts[i]].tolist()) == set(a[i]) | set(b[i])
        assert (g.neighbours[i, g.counts[i]:] == -1).all()
    assert g.to_sparse().sum() == g.counts.sum()


def test_correlation_graph_is_5_image_plus_5_text(rng):
    img, txt = rng.standard_normal((80, 6)), rng.standard_normal((80, 3))
    g = correlation_graph(img, txt, k=10, n_image=5, n_text=5)
    ref_i, ref_t = _brute_knn(img, 10, "euclidean")[:, :5], _brute_knn(txt, 10, "euclidean")[:, :5]
    for i in range(80):
        assert set(g.neighbours[i, :g.counts[i]].tolist()) == set(ref_i[i]) | set(ref_t[i])
        assert i in g.neighbours[i]  # an item is its own first neighbour in both spaces


def test_graph_bad_arguments(rng):
    with pytest.raises(DataError, match="k must be"):
        knn(rng.standard_normal((5, 2)), 6)
    with pytest.raises(DataError, match="n_image"):
        correlation_graph(rng.standard_normal((5, 2)), rng.standard_normal((5, 2)), k=3, n_image=4)


def test_ivf_knn_finds_most_true_neighbours(rng):
    pytest.importorskip("faiss")
    from crossmodal.graph import knn_ivf

    centres = rng.standard_normal((20, 32)) * 5
    X = centres[rng.integers(0, 20, 3000)] + rng.standard_normal((3000, 32))
    approx, _ = knn_ivf(X, 8, pca_dim=0, nprobe=8)
    exact, _ = knn(X, 8)
    assert (approx[:, 0] == np.arange(3000)).all()
    recall = np.mean([len(set(a[1:]) & set(b[1:])) / 7 for a, b in zip(approx, exact)])
    assert recall > 0.9
    g = correlation_graph(X, X[:, :5], method="ivf")
    assert (g.counts >= 1).all()
