"""``crossmodal query``: search a trained run with a typed sentence or an image file."""

from __future__ import annotations

from pathlib import Path

from crossmodal.errors import CrossmodalError
from crossmodal.runs import contact_sheet, describe_hits, query_run

NAME = "query"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="search a trained model with a typed sentence or an image file",
        description="Embed the query with the run's own featurizers, hash it, and list the nearest database items "
                    "of the other modality by Hamming distance.")
    p.add_argument("run_dir")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", help="a sentence, e.g. \"a red circle\"")
    g.add_argument("--image", help="an image file (PNG, JPEG)")
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--sheet", default=None, metavar="PNG", help="also write a contact sheet of the retrieved images")
    p.add_argument("--allow-download", action="store_true",
                   help="allow this query to fetch the run's featurizer weights from a model hub (off by default)")
    p.add_argument("--data-root", default=None,
                   help="the data moved: its new place (the file/folder of a path dataset, else the source's folder)")
    return p


def run(args) -> int:
    if args.sheet:
        sheet = Path(args.sheet)
        if sheet.is_dir() or not sheet.parent.is_dir():
            why = "is a folder" if sheet.is_dir() else f"folder {sheet.parent} does not exist"
            raise CrossmodalError(f"--sheet {sheet}: {why}; give a PNG file path in an existing folder")
    target, D, I, ds = query_run(args.run_dir, text=args.text, image=args.image, k=args.k,
                                 allow_download=args.allow_download, data_root=args.data_root)
    db = ds.split.database[I[I >= 0]]
    print(f"{'rank':>4} {'hamming':>7}  {'id':<14} {'labels / caption'}")
    for r, hit in enumerate(describe_hits(ds, D, I), 1):
        print(f"{r:>4} {hit.distance:>7}  {hit.id:<14} {hit.description()}")
    if args.sheet:
        if "pixels" not in ds.extras or target != "image":
            raise CrossmodalError("--sheet needs an image search on a dataset that keeps its pixels (toy)")
        contact_sheet([(args.text or Path(args.image).name, ds.extras["pixels"][db])], args.sheet)
        print(f"contact sheet: {args.sheet}")
    return 0
