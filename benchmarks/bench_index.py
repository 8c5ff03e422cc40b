"""Hamming search throughput on 1M x 64-bit codes: every backend as a ratio of FAISS flat,
and the recall@100 of HNSW against exact search.

    python benchmarks/bench_index.py [--database 1000000] [--queries 200] [--bits 64]
"""

import argparse
import time

import numpy as np

from crossmodal.retrieval import HammingIndex, pack


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--k", type=int, default=100)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    centers = rng.integers(0, 2, size=(1000, args.bits))
    db = pack(centers[rng.integers(0, 1000, args.database)] ^ (rng.random((args.database, args.bits)) < 0.15))
    q = pack(centers[rng.integers(0, 1000, args.queries)] ^ (rng.random((args.queries, args.bits)) < 0.15))
    print(f"{args.database} codes x {args.bits} bits, {args.queries} queries, k={args.k}")

    rows = []
    flat = HammingIndex(args.bits, backend="faiss").add(db)
    (D0, I0), t_flat = timed(lambda: flat.search(q, args.k))
    rows.append(("faiss flat (exact)", t_flat, 1.0))
    npx = HammingIndex(args.bits, backend="numpy").add(db)
    (D1, I1), t_np = timed(lambda: npx.search(q, args.k))
    rows.append(("numpy bitwise_count (exact)", t_np, 1.0))
    same = np.array_equal(D0, D1) and np.array_equal(I0, I1)
    hn, t_build = timed(lambda: HammingIndex(args.bits, kind="hnsw", hnsw_m=16, ef_construction=40, ef_search=256).add(db))
    (D2, I2), t_hnsw = timed(lambda: hn.search(q, args.k))
    # recall@k on distances: a returned item counts when its distance is within the exact k-th distance
    recall = np.mean([np.isin(I2[i], I0[i]).mean() for i in range(len(q))])
    dist_recall = np.mean(D2 <= D0[:, -1:])
    rows.append((f"faiss HNSW (approx., build {t_build:.1f} s)", t_hnsw, recall))
    print(f"{'backend':45s} {'time':>8s} {'queries/s':>10s} {'ratio vs faiss flat':>20s}")
    for name, t, _ in rows:
        print(f"{name:45s} {t:8.3f} {len(q) / t:10.0f} {t_flat / t:19.2f}x")
    print(f"exact backends identical (distances and ids): {same}")
    print(f"HNSW recall@{args.k}: {recall:.3f} by id, {dist_recall:.3f} by distance (ties make ids ambiguous)")


if __name__ == "__main__":
    main()
