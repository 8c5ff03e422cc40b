"""The settings of one preparation (:class:`PrepareOptions`), filled from ``crossmodal datasets
prepare`` / ``python -m data_prep.NAME`` arguments by :meth:`PrepareOptions.from_args` or by hand."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from crossmodal.features import make_featurizer


def partial_folder(out: Path) -> Path:
    """Where the dataset folder ``out`` is written before it takes its name (a rerun resumes there)."""
    return out.parent / f".{out.name}.partial"


@dataclass(frozen=True)
class PrepareOptions:
    """What to prepare, from where, into where, and how.

    Source and output:

    * ``name``: a benchmark (``mirflickr25k``, ``nuswide-tc10``, ``nuswide-tc21``, ``coco``,
      ``iaprtc12``), ``imagelist`` or ``mat``.
    * ``root``: the raw dataset folder, an archive of it, or the folder of community ``.mat`` files
      (``mat``: the paired file or feature folder).
    * ``out``: the dataset folder to write; an existing one only with ``overwrite``.

    Features: ``image_features`` ``None`` / ``"community"`` (the file's XAll), ``vgg19``, ``clip``,
    ``hf`` or ``pixels`` (raw images at ``pixel_size`` x ``pixel_size``, (H, W, C) rows in [0, 1],
    the input of ``mode: end2end``: 602 KB a row at 224); ``text_features`` ``None`` / ``"bow"``
    (the source's vocabulary, or the file's YAll), ``clip`` or ``hf``; ``image_model`` /
    ``text_model`` a local folder or cached hub name (vgg19: a ``.pth`` file); ``allow_download``
    lets weights come from the hub; ``device``, ``batch_size``; ``chunk`` rows are written (and
    resumed) at a time; ``progress`` shows progress bars.

    Split: ``protocol`` (the source's, e.g. ``unsupervised`` / ``ugach``), ``seed``, and overrides
    of its sizes ``n_query``, ``n_train`` (0: the whole database), ``n_validation`` (imagelist:
    default 500); ``validation_fraction`` (``mat`` only: share of the training side held out,
    default 0.1). Cleaning: ``min_count`` overrides the vocabulary's minimum count;
    ``strict_counts`` makes a count that differs from the standard release an error (else a
    warning). Image lists: ``query_list``, ``database_list``, ``train_list`` (relative to ``root``).
    """

    name: str
    root: str | os.PathLike
    out: str | os.PathLike
    image_features: str | None = None
    text_features: str | None = None
    image_model: str | None = None
    text_model: str | None = None
    pixel_size: int = 224
    allow_download: bool = False
    device: str = "auto"
    batch_size: int = 64
    chunk: int = 1024
    progress: bool = True
    protocol: str | None = None
    seed: int = 0
    n_query: int | None = None
    n_train: int | None = None
    n_validation: int | None = None
    validation_fraction: float | None = None
    min_count: int | None = None
    strict_counts: bool = True
    overwrite: bool = False
    query_list: str | None = None
    database_list: str | None = None
    train_list: str | None = None

    @classmethod
    def from_args(cls, args, name: str | None = None) -> "PrepareOptions":
        """The options of parsed ``datasets prepare`` arguments (``name`` given: ``python -m
        data_prep.NAME``, whose parser has no ``name`` argument)."""
        return cls(
            name=name or args.name, root=args.root, out=args.out, image_features=args.image_features,
            text_features=args.text_features, image_model=args.image_model, text_model=args.text_model,
            pixel_size=args.pixel_size, allow_download=args.allow_download, device=args.device,
            batch_size=args.batch_size, protocol=args.protocol, seed=args.seed, n_query=args.n_query,
            n_train=args.n_train, n_validation=args.n_validation, validation_fraction=args.validation_fraction,
            min_count=args.min_tag_count, strict_counts=not args.allow_count_mismatch, overwrite=args.overwrite,
            query_list=args.query_list, database_list=args.database_list, train_list=args.train_list,
        )

    @property
    def out_path(self) -> Path:
        """``out`` as a path with a real last component (``.`` and ``..`` resolved)."""
        out = Path(self.out)
        return out.resolve() if out.name in ("", ".", "..") else out

    @property
    def partial_path(self) -> Path:
        """:func:`partial_folder` of :attr:`out_path`."""
        return partial_folder(self.out_path)

    def featurizer(self, modality: str, kind: str, model: str | None):
        """A new ``kind`` featurizer of ``modality`` (:func:`~crossmodal.features.make_featurizer`)
        with these options' device, batch size, pixel size and download permission."""
        return make_featurizer(modality, kind, model=model, device=self.device, allow_download=self.allow_download,
                               batch_size=self.batch_size, pixel_size=self.pixel_size)
