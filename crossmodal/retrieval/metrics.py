"""Retrieval metrics over Hamming rankings: :func:`evaluate_codes` (every metric of one query set
against one database) and :func:`mean_average_precision`.

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
  over queries with a relevant item (:func:`~crossmodal.retrieval.curves.ranking_curves`).

The rank statistics of each query batch come from a ranker of :mod:`crossmodal.retrieval.rankers`
(NumPy, numba or torch: same values); this module turns them into metrics. Memory is bounded by
``batch_elems`` (queries x database items per step) per worker; query batches run on ``n_jobs``
threads (default: :func:`crossmodal.threads.eval_workers`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from crossmodal.errors import DataError
from crossmodal.retrieval.codes import check_codes
from crossmodal.retrieval.curves import DEFAULT_CURVE_KS, ranking_curves
from crossmodal.retrieval.rankers import NumbaRanker, NumpyRanker, Plan, TorchRanker, empty_stats

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

NUMBA_MIN_ELEMS = 1 << 24  # kernel="auto" compiles the numba pass from this many query x item pairs


def _check_k(k) -> int:
    if int(k) != k or k <= 0:
        raise DataError(f"k must be a positive whole number, got {k!r}")
    return int(k)


def _batch_metrics(st: dict, p: Plan, harmonic: np.ndarray, radius: int, norm: str) -> dict:
    """Per-query metrics and per-batch sums from one batch's rank statistics (shared by the
    NumPy and torch paths, so both give the same numbers from the same counts)."""
    nrel, h_all, h_rel = st["nrel"], st["h_all"], st["h_rel"]
    has = nrel > 0
    out: dict = {"ap_all": np.where(has, st["ap_sum"] / np.maximum(nrel, 1), 0.0)}
    found_at, prec_at = st["found_at"], st["prec_at"]
    for k in p.ks:
        j = int(np.searchsorted(p.k_edges, min(k, p.ndb)))
        found = found_at[:, j]
        denom = found if norm == "retrieved" else np.minimum(nrel, k)
        out[f"ap@{k}"] = np.where(denom > 0, prec_at[:, j] / np.maximum(denom, 1), 0.0)
        out[f"p@{k}"] = found / min(k, p.ndb)
    cidx = np.searchsorted(p.k_edges, p.curve_ks)
    out["pk_sum"] = (found_at[:, cidx] / np.array(p.curve_ks, dtype=np.float64)).sum(axis=0)

    # Histograms per distance level: PR curve, radius precision and tie-aware AP.
    c_all, c_rel = np.cumsum(h_all, axis=1), np.cumsum(h_rel, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec_r = np.where(c_all > 0, c_rel / c_all, 0.0)
    out["pr_prec_sum"] = prec_r.sum(axis=0)
    out["pr_prec_n"] = (c_all > 0).sum(axis=0)
    out["pr_rec_sum"] = (c_rel[has] / nrel[has, None]).sum(axis=0)
    out["pr_rec_n"] = int(has.sum())
    out["p_radius"] = prec_r[:, min(radius, p.bits)]
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


def _torch_device(device):
    """``None`` / "numpy" -> None (the NumPy path); anything else -> a torch device
    (:func:`crossmodal.engine.resolve_device`, its error re-raised as a DataError)."""
    if device is None or (isinstance(device, str) and device in ("numpy", "")):
        return None
    from crossmodal.engine import resolve_device
    from crossmodal.errors import CrossmodalError

    try:
        return resolve_device(device)
    except CrossmodalError as exc:
        raise DataError(f"evaluate_codes: {exc} (device=None ranks with NumPy)") from None


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
    batch_elems: int | None = None,
    return_per_query: bool = False,
    n_jobs: int | None = None,
    device=None,
    kernel: str = "auto",
    graded_curves: bool = False,
) -> dict:
    """All metrics of packed query codes against packed database codes.

    ``graded_curves=True`` adds the NDCG@k and recall@k curves of :func:`ranking_curves`
    (a second pass over the top ``max(curve_ks)`` of each ranking; reports ask for it).

    Parameters
    ----------
    q_codes : (Nq, ceil(bits/8)) uint8 packed codes.
    db_codes : (Ndb, ceil(bits/8)) uint8 packed codes.
    q_labels, db_labels : (Nq, C) / (Ndb, C) multi-hot labels (a label is present when > 0).
    ks : cut-offs for mAP@k and P@k.
    norm : "retrieved" (default) or "min", the denominator of mAP@k.
    batch_elems : queries x database items ranked per step (default 2^18 on the CPU, which
        keeps a step in the cache, 2^24 on a torch device).
    n_jobs : CPU worker threads (default :func:`crossmodal.threads.eval_workers`).
    device : None for the CPU; a torch device ("cuda", "cuda:1", "cpu") ranks with torch
        there (same values).
    kernel : on the CPU, "numba" (the compiled counting pass, no sort; needs ``pip install
        numba``), "numpy" (sorted keys), or "auto": numba when it is installed and the
        problem has at least ``NUMBA_MIN_ELEMS`` query x item pairs (its first call compiles,
        then the compiled code is cached on disk), else NumPy. Same values either way.

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
    if kernel not in ("auto", "numpy", "numba"):
        raise DataError(f"kernel must be 'auto', 'numpy' or 'numba', got {kernel!r}")
    if db_codes.shape[0] == 0:
        raise DataError("database codes: the database is empty")
    ks = [_check_k(k) for k in ks]
    nq, ndb = q_codes.shape[0], db_codes.shape[0]
    levels = bits + 1
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, ndb + 1))])
    curve_ks = sorted({min(int(k), ndb) for k in curve_ks})
    plan = Plan(q_codes, db_codes, ql, dl, bits, ks, curve_ks)
    dev = _torch_device(device)
    if n_jobs is None:
        from crossmodal.threads import eval_workers

        n_jobs = eval_workers()
    from crossmodal.retrieval import _kernels

    if kernel == "numba" and not _kernels.available():
        raise DataError("kernel='numba' needs numba (pip install numba); use kernel='auto' or 'numpy'")
    use_numba = dev is None and (kernel == "numba" or (
        kernel == "auto" and _kernels.available() and nq * ndb >= NUMBA_MIN_ELEMS))
    if dev is not None:
        ranker = TorchRanker(plan, dev)
        batch_elems = batch_elems or 1 << 24
    elif use_numba:  # threads inside the kernel; batches only bound the per-query outputs
        ranker = NumbaRanker(plan, int(n_jobs))
        batch_elems = batch_elems or max(ndb, 1) * 4096
    else:
        ranker = NumpyRanker(plan)
        batch_elems = batch_elems or 1 << 18

    def batch(s: int) -> dict:
        return _batch_metrics(ranker(s, min(nq, s + step)), plan, harmonic, radius, norm)

    step = max(1, batch_elems // ndb)
    starts = list(range(0, nq, step))
    workers = 1 if dev is not None or use_numba else max(1, min(int(n_jobs), len(starts)))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:  # NumPy releases the GIL in the heavy passes
            parts = list(pool.map(batch, starts))
    else:
        parts = [batch(s) for s in starts]
    if not parts:
        parts = [_batch_metrics(empty_stats(plan), plan, harmonic, radius, norm)]
    cat = lambda key: np.concatenate([p[key] for p in parts])  # noqa: E731
    tot = lambda key: sum(p[key] for p in parts)  # noqa: E731
    ap_all, ap_tie, p_radius = cat("ap_all"), cat("ap_tie"), cat("p_radius")
    ap_k = {k: cat(f"ap@{k}") for k in ks}
    p_k = {k: cat(f"p@{k}") for k in ks}
    pk_sum, pr_prec_sum, pr_prec_n = tot("pk_sum"), tot("pr_prec_sum"), tot("pr_prec_n")
    pr_rec_sum, pr_rec_n = tot("pr_rec_sum"), tot("pr_rec_n")
    mean = lambda x: float(x.mean()) if len(x) else 0.0  # noqa: E731

    out = {
        "n_query": nq,
        "n_database": ndb,
        "bits": int(bits),
        "mAP@all": mean(ap_all),
        "mAP@all~": mean(ap_tie),
        f"P@H<={radius}": mean(p_radius),
        "pr_curve": {
            "radius": list(range(levels)),
            "precision": (pr_prec_sum / np.maximum(pr_prec_n, 1)).tolist(),
            "recall": (pr_rec_sum / max(pr_rec_n, 1)).tolist(),
        },
        "pk_curve": {"k": curve_ks, "precision": (pk_sum / max(nq, 1)).tolist()},
    }
    for k in ks:
        out[f"mAP@{k}"] = mean(ap_k[k])
        out[f"P@{k}"] = mean(p_k[k])
    if graded_curves:
        out.update(ranking_curves(q_codes, db_codes, ql, dl, bits, curve_ks=curve_ks))
    if return_per_query:
        out["per_query"] = {"AP@all": ap_all, "AP@all~": ap_tie, **{f"AP@{k}": ap_k[k] for k in ks}}
    return out


def mean_average_precision(q_codes, db_codes, q_labels, db_labels, bits: int, k: int | None = None,
                           norm: str = "retrieved", device=None) -> float:
    """mAP@all (``k=None``) or mAP@k of packed codes; see :func:`evaluate_codes`."""
    ks = () if k is None else (k,)
    res = evaluate_codes(q_codes, db_codes, q_labels, db_labels, bits, ks=ks, norm=norm, curve_ks=(1,), device=device)
    return res["mAP@all"] if k is None else res[f"mAP@{k}"]
