"""Curves over the top of each Hamming ranking: NDCG@k and recall@k (:func:`ranking_curves`), the
second pass reports ask :func:`~crossmodal.retrieval.metrics.evaluate_codes` for."""

from __future__ import annotations

import numpy as np

from crossmodal.retrieval.codes import check_codes, hamming_distance

DEFAULT_CURVE_KS = (1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def ranking_curves(q_codes, db_codes, q_labels, db_labels, bits: int, curve_ks=DEFAULT_CURVE_KS,
                   batch_elems: int = 1 << 22) -> dict:
    """NDCG@k and recall@k curves of packed codes (same ranking as :func:`evaluate_codes`).

    q_codes (Nq, ceil(bits/8)) uint8, db_codes (Ndb, ceil(bits/8)) uint8; labels (Nq, C) / (Ndb, C)
    multi-hot. Returns ``{"ndcg_curve": {"k", "ndcg"}, "recall_curve": {"k", "recall"}}``.

    * NDCG@k: graded relevance r = number of shared labels, gain 2^r - 1, discount
      log2(rank + 1), divided by the ideal DCG@k of the same query; a query with no relevant
      item scores 0 and is counted.
    * recall@k: relevant items within the top k over all relevant items, averaged over the
      queries that have a relevant item.
    """
    q_codes = check_codes(q_codes, bits, "query codes")
    db_codes = check_codes(db_codes, bits, "database codes")
    ql, dl = np.asarray(q_labels, dtype=np.float32), np.asarray(db_labels, dtype=np.float32)
    nq, ndb = q_codes.shape[0], db_codes.shape[0]
    ks = np.array(sorted({min(int(k), ndb) for k in curve_ks}), dtype=np.int64)
    kmax = int(ks[-1])
    discount = 1.0 / np.log2(np.arange(2, kmax + 2))
    ndcg_sum = np.zeros(len(ks))
    rec_sum = np.zeros(len(ks))
    n_with = 0
    step = max(1, batch_elems // max(ndb, 1))
    for s in range(0, nq, step):
        e = min(nq, s + step)
        grade = np.rint(ql[s:e] @ dl.T)  # (b, Ndb) shared labels
        # stable ranking of the top kmax: key = distance, then index; a partial sort, no full argsort
        key = hamming_distance(q_codes[s:e], db_codes).astype(np.int64) * ndb + np.arange(ndb)
        if kmax < ndb:
            top = np.argpartition(key, kmax - 1, axis=1)[:, :kmax]
            order = np.take_along_axis(top, np.argsort(np.take_along_axis(key, top, axis=1), axis=1), axis=1)
        else:
            order = np.argsort(key, axis=1)
        ranked = np.take_along_axis(grade, order, axis=1)
        dcg = np.cumsum((np.exp2(ranked) - 1.0) * discount, axis=1)[:, ks - 1]
        ideal_top = -np.sort(-grade, axis=1)[:, :kmax] if kmax < ndb else -np.sort(-grade, axis=1)
        idcg = np.cumsum((np.exp2(ideal_top) - 1.0) * discount[: ideal_top.shape[1]], axis=1)[:, ks - 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            ndcg_sum += np.where(idcg > 0, dcg / idcg, 0.0).sum(axis=0)
        nrel = (grade > 0).sum(axis=1)
        has = nrel > 0
        found = np.cumsum(ranked > 0, axis=1)[:, ks - 1]
        rec_sum += (found[has] / nrel[has, None]).sum(axis=0)
        n_with += int(has.sum())
    return {"ndcg_curve": {"k": ks.tolist(), "ndcg": (ndcg_sum / max(nq, 1)).tolist()},
            "recall_curve": {"k": ks.tolist(), "recall": (rec_sum / max(n_with, 1)).tolist()}}
