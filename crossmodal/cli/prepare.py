"""``crossmodal datasets prepare``: build a canonical dataset folder from community .mat files, a
paired file, image lists, or a raw benchmark (also ``python -m data_prep.NAME``)."""

from __future__ import annotations

import argparse

from crossmodal.cli.common import seed
from crossmodal.errors import CrossmodalError


def add_prepare_arguments(p: argparse.ArgumentParser, name: str | None = None) -> None:
    """The options of ``datasets prepare`` (shared with ``python -m data_prep.NAME``)."""
    if name is None:
        p.add_argument("name", help="mirflickr25k, nuswide-tc10, nuswide-tc21, coco, iaprtc12; imagelist "
                                    "(image-only, from 'path label-vector' lists); or mat (any paired .mat/.npz file "
                                    "or folder of .npy/.npz features: --root FILE)")
    p.add_argument("--root", required=True,
                   help="the raw dataset folder, an archive of it, or the folder of community .mat files")
    p.add_argument("--out", required=True, help="the dataset folder to write (must not exist, unless --overwrite)")
    p.add_argument("--image-features", default=None, choices=("community", "vgg19", "clip", "hf", "pixels"),
                   help="community: the file's XAll (default when present); vgg19: fc7, needs torchvision; "
                        "clip / hf: a transformers model (default for raw images: clip); pixels: the raw images "
                        "resized to --pixel-size, for the methods' mode end2end")
    p.add_argument("--pixel-size", type=int, default=224,
                   help="pixels: side of the stored images (default 224; 602 KB a row)")
    p.add_argument("--text-features", default=None, choices=("bow", "clip", "hf"),
                   help="bow: the source's standard tag/word vocabulary (default); clip / hf: a transformers text "
                        "encoder")
    p.add_argument("--image-model", default=None,
                   help="local folder or cached hub name of the image model (vgg19: a .pth file)")
    p.add_argument("--text-model", default=None, help="local folder or cached hub name of the text model")
    p.add_argument("--allow-download", action="store_true", help="allow fetching model weights from the hub")
    p.add_argument("--protocol", default=None, help="split protocol (unsupervised, ugach; see `datasets list`)")
    p.add_argument("--seed", type=seed, default=0, help="split seed (default 0)")
    p.add_argument("--query", type=int, default=None, dest="n_query", help="override the protocol's query count")
    p.add_argument("--train", type=int, default=None, dest="n_train",
                   help="override the protocol's training count (0: all of the database)")
    p.add_argument("--validation", type=int, default=None, dest="n_validation", help="override the validation count")
    p.add_argument("--validation-fraction", type=float, default=None,
                   help="mat: share of the training side held out for validation (default 0.1; 0: none)")
    p.add_argument("--min-tag-count", type=int, default=None, help="override the vocabulary's minimum count")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--allow-count-mismatch", action="store_true",
                   help="warn instead of failing when counts differ from the standard release")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--query-list", default=None, help="imagelist: the query list (e.g. test.txt), relative to --root")
    p.add_argument("--database-list", default=None, help="imagelist: the database list (e.g. database.txt)")
    p.add_argument("--train-list", default=None, help="imagelist: the training list (default: the database)")


def run_prepare(args, name: str | None = None) -> int:
    """Build the dataset folder ``datasets prepare`` asks for (``name``: the source; default
    ``args.name``)."""
    from crossmodal.data.prepare import PrepareOptions, prepare, prepare_image_lists, prepare_paired

    options = PrepareOptions.from_args(args, name)
    if options.name == "mat":
        prepare_paired(options)
    elif options.name == "imagelist":
        prepare_image_lists(options)
    else:
        prepare(options)
    return 0
