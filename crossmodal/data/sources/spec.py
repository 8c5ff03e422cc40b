"""What a benchmark source declares (:class:`SourceSpec`) and what its raw parser returns
(:class:`RawCollection`), with the helpers parsers fill it with (:func:`multi_hot`,
:func:`word_tokens`).

Each benchmark module (:mod:`~crossmodal.data.sources.mirflickr`, ``nuswide``, ``coco``,
``iaprtc12``) defines one ``SPEC`` from these; :mod:`crossmodal.data.sources.registry` lists them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from crossmodal.data.types import Split
from crossmodal.errors import DataError
from crossmodal.features import STOPWORDS, tokenize


@dataclass
class RawCollection:
    """What a raw parser returns, before cleaning: N candidate items.

    ``tokens[i]`` are the tags or words of item i (the BoW input); ``sentences[i]`` the text a
    neural text encoder reads (defaults to the tokens joined by spaces).
    """

    ids: list[str]
    images: list[Path]
    tokens: list[list[str]]
    labels: np.ndarray
    label_names: list[str]
    sentences: list[str] | None = None
    vocabulary: list[str] | None = None  # a fixed vocabulary (NUS-WIDE's 1,000 tags)
    notes: dict = field(default_factory=dict)


@dataclass
class SourceSpec:
    """A benchmark: citation, expected counts, split protocols, raw parser and cleaning rule.

    Cleaning: the BoW vocabulary is the tokens occurring at least ``bow_min_count`` times
    (counted over all parsed items when ``count_scope == "all"``, else over the labelled
    ones), cut to the ``bow_top_k`` most frequent when set; an item is kept when it has a
    label and, if ``require_token``, at least one vocabulary token.
    """

    name: str
    title: str
    citation: str
    licence: str
    expected: dict
    protocols: dict
    default_protocol: str
    parse_raw: Callable[[Path], RawCollection]
    bow_min_count: int = 1
    bow_top_k: int | None = None
    count_scope: str = "all"
    require_token: bool = True
    tags: bool = True
    binary: bool = True
    keep_used_labels: bool = False
    community_files: str = ""

    def split(self, n: int, seed: int = 0, protocol: str | None = None, n_query=None, n_train=None,
              n_validation=None) -> Split:
        """The named protocol's seeded split (sizes overridable); validation comes out of the
        database and is disjoint from train."""
        protocol = protocol or self.default_protocol
        if protocol not in self.protocols:
            raise DataError(f"{self.name}: unknown protocol {protocol!r}; known: {', '.join(self.protocols)}")
        p = dict(self.protocols[protocol])
        nq = int(n_query if n_query is not None else p["query"])
        nv = int(n_validation if n_validation is not None else p.get("validation", 0))
        nt = n_train if n_train is not None else p.get("train")
        nt = None if nt == 0 else nt  # 0: every database item not held out for validation
        if nq >= n:
            raise DataError(f"{self.name}: protocol {protocol!r} wants {nq} queries but there are only {n} items; "
                            "give smaller --query/--train sizes")
        rest = n - nq - nv
        if nt is not None and int(nt) > rest:
            raise DataError(f"{self.name}: protocol {protocol!r} wants {nt} training pairs but only {rest} remain "
                            f"after {nq} queries and {nv} validation items")
        name = protocol if (n_query, n_train, n_validation) == (None, None, None) else f"{protocol}+custom"
        return Split.random(n, n_query=nq, n_train=None if nt is None else int(nt), n_validation=nv, seed=seed,
                            protocol=name)

    def check_counts(self, found: dict, strict: bool, log=print) -> None:
        """Compare ``found`` figures with :attr:`expected`; every difference is named. ``strict``:
        a difference is a :class:`DataError`; otherwise a warning (also passed to ``log``)."""
        diffs = [f"{k}: expected {self.expected[k]:,}, found {v:,}" for k, v in found.items()
                 if k in self.expected and self.expected[k] is not None and v != self.expected[k]]
        if not diffs:
            return
        msg = f"{self.name}: counts differ from the standard release ({'; '.join(diffs)})"
        if strict:
            raise DataError(msg + "; if this is a deliberate subset, pass --allow-count-mismatch")
        warnings.warn(msg, stacklevel=2)
        log("warning: " + msg)


def multi_hot(label_sets: list, keys: list) -> np.ndarray:
    """``(N, len(keys)) uint8`` with a 1 where item r's set holds ``keys[j]`` (others ignored)."""
    col = {k: j for j, k in enumerate(keys)}
    out = np.zeros((len(label_sets), len(keys)), dtype=np.uint8)
    for r, s in enumerate(label_sets):
        for k in s:
            if k in col:
                out[r, col[k]] = 1
    return out


def word_tokens(texts: list[str]) -> list[list[str]]:
    """Lower-cased words of each text without stopwords (the BoW featurizer's tokens)."""
    return [[w for w in tokenize(t) if w not in STOPWORDS] for t in texts]
