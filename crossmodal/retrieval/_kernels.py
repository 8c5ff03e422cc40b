"""Optional compiled counting pass (numba): every rank statistic of a query batch without
any sort and without storing the distance matrix.

For each query: one pass over the database computes the Hamming distance d (popcount of
XORed 64-bit words) and the relevance (AND of label bit masks) of each item, counts items
per distance level (``h_all``) and, for a relevant item, records its level d, the number of
items of level d before it (its place within the level) and the number of relevant items of
level d before it. After the pass, the level offsets (items, relevant items below each level)
turn those into the item's 0-based rank ``pos = below[d] + place`` and its 1-based number
among the relevant items ``m = rel_below[d] + rel_place + 1``, the precision ``m / (pos + 1)``
that AP@all averages: the stable tie-break by index, without a sort.

``numba`` is a dependency of crossmodal, yet imported defensively; :func:`available` says
whether the kernel can be used, and :mod:`crossmodal.retrieval.metrics` falls back to its NumPy path otherwise.
"""

from __future__ import annotations

import threading

import numpy as np

try:  # pragma: no cover - exercised only where numba is installed
    import numba
except ImportError:  # pragma: no cover
    numba = None

_kernel = None
_lock = threading.Lock()  # numba's default (workqueue) layer must not be entered by two threads at once


def available() -> bool:
    return numba is not None


def _build():
    @numba.njit(parallel=True, cache=True, nogil=True)
    def rank_stats(qw, dw, qm, dm, levels, k_edges, nrel, ap_sum, found_at, prec_at, h_all, h_rel):
        nq, nw = qw.shape
        ndb, nl = dw.shape[0], qm.shape[1]
        nk = k_edges.shape[0]
        kmax = k_edges[nk - 1] if nk > 0 else 0
        for i in numba.prange(nq):
            rel_d = np.empty(ndb + 1, np.int32)
            rel_place = np.empty(ndb + 1, np.int32)
            rel_rplace = np.empty(ndb + 1, np.int32)
            hist = np.zeros(levels, np.int64)
            rhist = np.zeros(levels, np.int64)
            r = 0
            for j in range(ndb):
                d = 0
                for w in range(nw):
                    x = qw[i, w] ^ dw[j, w]
                    # popcount of a 64-bit word (SWAR; LLVM turns it into popcnt)
                    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
                    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
                    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
                    d += np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))
                hit = np.uint64(0)
                for w in range(nl):
                    hit |= qm[i, w] & dm[j, w]
                is_rel = np.int64(hit != np.uint64(0))
                # branch-free: always write the slot, advance it only for a relevant item
                rel_d[r] = d
                rel_place[r] = hist[d]
                rel_rplace[r] = rhist[d]
                rhist[d] += is_rel
                r += is_rel
                hist[d] += 1
            below = 0
            rbelow = 0
            below_at = np.empty(levels, np.int64)
            rbelow_at = np.empty(levels, np.int64)
            for d in range(levels):
                below_at[d] = below
                rbelow_at[d] = rbelow
                below += hist[d]
                rbelow += rhist[d]
                h_all[i, d] = hist[d]
                h_rel[i, d] = rhist[d]
            s = 0.0
            for t in range(r):
                d = rel_d[t]
                pos = below_at[d] + rel_place[t]
                prec = (rbelow_at[d] + rel_rplace[t] + 1) / (pos + 1.0)
                s += prec
                if pos < kmax:
                    for c in range(nk):
                        if pos < k_edges[c]:
                            found_at[i, c] += 1.0
                            prec_at[i, c] += prec
            nrel[i] = r
            ap_sum[i] = s

    return rank_stats


def rank_stats(qw, dw, qm, dm, levels: int, k_edges) -> dict:
    """Rank statistics of queries ``qw (b, W)`` uint64 code words / ``qm (b, L)`` uint64 label
    masks against ``dw (Ndb, W)`` / ``dm (Ndb, L)``: nrel, ap_sum (b,), found_at, prec_at
    (b, len(k_edges)), h_all, h_rel (b, levels); all float64, as the NumPy path returns them."""
    global _kernel
    b = qw.shape[0]
    k_edges = np.ascontiguousarray(k_edges, dtype=np.int64)
    out = {"nrel": np.zeros(b), "ap_sum": np.zeros(b), "found_at": np.zeros((b, len(k_edges))),
           "prec_at": np.zeros((b, len(k_edges))), "h_all": np.zeros((b, levels)), "h_rel": np.zeros((b, levels))}
    with _lock:
        if _kernel is None:
            _kernel = _build()
        _kernel(np.ascontiguousarray(qw), np.ascontiguousarray(dw), np.ascontiguousarray(qm), np.ascontiguousarray(dm),
                int(levels), k_edges, out["nrel"], out["ap_sum"], out["found_at"], out["prec_at"], out["h_all"],
                out["h_rel"])
    return out
