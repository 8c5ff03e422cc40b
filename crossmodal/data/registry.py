"""Dataset registry: names users type (``toy``, ``wiki``) or a canonical dataset folder."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from crossmodal.data.core import Dataset, load_dataset
from crossmodal.errors import DataError


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    loader: Callable[..., Dataset]
    needs_files: bool


def _toy(root=None, seed: int = 0, n: int = 2000, n_query: int = 200, **_):
    from crossmodal.data.toy import make_toy

    return make_toy(n=int(n), seed=int(seed), n_query=int(n_query))


def _wiki(root=None, seed: int = 0, **_):
    from crossmodal.data.wiki import load_wiki

    return load_wiki(root, seed=int(seed))


def _benchmark(name):
    def load(root=None, seed: int = 0, protocol=None, n_query=None, n_train=None, n_validation=None,
             strict_counts=True, **_):
        from crossmodal.data.prepare import load_source

        return load_source(name, root, seed=int(seed), protocol=protocol, n_query=n_query, n_train=n_train,
                           n_validation=n_validation, strict_counts=strict_counts)
    return load


def _digits(root=None, seed: int = 0, n_query: int = 500, n_validation: int = 100, **_):
    from crossmodal.data.images import load_digits_dataset

    return load_digits_dataset(seed=int(seed), n_query=int(n_query), n_validation=int(n_validation))


def _cifar10(root=None, seed: int = 0, protocol: str = "1k", strict_counts: bool = True, **_):
    from crossmodal.data.images import load_cifar10

    return load_cifar10(root, seed=int(seed), protocol=protocol or "1k", strict_counts=strict_counts)


SOURCES: dict[str, Source] = {
    "toy": Source("toy", "rendered shapes with captions, generated from a seed (no files; the demo's data)", _toy, False),
    "wiki": Source("wiki", "Wikipedia cross-modal: 2,866 pairs, 128-d SIFT BoVW / 10-d LDA, 10 classes (needs --data-root)", _wiki, True),
    "digits": Source("digits", "image-only: scikit-learn's 1,797 8x8 handwritten digits, 10 classes (bundled, offline)", _digits, False),
    "cifar10": Source("cifar10", "image-only: CIFAR-10 python batches, protocols 1k / 10k (needs --data-root)", _cifar10, True),
}


def _register_benchmarks() -> None:
    from crossmodal.data.prepare import _sources

    for name, spec in _sources().items():
        SOURCES[name] = Source(name, spec.title + " (--data-root: community .mat files or a prepared folder)",
                               _benchmark(name), True)


_register_benchmarks()


def get_dataset(name: str, root: str | os.PathLike | None = None, seed: int = 0, **params) -> Dataset:
    """Load a dataset by registry name, or from a canonical dataset folder given as a path."""
    if name in SOURCES:
        return SOURCES[name].loader(root=root, seed=seed, **params)
    p = Path(name)
    if p.is_dir():
        return load_dataset(p)
    close = difflib.get_close_matches(name, list(SOURCES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise DataError(f"unknown dataset {name!r}{hint} known: {', '.join(SOURCES)}, or a path to a dataset folder")
