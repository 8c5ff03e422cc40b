"""The registry of named datasets (``toy``, ``wiki``, ``mirflickr25k`` ...) and of the benchmark
specs, and :func:`get_dataset`: a name users type, or a path (canonical folder, paired file,
feature folder).

* :data:`SOURCES`: every name ``--dataset`` accepts, with its description, loader and the
  parameters the loader reads.
* :func:`source_specs` / :func:`get_spec`: the benchmarks ``crossmodal datasets prepare`` builds
  (one ``SPEC`` per module: mirflickr, nuswide (tc10, tc21), coco, iaprtc12).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from crossmodal.data.folder import load_dataset
from crossmodal.data.readers.paired import SCHEME_TEXT
from crossmodal.data.readers.paths import is_paired_path, load_paired_path
from crossmodal.data.sources.coco import SPEC as COCO
from crossmodal.data.sources.community import load_source
from crossmodal.data.sources.iaprtc12 import SPEC as IAPRTC12
from crossmodal.data.sources.mirflickr import SPEC as MIRFLICKR
from crossmodal.data.sources.nuswide import SPEC_TC10 as NUSWIDE_TC10
from crossmodal.data.sources.nuswide import SPEC_TC21 as NUSWIDE_TC21
from crossmodal.data.sources.spec import SourceSpec
from crossmodal.data.types import Dataset
from crossmodal.errors import DataError, did_you_mean

SPECS = (MIRFLICKR, NUSWIDE_TC10, NUSWIDE_TC21, COCO, IAPRTC12)


def source_specs() -> dict[str, SourceSpec]:
    """The benchmark specs by name, in the order ``datasets list`` shows them."""
    return {s.name: s for s in SPECS}


def get_spec(name: str) -> SourceSpec:
    """The spec of benchmark ``name``; an unknown name is a :class:`DataError` with a hint."""
    specs = source_specs()
    if name not in specs:
        raise DataError(f"no preparable dataset {name!r}{did_you_mean(name, specs)} known: {', '.join(specs)}; "
                        "also imagelist (image-only, from 'path label-vector' lists) and mat (any paired "
                        ".mat/.npz file or .npy folder: --root FILE)")
    return specs[name]


@dataclass(frozen=True)
class Source:
    """A name ``--dataset`` accepts: its description, loader, whether it needs ``--data-root``."""

    name: str
    description: str
    loader: Callable[..., Dataset]
    needs_files: bool
    params: tuple = ()  # keys the loader reads; validation_fraction is accepted by every source


def _toy(root=None, seed: int = 0, n: int = 2000, n_query: int = 200, n_validation=None):
    from crossmodal.data.sources.toy import make_toy

    return make_toy(n=int(n), seed=int(seed), n_query=int(n_query),
                    n_validation=None if n_validation is None else int(n_validation))


def _wiki(root=None, seed: int = 0):
    from crossmodal.data.sources.wiki import load_wiki

    return load_wiki(root, seed=int(seed))


def _benchmark(name):
    def load(root=None, seed: int = 0, protocol=None, n_query=None, n_train=None, n_validation=None,
             strict_counts=True):
        return load_source(get_spec(name), root, seed=int(seed), protocol=protocol, n_query=n_query,
                           n_train=n_train, n_validation=n_validation, strict_counts=strict_counts)
    return load


def _digits(root=None, seed: int = 0, n_query: int = 500, n_validation: int = 100):
    from crossmodal.data.sources.images import load_digits_dataset

    return load_digits_dataset(seed=int(seed), n_query=int(n_query), n_validation=int(n_validation))


def _cifar10(root=None, seed: int = 0, protocol: str = "1k", strict_counts: bool = True):
    from crossmodal.data.sources.images import load_cifar10

    return load_cifar10(root, seed=int(seed), protocol=protocol or "1k", strict_counts=strict_counts)


BENCHMARK_PARAMS = ("protocol", "n_query", "n_train", "n_validation", "strict_counts")
PATH_PARAMS = ("protocol", "n_query", "n_train", "n_validation")
SOURCES: dict[str, Source] = {
    "toy": Source("toy", "rendered shapes with captions, generated from a seed (no files; the demo's data)", _toy,
                  False, ("n", "n_query", "n_validation")),
    "wiki": Source("wiki", "Wikipedia cross-modal: 2,866 pairs, 128-d SIFT BoVW / 10-d LDA, 10 classes "
                           "(needs --data-root)", _wiki, True),
    "digits": Source("digits", "image-only: scikit-learn's 1,797 8x8 handwritten digits, 10 classes "
                               "(bundled, offline)", _digits, False, ("n_query", "n_validation")),
    "cifar10": Source("cifar10", "image-only: CIFAR-10 python batches, protocols 1k / 10k (needs --data-root)",
                      _cifar10, True, ("protocol", "strict_counts")),
}
SOURCES.update({s.name: Source(s.name, s.title + " (--data-root: community .mat files or a prepared folder)",
                               _benchmark(s.name), True, BENCHMARK_PARAMS) for s in SPECS})


def _check_params(where: str, params: dict, known: tuple) -> None:
    known = list(known) + ["validation_fraction"]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise DataError(f"{where}: unknown dataset parameter {unknown[0]!r}{did_you_mean(unknown[0], known)} known: "
                        f"{', '.join(known)}")


def describe_routes() -> str:
    """Every way ``--dataset`` can name data (for error messages)."""
    return (f"known names: {', '.join(SOURCES)}; or a path: a canonical dataset folder (meta.json), "
            f"a paired .mat / .npz file ({SCHEME_TEXT}), "
            "or a folder of such .npy/.npz files (`crossmodal datasets prepare NAME|mat|imagelist --out DIR` writes "
            "a canonical folder)")


def get_dataset(name: str, root: str | os.PathLike | None = None, seed: int = 0, **params) -> Dataset:
    """Load a dataset by registry name, or from a path: a canonical dataset folder, a paired
    ``.mat`` / ``.npz`` file, or a folder of ``.npy`` / ``.npz`` feature files.

    ``params`` are the source's keys (``Source.params``; a key a source does not read is an
    error) plus ``validation_fraction`` for every source: the share of the training side held
    out for model selection (0 trains on every training pair).
    """
    params = {k: v for k, v in params.items() if v is not None}
    vf = params.pop("validation_fraction", None)
    if name in SOURCES:
        src = SOURCES[name]
        _check_params(f"dataset {name}", params, src.params)
        ds = src.loader(root=root, seed=seed, **params)
        if vf is not None:
            ds.with_validation_fraction(vf, seed)
        return ds
    p = Path(name)
    if p.exists() and root is not None:
        raise DataError(f"--data-root {root} does nothing with --dataset {name} (a path); drop one of them")
    if p.is_dir() and (p / "meta.json").is_file():
        _check_params(f"dataset folder {p}", params, ())
        ds = load_dataset(p)
        if vf is not None:
            ds.with_validation_fraction(vf, seed)
        elif int(seed) != ds.split.seed:
            ds.notes.append(f"{p.name} has a fixed split ({ds.split.protocol}, seed {ds.split.seed}); --seed {seed} "
                            "seeds the model only (give validation_fraction to redraw the validation set with it)")
        return ds
    if p.exists() and is_paired_path(p):
        _check_params(f"dataset {p}", params, PATH_PARAMS)
        return load_paired_path(p, seed=int(seed), validation_fraction=vf, **params)
    if p.exists():
        raise DataError(f"{name}: not a dataset; {describe_routes()}")
    hint = did_you_mean(name, SOURCES) or ";"
    raise DataError(f"unknown dataset {name!r} (no such name or path){hint} {describe_routes()}")
