"""The text side of a raw benchmark: the source's cleaning rule (:func:`clean`: vocabulary and
kept items) and the bag-of-words matrix (:func:`bow_matrix`). The tokens and multi-hot labels
themselves come from each source's parser (:mod:`crossmodal.data.sources.spec`)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import scipy.sparse as sp

from crossmodal.data.sources.spec import RawCollection, SourceSpec


def clean(raw: RawCollection, spec: SourceSpec, min_count: int | None = None,
          top_k: int | None = None) -> tuple[np.ndarray, list[str], dict]:
    """Apply the source's cleaning rule: ``(kept item indices, vocabulary, counts)``."""
    n = len(raw.ids)
    labelled = raw.labels.any(axis=1)
    if raw.vocabulary is not None:
        vocab = list(raw.vocabulary)
    else:
        min_count = spec.bow_min_count if min_count is None else int(min_count)
        top_k = spec.bow_top_k if top_k is None else top_k
        scope = range(n) if spec.count_scope == "all" else np.flatnonzero(labelled)
        counts = Counter()
        for i in scope:
            counts.update(set(raw.tokens[i]) if spec.binary else raw.tokens[i])
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        vocab = sorted(ranked[:top_k] if top_k else ranked)
    keep = labelled.copy()
    if spec.require_token:
        vs = set(vocab)
        has = np.fromiter((any(t in vs for t in toks) for toks in raw.tokens), dtype=bool, count=n)
        keep &= has
    counts = {"parsed": n, "labelled": int(labelled.sum()), "kept": int(keep.sum()), "vocabulary": len(vocab)}
    return np.flatnonzero(keep), vocab, counts


def bow_matrix(tokens: list[list[str]], vocab: list[str], binary: bool) -> sp.csr_matrix:
    """``(N, len(vocab)) float32`` CSR bag of words of the N token lists: counts, or 0/1 with
    ``binary``; tokens outside ``vocab`` are ignored."""
    index = {w: i for i, w in enumerate(vocab)}
    indptr, cols = [0], []
    for toks in tokens:
        hits = [index[t] for t in toks if t in index]
        if binary:
            hits = sorted(set(hits))
        cols.extend(hits)
        indptr.append(len(cols))
    data = np.ones(len(cols), dtype=np.float32)
    m = sp.csr_matrix((data, np.array(cols, dtype=np.int64), np.array(indptr, dtype=np.int64)),
                      shape=(len(tokens), len(vocab)))
    m.sum_duplicates()
    return m
