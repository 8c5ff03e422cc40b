"""``crossmodal demo``: train on the built-in toy data, evaluate, and query the run with typed
sentences into a contact sheet. A method with a ``fast`` preset trains with it. The last line
is the ``crossmodal serve`` command that searches the run in a browser."""

from __future__ import annotations

import shlex

from crossmodal.cli.common import add_common_train
from crossmodal.config import load_config_file, preset_path, presets_of
from crossmodal.runs import contact_sheet, query_run, train_run
from crossmodal.tracking import wandb_settings

NAME = "demo"
DEMO_QUERIES = ("red circle", "blue square", "yellow triangle", "green cross", "purple circle and red square")
DEMO_PRESET = "fast"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="train on the built-in toy data, evaluate, and query it with typed sentences",
        description="Offline demo: generates the toy dataset (rendered shapes + captions), trains a hasher, writes "
                    "the result table, a precision-recall plot and a contact sheet of the images retrieved for a "
                    "few typed queries into a fresh run folder.")
    p.add_argument("--method", default="ugach",
                   help=f"method to train (default ugach; see `crossmodal methods`); its {DEMO_PRESET!r} preset "
                        "when it has one")
    p.add_argument("--bits", type=int, default=32, help="code length (default 32)")
    p.add_argument("--query", action="append", default=None, metavar="TEXT",
                   help="a typed query for the contact sheet (repeatable; default: a few shape/colour phrases)")
    add_common_train(p)
    return p


def demo_config(method: str) -> dict:
    """The config the demo trains ``method`` with: its ``fast`` preset for the toy data when it
    has one (a schedule tuned for small feature sets on a CPU), else its defaults."""
    from crossmodal.methods import get_method, method_key

    key = method_key(get_method(method))
    if DEMO_PRESET not in presets_of(key):
        return {}
    return load_config_file(preset_path(key, DEMO_PRESET), "toy", key)


def run(args) -> int:
    cfg = demo_config(args.method)
    if args.device:
        cfg["device"] = args.device
    run_dir = train_run(args.method, "toy", args.bits, seed=args.seed, config=cfg, out=args.out, tracker=args.tracker,
                        wandb=wandb_settings(args))
    print((run_dir / "report.md").read_text())
    rows = []
    for q in args.query or DEMO_QUERIES:
        _, D, I, ds = query_run(run_dir, text=q, k=8)
        pixels = ds.extras["pixels"][ds.split.database[I]]
        caps = ds.extras["captions"][ds.split.database[I]]
        rows.append((q, pixels))
        print(f"query {q!r}: " + "; ".join(f"[{d}] {c}" for d, c in zip(D[:3], caps[:3])))
    sheet = contact_sheet(rows, run_dir / "contact_sheet.png")
    print(f"\nrun folder: {run_dir}\n  report: {run_dir / 'report.md'}\n  PR curve: {run_dir / 'pr.png'}\n"
          f"  contact sheet: {sheet}")
    print(f"search it in a browser (pip install crossmodal[serve]): crossmodal serve {shlex.quote(str(run_dir))}")
    return 0
