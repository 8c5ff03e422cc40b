"""``crossmodal evaluate``: re-evaluate a finished run into ``RUN/evaluations/eval-NNNN`` (the run's
own files never change), or print it under every published convention."""

from __future__ import annotations

from crossmodal.cli.common import add_runtime
from crossmodal.runs import evaluate_run, load_run

NAME = "evaluate"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="re-evaluate a finished run",
        description="Recompute the run's report (JSON, Markdown, PR plot) from its saved model into a new numbered "
                    "folder RUN/evaluations/eval-NNNN; the run's own files are never changed. Refuses data whose "
                    "content fingerprint differs from training.")
    p.add_argument("run_dir")
    p.add_argument("-k", type=int, action="append", default=None,
                   help="cut-off for mAP@k and P@k (repeatable; default 100)")
    p.add_argument("--all-directions", action="store_true", help="also I->I and T->T")
    p.add_argument("--data-root", default=None,
                   help="the data moved: its new place (the file/folder of a path dataset, else the source's folder)")
    p.add_argument("--database-codes", default=None, choices=("per-modality", "unified"),
                   help="database-coding convention (default: the one the run was trained with)")
    p.add_argument("--conventions", default=None, choices=("published",),
                   help="published: print one table of the run under every published convention "
                        "(mAP@all / mAP@50 both normalisations, no-relevant queries counted / left out, "
                        "database coding) and write nothing")
    p.add_argument("--retrieval", choices=("hamming", "paper"), default="hamming",
                   help="hamming: rank by Hamming distance (default); paper: the method's own retrieval (URPH)")
    add_runtime(p)
    return p


def run(args) -> int:
    from crossmodal.retrieval.evaluate import published_conventions, published_markdown

    ks = tuple(args.k or (100,))
    dirs = ("i2t", "t2i", "i2i", "t2t") if args.all_directions else None
    if args.retrieval == "paper":
        dirs = ("i2i",)
    if args.conventions == "published":
        spec, hasher, ds = load_run(args.run_dir, data_root=args.data_root)
        run_dirs = dirs or spec.directions or ("i2t", "t2i")
        cross = tuple(d for d in run_dirs if d in ("i2t", "t2i", "i2i"))
        print(published_markdown(published_conventions(hasher, ds, directions=cross), directions=cross))
        return 0
    report, folder = evaluate_run(args.run_dir, ks=ks, directions=dirs, database_codes=args.database_codes,
                                  retrieval=args.retrieval, data_root=args.data_root)
    print(report.to_markdown())
    print(f"evaluation written to {folder} (the run's own report.json is unchanged)")
    return 0
