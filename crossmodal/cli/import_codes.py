"""``crossmodal import-codes``: turn codes made by another repository into a run folder that
``evaluate`` and ``report`` treat like any other."""

from __future__ import annotations

from crossmodal.cli.common import print_run
from crossmodal.runs import import_codes
from crossmodal.runs.external import PARTS

PER_MODALITY = ("image", "text")

NAME = "import-codes"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="turn codes made by another repository into a run folder",
        description="Read external codes (±1 or 0/1, .npy or .mat, one file per part and modality, rows in the "
                    "order of the dataset's query / database parts), check them, and write a run folder that "
                    "evaluate and report treat like any other.")
    p.add_argument("--dataset", required=True, help="the dataset the codes were computed on")
    p.add_argument("--data-root", default=None, help="folder with the dataset's files")
    p.add_argument("--bits", type=int, required=True, help="code length of the files")
    p.add_argument("--name", required=True, help="label of the imported method in tables, e.g. djsrh-official")
    p.add_argument("--seed", type=int, default=0, help="seed of the dataset's split (default 0)")
    p.add_argument("--out", default="runs", help="folder that receives the new run folder (default ./runs)")
    for part in PARTS:
        for modality in PER_MODALITY:
            p.add_argument(f"--{part}-{modality}", default=None, metavar="FILE",
                           help=f"{part} {modality} codes (.npy, .mat or FILE.mat:VAR)")
    p.add_argument("--database-pair", default=None, metavar="FILE",
                   help="one code per database pair, coded from both modalities: the run reports the unified "
                        "convention (`evaluate --database-codes per-modality` scores --database-image/-text)")
    p.add_argument("--validation-fraction", type=float, default=None,
                   help="the dataset's validation share, as given to train (recorded; the query and database "
                        "parts the codes belong to do not depend on it)")
    return p


def run(args) -> int:
    files = {(part, m): getattr(args, f"{part}_{m}") for part in PARTS for m in PER_MODALITY
             if getattr(args, f"{part}_{m}")}
    if args.database_pair:
        files[("database", "pair")] = args.database_pair
    print_run(import_codes(files, args.dataset, args.bits, args.name, data_root=args.data_root, seed=args.seed,
                           out=args.out, validation_fraction=args.validation_fraction))
    return 0
