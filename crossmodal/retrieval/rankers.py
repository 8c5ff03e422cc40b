"""Rank statistics of query batches over a Hamming ranking, three ways with the same values:
:class:`NumpyRanker` (CPU), :class:`NumbaRanker` (CPU, compiled) and :class:`TorchRanker` (a torch
device). Each turns queries ``[s, e)`` of a :class:`Plan` into per-query statistics (``nrel``,
``ap_sum``, ``found_at``, ``prec_at``, ``h_all``, ``h_rel``; all float64) that
:mod:`crossmodal.retrieval.metrics` assembles into metrics.

Speed, CPU: with numba (a dependency; NumPy is the fallback where it cannot import), a
compiled counting pass per query: distances and relevance item by item, items per distance
level, and each relevant item's rank from the level offsets plus its place within its level
(``crossmodal/retrieval/_kernels.py``): no sort at all. Without numba (NumPy; no argsort, no
gather): each query batch builds one integer key per (query, database item),
``distance << s | index << 1 | relevant``, sorts it with NumPy's vectorised integer sort. The
sorted keys are the stable ranking (distance, then index) with each item's relevance carried in
bit 0, so the 0-based rank of every relevant item is its position: AP@all, mAP@k, P@k and the P@k
curve follow from those positions, the per-level histograms (PR curve, radius precision,
tie-aware AP) from the level boundaries. Hamming distances use 64-bit words and
``bitwise_count``; relevance uses label bit masks. With a torch device (CUDA when the hasher runs
there), the same keys are built and sorted by torch on that device; values equal the NumPy
path's (tests run it on the CPU).
"""

from __future__ import annotations

import numpy as np

from crossmodal.retrieval.codes import as_words, hamming_words_into, unpack
from crossmodal.retrieval.labels import label_masks, relevance_into

LONG_ROW = 2048  # database sizes from which the statistics are gathered row by row
INT32_KEY_BITS = 31  # keys that fit in this many bits sort as int32 (faster), others as int64


class Plan:
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


class NumpyRanker:
    """Rank statistics of query batches on the CPU with NumPy (see the module docstring)."""

    def __init__(self, plan: Plan):
        self.p = plan
        self.qw, dw = as_words(plan.q_codes), as_words(plan.db_codes)
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
        relevance_into(self.qm[s:e], self.dcols, rel)
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


class NumbaRanker:
    """The compiled counting pass of :mod:`crossmodal.retrieval._kernels` (no sort at all)."""

    def __init__(self, plan: Plan, threads: int):
        self.p, self.threads = plan, threads
        self.qw, self.dw = as_words(plan.q_codes), np.ascontiguousarray(as_words(plan.db_codes))
        self.qm, self.dm = label_masks(plan.ql), np.ascontiguousarray(label_masks(plan.dl))

    def __call__(self, s: int, e: int) -> dict:
        import numba

        from crossmodal.retrieval import _kernels

        numba.set_num_threads(max(1, min(self.threads, numba.config.NUMBA_NUM_THREADS)))
        return _kernels.rank_stats(self.qw[s:e], self.dw, self.qm[s:e], self.dm, self.p.levels, self.p.k_edges)


def _stats_from_ranks(rows, pos, lev, h_all, b: int, p: Plan) -> dict:
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


class TorchRanker:
    """The same statistics with torch on ``device`` (CUDA, or the CPU in tests): distances
    from a ±1 matmul (exact: integers below 2^24 in float32), relevance from a 0/1 label
    matmul, one sort of the int64 keys per batch, ranks from the positions of bit 0."""

    def __init__(self, plan: Plan, device):
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



def empty_stats(p: Plan) -> dict:
    """The statistics of no query at all (for an empty query set)."""
    z = lambda *shape: np.zeros(shape, dtype=np.float64)  # noqa: E731
    nk = len(p.k_edges)
    return {"nrel": z(0), "ap_sum": z(0), "found_at": z(0, nk), "prec_at": z(0, nk),
            "h_all": z(0, p.levels), "h_rel": z(0, p.levels)}
