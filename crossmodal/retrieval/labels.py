"""Relevance of database items to queries: they share at least one label. Labels travel as 64-bit
masks (:func:`label_masks`), so any number of classes costs one AND per 64 of them."""

from __future__ import annotations

import numpy as np

from crossmodal.retrieval.codes import as_words


def label_masks(labels) -> np.ndarray:
    """``(N, C)`` labels -> ``(N, ceil(C/64))`` uint64 bit masks: bit c is set when label c > 0."""
    lab = np.asarray(labels)
    return as_words(np.packbits(lab > 0, axis=1))


def relevance(q_labels, db_labels) -> np.ndarray:
    """``(Nq, Ndb)`` bool: items share at least one label (a label is present when > 0)."""
    qm, dm = label_masks(q_labels), label_masks(db_labels)
    out = np.empty((qm.shape[0], dm.shape[0]), dtype=bool)
    cols = [np.ascontiguousarray(dm[:, j]) for j in range(dm.shape[1])]
    step = max(1, (1 << 20) // max(1, dm.shape[0]))  # bounds the uint64 scratch
    for s in range(0, qm.shape[0], step):
        relevance_into(qm[s:s + step], cols, out[s:s + step])
    return out


def relevance_into(qm: np.ndarray, dcols: list, out: np.ndarray) -> np.ndarray:
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
