"""Retrieval metrics over Hamming rankings.

Conventions (every report states them, see :data:`CONVENTIONS`):

* Relevant = query and database item share at least one label.
* Ranking = ascending Hamming distance, ties broken by database index (stable).
  The tie-aware AP (``mAP@all~``) is the expectation of AP over all orders of tied items
  (McSherry & Najork, ECIR 2008), which depends on no tie-breaking rule.
* mAP@all averages over the whole database. mAP@k is normalised by the number of relevant
  items within the top k (``norm="retrieved"``, the convention of the published tables);
  ``norm="min"`` divides by min(R, k) instead.
* A query with no relevant item scores AP 0 and is counted in the mean.
* precision@k divides by min(k, database size).
* Precision within Hamming radius r: a query that retrieves nothing within r scores 0.
* PR curve (one point per radius 0..bits): precision is averaged over the queries that
  retrieve something within the radius, recall over the queries that have a relevant item.
* NDCG@k (curve): graded relevance = shared labels, gain 2^r - 1; recall@k (curve): averaged
  over queries with a relevant item (:func:`ranking_curves`).

Speed: distances are small integers, so each query batch is ranked with NumPy's stable
radix sort (``argsort(kind="stable")`` on uint8/uint16), never a float sort per query;
histograms per distance give the PR curve and the tie-aware AP without any sort.
Memory is bounded by ``batch_elems`` (queries x database items per step) per worker; query
batches run on ``n_jobs`` threads (default: all cores).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from crossmodal.errors import DataError
from crossmodal.retrieval.codes import check_codes, hamming_distance

CONVENTIONS = {
    "relevance": "shares at least one label",
    "ranking": "ascending Hamming distance, ties broken by database index (stable)",
    "mAP@all~": "tie-aware (expected) AP over random orders of tied items",
    "mAP@k": "normalised by the relevant items within the top k",
    "no_relevant": "a query with no relevant item scores AP 0 and is counted",
    "P@k": "divided by min(k, database size)",
    "P@H<=r": "a query that retrieves nothing within radius r scores 0",
    "pr_curve": "per radius; precision over queries retrieving something, recall over queries with a relevant item",
    "sign": "sign(0) = +1",
    "NDCG@k": "graded relevance = shared labels, gain 2^r - 1, discount log2(rank + 1)",
    "recall@k": "averaged over queries with at least one relevant item",
}

DEFAULT_CURVE_KS = (1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def relevance(q_labels, db_labels) -> np.ndarray:
    """``(Nq, Ndb)`` bool: items share at least one label."""
    ql = np.asarray(q_labels, dtype=np.float32)
    dl = np.asarray(db_labels, dtype=np.float32)
    return (ql @ dl.T) > 0


def _check_k(k) -> int:
    if int(k) != k or k <= 0:
        raise DataError(f"k must be a positive whole number, got {k!r}")
    return int(k)


def evaluate_codes(
    q_codes,
    db_codes,
    q_labels,
    db_labels,
    bits: int,
    ks=(100,),
    radius: int = 2,
    norm: str = "retrieved",
    curve_ks=DEFAULT_CURVE_KS,
    batch_elems: int = 1 << 22,
    return_per_query: bool = False,
    n_jobs: int | None = None,
) -> dict:
    """All metrics of packed query codes against packed database codes.

    Parameters
    ----------
    q_codes : (Nq, ceil(bits/8)) uint8 packed codes.
    db_codes : (Ndb, ceil(bits/8)) uint8 packed codes.
    q_labels, db_labels : (Nq, C) / (Ndb, C) multi-hot labels.
    ks : cut-offs for mAP@k and P@k.
    norm : "retrieved" (default) or "min", the denominator of mAP@k.

    Returns a dict with ``mAP@all``, ``mAP@all~`` (tie-aware), ``mAP@k``, ``P@k`` for each
    k, ``P@H<=radius``, ``pr_curve`` (radius, precision, recall), ``pk_curve`` (k,
    precision), ``n_query``, ``n_database`` and, on request, per-query arrays.
    """
    q_codes = check_codes(q_codes, bits, "query codes")
    db_codes = check_codes(db_codes, bits, "database codes")
    ql, dl = np.asarray(q_labels), np.asarray(db_labels)
    if ql.ndim != 2 or dl.ndim != 2 or ql.shape[1] != dl.shape[1]:
        raise DataError(f"labels: query {ql.shape} and database {dl.shape} must be 2-D over the same classes")
    if ql.shape[0] != q_codes.shape[0] or dl.shape[0] != db_codes.shape[0]:
        raise DataError("labels and codes have different numbers of rows")
    if norm not in ("retrieved", "min"):
        raise DataError(f"norm must be 'retrieved' or 'min', got {norm!r}")
    ks = [_check_k(k) for k in ks]
    nq, ndb = q_codes.shape[0], db_codes.shape[0]
    levels = bits + 1
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, ndb + 1))])
    curve_ks = sorted({min(int(k), ndb) for k in curve_ks})

    k_edges = np.array(sorted(set(min(k, ndb) for k in ks) | set(curve_ks)), dtype=np.int64)

    def batch(s: int) -> dict:
        e = min(nq, s + step)
        b = e - s
        out: dict = {}
        dist = hamming_distance(q_codes[s:e], db_codes)
        rel = relevance(ql[s:e], dl)
        order = np.argsort(dist, axis=1, kind="stable")
        rows, pos = np.nonzero(np.take_along_axis(rel, order, axis=1))  # pos: 0-based rank of each relevant item
        del order
        nrel = np.bincount(rows, minlength=b).astype(np.float64)
        has = nrel > 0
        # m-th relevant item of its row (1-based): precision at it is m / (pos + 1)
        m = np.arange(1, len(rows) + 1) - np.repeat(np.cumsum(nrel).astype(np.int64) - nrel.astype(np.int64), nrel.astype(np.int64))
        prec = m / (pos + 1.0)
        out["ap_all"] = np.where(has, np.bincount(rows, weights=prec, minlength=b) / np.maximum(nrel, 1), 0.0)
        # relevant items and precision sums within each cut-off, by binning positions once
        cut = np.searchsorted(k_edges, pos, side="right")  # number of cut-offs the item falls beyond
        flat_cut = rows * (len(k_edges) + 1) + cut
        found_bins = np.bincount(flat_cut, minlength=b * (len(k_edges) + 1)).reshape(b, -1)
        prec_bins = np.bincount(flat_cut, weights=prec, minlength=b * (len(k_edges) + 1)).reshape(b, -1)
        found_at = np.cumsum(found_bins, axis=1)[:, :-1].astype(np.float64)  # (b, len(k_edges)): hits in top k_edges[j]
        prec_at = np.cumsum(prec_bins, axis=1)[:, :-1]
        for k in ks:
            j = int(np.searchsorted(k_edges, min(k, ndb)))
            found = found_at[:, j]
            denom = found if norm == "retrieved" else np.minimum(nrel, k)
            out[f"ap@{k}"] = np.where(denom > 0, prec_at[:, j] / np.maximum(denom, 1), 0.0)
            out[f"p@{k}"] = found / min(k, ndb)
        cidx = np.searchsorted(k_edges, curve_ks)
        out["pk_sum"] = (found_at[:, cidx] / np.array(curve_ks, dtype=np.float64)).sum(axis=0)
        del rows, pos, m, prec, cut, flat_cut

        # Histograms per distance level (all items and relevant ones, one integer bincount):
        # PR curve, radius precision and tie-aware AP, no sort needed.
        flat = ((np.arange(b, dtype=np.int64) * levels)[:, None] + dist) * 2 + rel
        h = np.bincount(flat.ravel(), minlength=b * levels * 2).reshape(b, levels, 2).astype(np.float64)
        del flat
        h_rel = h[:, :, 1]
        h_all = h[:, :, 0] + h_rel
        c_all, c_rel = np.cumsum(h_all, axis=1), np.cumsum(h_rel, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec_r = np.where(c_all > 0, c_rel / c_all, 0.0)
        out["pr_prec_sum"] = prec_r.sum(axis=0)
        out["pr_prec_n"] = (c_all > 0).sum(axis=0)
        out["pr_rec_sum"] = (c_rel[has] / nrel[has, None]).sum(axis=0)
        out["pr_rec_n"] = int(has.sum())
        out["p_radius"] = prec_r[:, min(radius, bits)]
        before_all = c_all - h_all
        before_rel = c_rel - h_rel
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(h_all > 1, (h_rel - 1) / (h_all - 1), 0.0)
        a = before_all.astype(np.int64)
        t = h_all.astype(np.int64)
        inner = (before_rel + 1 - (before_all + 1) * slope) * (harmonic[a + t] - harmonic[a]) + h_all * slope
        with np.errstate(divide="ignore", invalid="ignore"):
            contrib = np.where(h_rel > 0, h_rel / np.maximum(h_all, 1) * inner, 0.0)
        out["ap_tie"] = np.where(has, contrib.sum(axis=1) / np.maximum(nrel, 1), 0.0)

        return out

    step = max(1, batch_elems // ndb)
    starts = list(range(0, nq, step))
    workers = max(1, min(n_jobs or os.cpu_count() or 1, len(starts)))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:  # NumPy releases the GIL in the heavy passes
            parts = list(pool.map(batch, starts))
    else:
        parts = [batch(s) for s in starts]
    cat = lambda key: np.concatenate([p[key] for p in parts])  # noqa: E731
    tot = lambda key: sum(p[key] for p in parts)  # noqa: E731
    ap_all, ap_tie, p_radius = cat("ap_all"), cat("ap_tie"), cat("p_radius")
    ap_k = {k: cat(f"ap@{k}") for k in ks}
    p_k = {k: cat(f"p@{k}") for k in ks}
    pk_sum, pr_prec_sum, pr_prec_n = tot("pk_sum"), tot("pr_prec_sum"), tot("pr_prec_n")
    pr_rec_sum, pr_rec_n = tot("pr_rec_sum"), tot("pr_rec_n")

    out = {
        "n_query": nq,
        "n_database": ndb,
        "bits": int(bits),
        "mAP@all": float(ap_all.mean()),
        "mAP@all~": float(ap_tie.mean()),
        f"P@H<={radius}": float(p_radius.mean()),
        "pr_curve": {
            "radius": list(range(levels)),
            "precision": (pr_prec_sum / np.maximum(pr_prec_n, 1)).tolist(),
            "recall": (pr_rec_sum / max(pr_rec_n, 1)).tolist(),
        },
        "pk_curve": {"k": curve_ks, "precision": (pk_sum / nq).tolist()},
    }
    for k in ks:
        out[f"mAP@{k}"] = float(ap_k[k].mean())
        out[f"P@{k}"] = float(p_k[k].mean())
    out.update(ranking_curves(q_codes, db_codes, ql, dl, bits, curve_ks=curve_ks, batch_elems=batch_elems))
    if return_per_query:
        out["per_query"] = {"AP@all": ap_all, "AP@all~": ap_tie, **{f"AP@{k}": ap_k[k] for k in ks}}
    return out


def mean_average_precision(q_codes, db_codes, q_labels, db_labels, bits: int, k: int | None = None, norm: str = "retrieved") -> float:
    """mAP@all (``k=None``) or mAP@k of packed codes; see :func:`evaluate_codes`."""
    ks = () if k is None else (k,)
    res = evaluate_codes(q_codes, db_codes, q_labels, db_labels, bits, ks=ks, norm=norm, curve_ks=(1,))
    return res["mAP@all"] if k is None else res[f"mAP@{k}"]


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
        order = np.argsort(hamming_distance(q_codes[s:e], db_codes), axis=1, kind="stable")[:, :kmax]
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
