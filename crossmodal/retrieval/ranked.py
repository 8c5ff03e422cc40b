"""Metrics of an explicit ranking: for methods whose retrieval is not a plain Hamming ranking
(URPH's graph search over codes with re-ranking by reconstructed features).

Same conventions as :mod:`crossmodal.retrieval.metrics` (relevant = shares at least one label;
a query without any relevant item scores AP 0 and is counted; mAP@k normalised by the relevant
items within the top k, or ``norm="min"``; P@k divided by min(k, database size)), plus one
for rankings that stop early: a ranking row lists database ids best first, ``-1`` pads it, and
a relevant item missing from the row counts as never retrieved. mAP@all divides by all the
relevant items of the database, so on a complete ranking it equals the metrics of
:func:`~crossmodal.retrieval.metrics.evaluate_codes`, and on a truncated one it is a lower
bound. Ties do not exist here: the order given is the order scored.
"""

from __future__ import annotations

import numpy as np

from crossmodal.errors import DataError
from crossmodal.retrieval.labels import relevance

RANKED_CONVENTION = ("explicit ranking of database ids, best first; relevant items missing from a truncated "
                     "ranking count as never retrieved (mAP@all divides by all relevant items)")


def evaluate_ranking(ranking, q_labels, db_labels, ks=(100,), norm: str = "retrieved",
                     batch_elems: int = 1 << 22) -> dict:
    """mAP@all, mAP@k and P@k of an explicit ranking.

    ranking : (Nq, L) int database ids, best first; ``-1`` marks an empty slot (at the end).
    q_labels, db_labels : (Nq, C) / (Ndb, C) multi-hot labels.
    Returns ``{"mAP@all", "mAP@k", "P@k" for each k, "n_query", "n_database", "depth"}``.
    """
    R = np.asarray(ranking)
    ql, dl = np.asarray(q_labels), np.asarray(db_labels)
    if R.ndim != 2 or not np.issubdtype(R.dtype, np.integer):
        raise DataError(f"ranking must be a 2-D integer array (queries x ranked ids), got {R.dtype} {R.shape}")
    if ql.ndim != 2 or dl.ndim != 2 or ql.shape[1] != dl.shape[1] or ql.shape[0] != R.shape[0]:
        raise DataError(f"labels: query {ql.shape}, database {dl.shape} and ranking {R.shape} do not match")
    if norm not in ("retrieved", "min"):
        raise DataError(f"norm must be 'retrieved' or 'min', got {norm!r}")
    nq, ndb, depth = R.shape[0], dl.shape[0], R.shape[1]
    if R.size and (R.max() >= ndb or R.min() < -1):
        raise DataError(f"ranking ids must be in 0..{ndb - 1} (or -1 for an empty slot)")
    ks = [int(k) for k in ks]
    if any(k <= 0 for k in ks):
        raise DataError(f"cut-offs must be positive, got {ks}")
    ap_all = np.zeros(nq)
    ap_k = {k: np.zeros(nq) for k in ks}
    p_k = {k: np.zeros(nq) for k in ks}
    step = max(1, batch_elems // max(ndb, depth, 1))
    for s in range(0, nq, step):
        e = min(nq, s + step)
        rel_all = relevance(ql[s:e], dl)  # (b, Ndb)
        n_rel = rel_all.sum(1).astype(np.float64)
        r = R[s:e]
        hit = np.take_along_axis(rel_all, np.maximum(r, 0), axis=1) & (r >= 0)  # (b, L)
        found = np.cumsum(hit, axis=1)
        prec = np.where(hit, found / np.arange(1, depth + 1), 0.0)
        ap_all[s:e] = np.where(n_rel > 0, prec.sum(1) / np.maximum(n_rel, 1), 0.0)
        for k in ks:
            kk = min(k, depth)
            f = found[:, kk - 1].astype(np.float64) if kk else np.zeros(e - s)
            denom = f if norm == "retrieved" else np.minimum(n_rel, k)
            ap_k[k][s:e] = np.where(denom > 0, prec[:, :kk].sum(1) / np.maximum(denom, 1), 0.0)
            p_k[k][s:e] = f / min(k, ndb)
    out = {"n_query": nq, "n_database": ndb, "depth": depth, "mAP@all": float(ap_all.mean())}
    for k in ks:
        out[f"mAP@{k}"] = float(ap_k[k].mean())
        out[f"P@{k}"] = float(p_k[k].mean())
    return out


def hamming_ranking(q_codes, db_codes, bits: int) -> np.ndarray:
    """The full Hamming ranking ``(Nq, Ndb) int64`` of packed codes, ties broken by database
    index -- the ranking :func:`~crossmodal.retrieval.metrics.evaluate_codes` scores."""
    from crossmodal.retrieval.codes import hamming_distance

    return np.argsort(hamming_distance(q_codes, db_codes), axis=1, kind="stable")
