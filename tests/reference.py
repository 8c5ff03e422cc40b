"""Straightforward, slow, obviously correct reference implementations for the tests."""

import itertools

import numpy as np


def hamming(a_bits, b_bits):
    return int(sum(int(x) != int(y) for x, y in zip(a_bits, b_bits)))


def ap_of_order(order, rel, k=None, norm="retrieved"):
    total = sum(rel[j] for j in order)
    cut = order if k is None else order[:k]
    hits, s = 0, 0.0
    for r, j in enumerate(cut, 1):
        if rel[j]:
            hits += 1
            s += hits / r
    if k is None:
        denom = total
    elif norm == "retrieved":
        denom = hits
    else:
        denom = min(total, k)
    return s / denom if denom > 0 else 0.0


def brute_metrics(q_bits, db_bits, q_lab, db_lab, k, radius=2):
    """Per-query AP@all, AP@k, P@k and precision within radius, ranking by (distance, index)."""
    out = {"ap": [], "apk": [], "apk_min": [], "pk": [], "pr": []}
    n = len(db_bits)
    for qb, ql in zip(q_bits, q_lab):
        dist = [hamming(qb, d) for d in db_bits]
        rel = [bool(np.any(np.logical_and(ql, dl))) for dl in db_lab]
        order = sorted(range(n), key=lambda j: (dist[j], j))
        out["ap"].append(ap_of_order(order, rel))
        out["apk"].append(ap_of_order(order, rel, k=k))
        out["apk_min"].append(ap_of_order(order, rel, k=k, norm="min"))
        kk = min(k, n)
        out["pk"].append(sum(rel[j] for j in order[:kk]) / kk)
        within = [j for j in range(n) if dist[j] <= radius]
        out["pr"].append(sum(rel[j] for j in within) / len(within) if within else 0.0)
    return {key: np.array(v) for key, v in out.items()}


def expected_ap_over_ties(dist, rel):
    """Mean AP over every order consistent with ascending distance (ties in any order)."""
    n = len(dist)
    aps = [ap_of_order(list(p), rel) for p in itertools.permutations(range(n))
           if all(dist[p[i]] <= dist[p[i + 1]] for i in range(n - 1))]
    return float(np.mean(aps))
