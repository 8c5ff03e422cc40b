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

Speed, CPU: with numba (a dependency; NumPy is the fallback where it cannot import), a
compiled counting pass per query: distances
and relevance item by item, items per distance level, and each relevant item's rank from the
level offsets plus its place within its level (``crossmodal/retrieval/_kernels.py``): no
sort at all. Without numba (NumPy; no argsort, no gather): each query batch builds one
integer key per (query, database item), ``distance << s | index << 1 | relevant``, sorts it with
NumPy's vectorised integer sort. The sorted keys are the stable ranking (distance, then
index) with each item's relevance carried in bit 0, so the 0-based rank of every relevant
item is its position: AP@all, mAP@k, P@k and the P@k curve follow from those positions, the
per-level histograms (PR curve, radius precision, tie-aware AP) from the level boundaries.
Hamming distances use 64-bit words and ``bitwise_count``; relevance uses label bit masks.
Memory is bounded by ``batch_elems`` (queries x database items per step) per worker; query
batches run on ``n_jobs`` threads (default: :func:`crossmodal.threads.eval_workers`).
With ``device=`` a torch device (CUDA when the hasher runs there), the same keys are built
and sorted by torch on that device; values equal the NumPy path's (tests run it on the CPU).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from crossmodal.errors import DataError
from crossmodal.retrieval.codes import _words, check_codes, hamming_distance, hamming_words_into, unpack

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


def label_masks(labels) -> np.ndarray:
    """``(N, C)`` labels -> ``(N, ceil(C/64))`` uint64 bit masks: bit c is set when label c > 0."""
    lab = np.asarray(labels)
    return _words(np.packbits(lab > 0, axis=1))


def relevance(q_labels, db_labels) -> np.ndarray:
    """``(Nq, Ndb)`` bool: items share at least one label (a label is present when > 0)."""
    qm, dm = label_masks(q_labels), label_masks(db_labels)
    out = np.empty((qm.shape[0], dm.shape[0]), dtype=bool)
    cols = [np.ascontiguousarray(dm[:, j]) for j in range(dm.shape[1])]
    step = max(1, (1 << 20) // max(1, dm.shape[0]))  # bounds the uint64 scratch
    for s in range(0, qm.shape[0], step):
        _relevance_into(qm[s:s + step], cols, out[s:s + step])
    return out


def _relevance_into(qm: np.ndarray, dcols: list, out: np.ndarray) -> np.ndarray:
    """``qm (b, W)`` uint64 query masks against the W database mask columns ``(Ndb,)`` into
    ``out (b, Ndb)`` bool."""
    scratch = np.empty(out.shape, dtype=np.uint64)
    for j, col in enumerate(dcols):
        np.bitwise_and(qm[:, j, None], col[None, :], out=scratch)
        if j == 0:
            np.not_equal(scratch, 0, out=out)
        else:
            out |= scratch != 0
    return out


def _check_k(k) -> int:
    if int(k) != k or k <= 0:
        raise DataError(f"k must be a positive whole number, got {k!r}")
    return int(k)


NUMBA_MIN_ELEMS = 1 << 24  # kernel="auto" compiles the numba pass from this many query x item pairs
LONG_ROW = 2048  # database sizes from which the statistics are gathered row by row
INT32_KEY_BITS = 31  # keys that fit in this many bits sort as int32 (faster), others as int64


class _Plan:
    """What every query batch shares: sizes, key layout, cut-offs, database words and masks."""

    def __init__(self, q_codes, db_codes, ql, dl, bits: int, ks, curve_ks):
        self.nq, self.ndb = q_codes.shape[0], db_codes.shape[0]
        self.bits, self.levels = int(bits), int(bits) + 1
        self.ks = ks
        self.curve_ks = curve_ks
        self.k_edges = np.array(sorted(set(min(k, self.ndb) for k in ks) | set(curve_ks)), dtype=np.int64)
        # key = distance << shift | index << 1 | relevant: int32 when it fits, else int64
        self.shift = max(1, (self.ndb - 1).bit_length()) + 1
        width = self.shift + self.bits.bit_length()
        self.kdtype = np.int32 if width <= INT32_KEY_BITS else np.int64
        self.q_codes, self.db_codes, self.ql, self.dl = q_codes, db_codes, ql, dl


class _NumpyRanker:
    """Rank statistics of query batches on the CPU with NumPy (see the module docstring)."""

    def __init__(self, plan: _Plan):
        self.p = plan
        self.qw, dw = _words(plan.q_codes), _words(plan.db_codes)
        self.dw = np.ascontiguousarray(dw)
        self.qm, dm = label_masks(plan.ql), label_masks(plan.dl)
        self.dcols = [np.ascontiguousarray(dm[:, j]) for j in range(dm.shape[1])]
        self.ddtype = np.uint8 if plan.bits <= 255 else np.uint16
        self.idx2 = np.arange(plan.ndb, dtype=plan.kdtype) << 1
        self.starts = np.arange(plan.levels + 1, dtype=plan.kdtype) << plan.shift
        self.m = np.arange(1, plan.ndb + 1, dtype=np.float64) if plan.ndb >= LONG_ROW else None

    def __call__(self, s: int, e: int) -> dict:
        p = self.p
        b, ndb, levels = e - s, p.ndb, p.levels
        dist = np.empty((b, ndb), dtype=self.ddtype)
        hamming_words_into(self.qw[s:e], self.dw, dist)
        rel = np.empty((b, ndb), dtype=bool)
        _relevance_into(self.qm[s:e], self.dcols, rel)
        key = np.left_shift(dist, p.shift, dtype=p.kdtype)
        key |= self.idx2
        key |= rel
        del rel
        long_rows = ndb >= LONG_ROW
        if not long_rows:  # short rows: one histogram pass beats a search per row
            flat_d = (np.arange(b, dtype=np.int64) * levels)[:, None] + dist
            h_all = np.bincount(flat_d.ravel(), minlength=b * levels).reshape(b, levels)
            del flat_d
        del dist
        key.sort(axis=1)  # (distance, index): the stable ranking, relevance in bit 0
        if long_rows:
            return self._long_rows(key)
        flat = np.flatnonzero((key & 1).astype(bool))
        rows = flat // ndb
        pos = flat - rows * ndb  # 0-based rank of each relevant item, rows in order
        lev = (key.ravel()[flat] >> p.shift).astype(np.int64)
        del key, flat
        return _stats_from_ranks(rows, pos, lev, h_all, b, p)

    def _long_rows(self, key: np.ndarray) -> dict:
        """Statistics row by row from sorted keys ``(b, Ndb)``: level boundaries and the
        relevant items' ranks by binary search, no per-item row or level arrays."""
        p = self.p
        b, ndb, k_edges = key.shape[0], p.ndb, p.k_edges
        nk = len(k_edges)
        st = {"nrel": np.zeros(b), "ap_sum": np.zeros(b), "found_at": np.zeros((b, nk)),
              "prec_at": np.zeros((b, nk)), "h_all": np.zeros((b, p.levels)), "h_rel": np.zeros((b, p.levels))}
        low = np.empty(ndb, dtype=p.kdtype)
        m = self.m if self.m is not None else np.arange(1, ndb + 1, dtype=np.float64)
        for i in range(b):
            row = key[i]
            bounds = np.searchsorted(row, self.starts)
            pos = np.flatnonzero(np.bitwise_and(row, 1, out=low))  # ranks of the relevant items
            r = len(pos)
            prec = m[:r] / (pos + 1.0)
            rel_below = np.searchsorted(pos, bounds)
            found = np.searchsorted(pos, k_edges)  # relevant items within each cut-off
            st["nrel"][i] = r
            st["ap_sum"][i] = prec.sum()
            st["h_all"][i] = np.diff(bounds)
            st["h_rel"][i] = np.diff(rel_below)
            if nk:
                st["found_at"][i] = found
                cs = np.concatenate([[0.0], np.cumsum(prec[:found[-1]])])
                st["prec_at"][i] = cs[found]
        return st


class _NumbaRanker:
    """The compiled counting pass of :mod:`crossmodal.retrieval._kernels` (no sort at all)."""

    def __init__(self, plan: _Plan, threads: int):
        self.p, self.threads = plan, threads
        self.qw, self.dw = _words(plan.q_codes), np.ascontiguousarray(_words(plan.db_codes))
        self.qm, self.dm = label_masks(plan.ql), np.ascontiguousarray(label_masks(plan.dl))

    def __call__(self, s: int, e: int) -> dict:
        import numba

        from crossmodal.retrieval import _kernels

        numba.set_num_threads(max(1, min(self.threads, numba.config.NUMBA_NUM_THREADS)))
        return _kernels.rank_stats(self.qw[s:e], self.dw, self.qm[s:e], self.dm, self.p.levels, self.p.k_edges)


def _stats_from_ranks(rows, pos, lev, h_all, b: int, p: _Plan) -> dict:
    """Per-query statistics from the relevant items' (row, 0-based rank, distance), given in
    row order and ascending rank within a row, plus ``h_all (b, levels)``: items per distance.

    Returns nrel (b,), ap_sum (b,), found_at / prec_at (b, len(k_edges)), h_all / h_rel
    (b, levels); all float64.
    """
    levels, k_edges = p.levels, p.k_edges
    nrel = np.bincount(rows, minlength=b)
    # m-th relevant item of its row (1-based): precision at it is m / (pos + 1)
    m = np.arange(1, len(rows) + 1) - np.repeat(np.cumsum(nrel) - nrel, nrel)
    prec = m / (pos + 1.0)
    ap_sum = np.bincount(rows, weights=prec, minlength=b)
    nk = len(k_edges)
    sel = pos < (k_edges[-1] if nk else 0)
    r_sel, p_sel = rows[sel], pos[sel]
    flat_cut = r_sel * (nk + 1) + np.searchsorted(k_edges, p_sel, side="right")
    found = np.bincount(flat_cut, minlength=b * (nk + 1)).reshape(b, nk + 1)
    psum = np.bincount(flat_cut, weights=prec[sel], minlength=b * (nk + 1)).reshape(b, nk + 1)
    h_rel = np.bincount(rows * levels + lev, minlength=b * levels).reshape(b, levels)
    return {
        "nrel": nrel.astype(np.float64),
        "ap_sum": ap_sum,
        "found_at": np.cumsum(found, axis=1)[:, :-1].astype(np.float64),
        "prec_at": np.cumsum(psum, axis=1)[:, :-1],
        "h_all": np.asarray(h_all, dtype=np.float64),
        "h_rel": h_rel.astype(np.float64),
    }


class _TorchRanker:
    """The same statistics with torch on ``device`` (CUDA, or the CPU in tests): distances
    from a ±1 matmul (exact: integers below 2^24 in float32), relevance from a 0/1 label
    matmul, one sort of the int64 keys per batch, ranks from the positions of bit 0."""

    def __init__(self, plan: _Plan, device):
        import torch

        self.torch, self.p, self.dev = torch, plan, torch.device(device)
        pm = lambda c: torch.as_tensor(unpack(c, plan.bits), device=self.dev).float().mul_(2).sub_(1)  # noqa: E731
        self.qs, self.ds = pm(plan.q_codes), pm(plan.db_codes)
        lab = lambda x: torch.as_tensor(np.asarray(x) > 0, device=self.dev).float()  # noqa: E731
        self.qlab, self.dlab = lab(plan.ql), lab(plan.dl)
        self.idx2 = torch.arange(plan.ndb, device=self.dev, dtype=torch.int64) << 1
        self.starts = torch.arange(plan.levels + 1, device=self.dev, dtype=torch.int64) << plan.shift
        self.k_edges = torch.as_tensor(plan.k_edges, device=self.dev)

    def __call__(self, s: int, e: int) -> dict:
        torch, p = self.torch, self.p
        b, ndb = e - s, p.ndb
        with torch.no_grad():
            ip = self.qs[s:e] @ self.ds.T  # bits - 2 * distance
            dist = ((p.bits - ip) * 0.5).round_().to(torch.int64)
            del ip
            rel = (self.qlab[s:e] @ self.dlab.T) > 0
            key = (dist << p.shift) | self.idx2 | rel.to(torch.int64)
            del dist, rel
            key = torch.sort(key, dim=1).values
            rb = key & 1
            cnt = torch.cumsum(rb, dim=1)  # relevant items up to and including each position
            pos1 = torch.arange(1, ndb + 1, device=self.dev, dtype=torch.float64)
            prec = torch.where(rb.bool(), cnt.double() / pos1, torch.zeros((), dtype=torch.float64, device=self.dev))
            ap_sum = prec.sum(dim=1)
            nrel = cnt[:, -1].double() if ndb else torch.zeros(b, dtype=torch.float64, device=self.dev)
            if len(self.k_edges):
                kmax = int(p.k_edges[-1])
                ke = (self.k_edges - 1).expand(b, -1)
                found_at = torch.gather(cnt[:, :kmax], 1, ke).double()
                prec_at = torch.gather(torch.cumsum(prec[:, :kmax], dim=1), 1, ke)
            else:
                found_at = prec_at = torch.zeros((b, 0), dtype=torch.float64, device=self.dev)
            bounds = torch.searchsorted(key, self.starts.expand(b, -1).contiguous())
            cnt0 = torch.cat([torch.zeros((b, 1), dtype=cnt.dtype, device=self.dev), cnt], dim=1)
            rel_below = torch.gather(cnt0, 1, bounds)
            out = {"nrel": nrel, "ap_sum": ap_sum, "found_at": found_at, "prec_at": prec_at,
                   "h_all": torch.diff(bounds, dim=1).double(), "h_rel": torch.diff(rel_below, dim=1).double()}
        return {k: v.cpu().numpy() for k, v in out.items()}


def _batch_metrics(st: dict, p: _Plan, harmonic: np.ndarray, radius: int, norm: str) -> dict:
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
    plan = _Plan(q_codes, db_codes, ql, dl, bits, ks, curve_ks)
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
        ranker = _TorchRanker(plan, dev)
        batch_elems = batch_elems or 1 << 24
    elif use_numba:  # threads inside the kernel; batches only bound the per-query outputs
        ranker = _NumbaRanker(plan, int(n_jobs))
        batch_elems = batch_elems or max(ndb, 1) * 4096
    else:
        ranker = _NumpyRanker(plan)
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
        parts = [_batch_metrics(_empty_stats(plan), plan, harmonic, radius, norm)]
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


def _empty_stats(p: _Plan) -> dict:
    z = lambda *shape: np.zeros(shape, dtype=np.float64)  # noqa: E731
    nk = len(p.k_edges)
    return {"nrel": z(0), "ap_sum": z(0), "found_at": z(0, nk), "prec_at": z(0, nk),
            "h_all": z(0, p.levels), "h_rel": z(0, p.levels)}


def mean_average_precision(q_codes, db_codes, q_labels, db_labels, bits: int, k: int | None = None,
                           norm: str = "retrieved", device=None) -> float:
    """mAP@all (``k=None``) or mAP@k of packed codes; see :func:`evaluate_codes`."""
    ks = () if k is None else (k,)
    res = evaluate_codes(q_codes, db_codes, q_labels, db_labels, bits, ks=ks, norm=norm, curve_ks=(1,), device=device)
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
