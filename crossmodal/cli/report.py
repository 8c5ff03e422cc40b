"""``crossmodal report``: aggregate run folders into tables (Markdown, LaTeX, CSV) and figures."""

from __future__ import annotations

from crossmodal.report import DEFAULT_METRICS, write_report

NAME = "report"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="aggregate run folders into tables (Markdown, CSV) and plots",
        description="Collect finished runs under the given folders and write table.md, table.csv and PNG plots "
                    "(precision-recall, mAP vs bits, precision@k): rows methods, columns bits, blocks per "
                    "direction, mean ± std over seeds.")
    p.add_argument("runs", nargs="+", help="run folders or folders that contain them")
    p.add_argument("--out", required=True, help="folder for table.md, table.csv and the plots")
    p.add_argument("--metric", action="append", default=None, help="metrics to tabulate (default mAP@all and mAP@100)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--order", default=None, metavar="LABEL,LABEL",
                   help="row order of the configurations (default: the order the labels were given, else sorted)")
    p.add_argument("--label", action="append", default=None, dest="labels", metavar="LABEL",
                   help="only these configurations, in this order (repeatable)")
    p.add_argument("--allow-mixed-codes", action="store_true",
                   help="allow per-modality and unified database codes in one table (marked with a dagger)")
    return p


def run(args) -> int:
    order = [o.strip() for o in (args.order or "").split(",") if o.strip()] or list(args.labels or ())
    metrics = tuple(args.metric or DEFAULT_METRICS)
    table, files = write_report(args.runs, args.out, metrics=metrics, methods_order=order, plots=not args.no_plots,
                                only=args.labels, allow_mixed_codes=args.allow_mixed_codes)
    print(table.to_markdown(metrics))
    print(f"{len(table.runs)} runs -> " + ", ".join(str(f) for f in files[:3]) + f" and {len(files) - 3} figure files")
    return 0
