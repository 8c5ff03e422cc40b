"""Text featurizers: :func:`tokenize` and the bag of words :class:`BowFeaturizer` (toy captions,
the benchmarks' tag and word vocabularies)."""

from __future__ import annotations

import re

import numpy as np

from crossmodal.errors import DataError

STOPWORDS = frozenset({"a", "an", "and", "the", "with", "of", "in", "on", "at", "to", "is"})
_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters and digits of ``text``."""
    return _TOKEN.findall(text.lower())


class BowFeaturizer:
    """Bag of words over a fixed vocabulary: ``transform(list of N texts) -> (N, V) float32``.

    Words outside the vocabulary and stopwords are ignored; counts are kept as they are, or
    clipped to 0/1 with ``binary`` (tag vectors of the community MIRFlickr / NUS-WIDE files).
    ``tags=True`` treats each whitespace-separated token as one tag, unsplit.
    """

    kind = "bow"

    def __init__(self, vocabulary: list[str], stopwords=STOPWORDS, binary: bool = False, tags: bool = False):
        self.vocabulary = list(vocabulary)
        self.stopwords = frozenset(stopwords)
        self.binary, self.tags = bool(binary), bool(tags)
        self.index = {w: i for i, w in enumerate(self.vocabulary)}

    def tokens(self, text: str) -> list[str]:
        return text.lower().split() if self.tags else tokenize(text)

    @classmethod
    def fit(cls, texts: list[str], min_count: int = 1, stopwords=STOPWORDS) -> "BowFeaturizer":
        counts: dict[str, int] = {}
        for t in texts:
            for w in tokenize(t):
                if w not in stopwords:
                    counts[w] = counts.get(w, 0) + 1
        vocab = sorted(w for w, c in counts.items() if c >= min_count)
        return cls(vocab, stopwords)

    @property
    def dim(self) -> int:
        return len(self.vocabulary)

    def transform(self, texts: list[str], strict: bool = False) -> np.ndarray:
        """Counts of vocabulary words; with ``strict``, a text with no known word is an error."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        rows, cols = [], []
        for i, t in enumerate(texts):
            hits = [self.index[w] for w in self.tokens(t) if w in self.index]
            if strict and not hits:
                shown = ", ".join(self.vocabulary[:30])
                raise DataError(f"text {t!r}: none of its words is in the vocabulary; known words: {shown}")
            rows.extend([i] * len(hits))
            cols.extend(hits)
        np.add.at(out, (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)), 1.0)
        if self.binary:
            np.minimum(out, 1.0, out=out)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.transform([text], strict=True)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocabulary": self.vocabulary, "stopwords": sorted(self.stopwords),
                "binary": self.binary, "tags": self.tags}
