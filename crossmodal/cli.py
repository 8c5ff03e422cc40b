"""The ``crossmodal`` command line: demo, datasets, train, evaluate, query.

Every user error prints one line ``crossmodal: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from crossmodal import __version__
from crossmodal.errors import CrossmodalError


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one ``crossmodal: error:`` line (exit 2)."""

    def error(self, message):  # noqa: D401
        sub = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        hint = f"see `crossmodal {sub} --help`" if sub else "see `crossmodal --help`"
        self.exit(2, f"crossmodal: error: {sub + ': ' if sub else ''}{message}; {hint}\n")


def _seed(value: str) -> int:
    from crossmodal.engine import SEED_MAX

    try:
        seed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number in 0..{SEED_MAX}, got {value!r}") from None
    if not 0 <= seed <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be a whole number in 0..{SEED_MAX}, got {value!r}")
    return seed


DEMO_QUERIES = ("red circle", "blue square", "yellow triangle", "green cross", "purple circle and red square")


def _add_common_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=_seed, default=0, help="random seed for the split and the model (default 0)")
    p.add_argument("--out", default="runs", help="folder that receives a new run folder (default ./runs)")
    p.add_argument("--tracker", default="jsonl", choices=("none", "jsonl", "wandb"),
                   help="jsonl: metrics.jsonl in the run folder (default); wandb: also wandb, offline unless logged in")
    p.add_argument("--device", default=None, help="auto (CUDA when present), cpu, cuda, cuda:N")
    _add_runtime(p)
    add_wandb_arguments(p)


def _add_runtime(p: argparse.ArgumentParser, top: bool = False) -> None:
    """--threads, --quiet, --verbose: on the main parser and again on the long-running commands
    (their defaults there are suppressed, so a value given before the command survives)."""
    d = None if top else argparse.SUPPRESS
    p.add_argument("--threads", default=d, metavar="N|auto",
                   help="CPU threads for torch, the BLAS and evaluation workers (default $CROSSMODAL_THREADS, "
                        "else auto: 1 thread in epoch loops, all cores for kNN, encoding and evaluation); "
                        "also a `threads:` config key")
    p.add_argument("-q", "--quiet", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="log warnings only (no per-epoch lines)")
    p.add_argument("-v", "--verbose", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="debug logging")


def _method_names() -> list[str]:
    from crossmodal.methods import available_methods

    try:
        return available_methods()
    except CrossmodalError:  # pragma: no cover - a broken user module must not break --help
        return []


def add_wandb_arguments(p: argparse.ArgumentParser) -> None:
    """``--wandb-project/--wandb-entity/--wandb-tags/--wandb-notes`` (defaults: $WANDB_PROJECT, $WANDB_ENTITY)."""
    p.add_argument("--wandb-project", default=None, help="wandb project (default $WANDB_PROJECT, else crossmodal)")
    p.add_argument("--wandb-entity", default=None, help="wandb entity / team (default $WANDB_ENTITY)")
    p.add_argument("--wandb-tags", default=None, help="comma-separated wandb tags, e.g. paper,ablation")
    p.add_argument("--wandb-notes", default=None, help="wandb notes of the run")


def wandb_settings(args) -> dict:
    tags = [t.strip() for t in (getattr(args, "wandb_tags", None) or "").split(",") if t.strip()]
    out = {"project": getattr(args, "wandb_project", None), "entity": getattr(args, "wandb_entity", None),
           "tags": tags or None, "notes": getattr(args, "wandb_notes", None)}
    return {k: v for k, v in out.items() if v}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="crossmodal",
        description="Cross-modal hashing of images and texts: train, evaluate and query binary-code retrieval models.",
        epilog="Start with `crossmodal demo` (offline, about a minute on a laptop CPU).",
    )
    parser.add_argument("--version", action="version", version=f"crossmodal {__version__}")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import a module of your own methods first (its @register_method classes, or "
                             "module:Class methods of saved runs); repeatable")
    _add_runtime(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="train on the built-in toy data, evaluate, and query it with typed sentences",
                       description="Offline demo: generates the toy dataset (rendered shapes + captions), trains a "
                                   "hasher, writes the result table, a precision-recall plot and a contact sheet of the "
                                   "images retrieved for a few typed queries into a fresh run folder.")
    p.add_argument("--method", default="ugach", help="method to train (default ugach; see `crossmodal methods`)")
    p.add_argument("--bits", type=int, default=32, help="code length (default 32)")
    p.add_argument("--query", action="append", default=None, metavar="TEXT",
                   help="a typed query for the contact sheet (repeatable; default: a few shape/colour phrases)")
    _add_common_train(p)

    p = sub.add_parser("datasets", help="list the known datasets or describe one",
                       description="Datasets are named sources (`crossmodal datasets list`) or paths to canonical dataset folders.")
    dsub = p.add_subparsers(dest="datasets_command", metavar="ACTION")
    dsub.add_parser("list", help="list the known datasets")
    pi = dsub.add_parser("info", help="load a dataset and print its sizes, split and hash")
    pi.add_argument("name", help="dataset name (toy, wiki, digits, mirflickr25k, ...) or a dataset folder")
    pi.add_argument("--data-root", default=None, help="folder with the dataset's files (wiki: raw_features.mat ...)")
    pi.add_argument("--seed", type=_seed, default=0)
    pp = dsub.add_parser("prepare", help="build a dataset folder from community .mat files or the raw dataset",
                         description="Turn the community feature files, or the raw images + tags/captions, of a "
                                     "benchmark into a canonical dataset folder with its standard split. Resumable: "
                                     "rerun the same command after an interruption.")
    add_prepare_arguments(pp)
    pv = dsub.add_parser("verify", help="check a dataset folder's file hashes, shapes, split hash and standard counts")
    pv.add_argument("folder")

    p = sub.add_parser("train", help="train a method on a dataset and evaluate it",
                       description="Train METHOD on a dataset at one code length into a fresh run folder, then "
                                   "evaluate I->T and T->I on the query split. Extra key=value pairs override the "
                                   "method's config (unknown keys are errors).")
    p.add_argument("method", nargs="?", default=None,
                   help=f"{', '.join(_method_names())}, or module.path:Class; omit with --from")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="method config overrides, e.g. epochs=5")
    p.add_argument("--from", dest="from_run", default=None, metavar="RUN_DIR",
                   help="rerun exactly what RUN_DIR ran (method, bits, seed, resolved config, dataset) into a new folder")
    p.add_argument("--dataset", default=None, help="toy, wiki, digits, mirflickr25k, cifar10, ... or a dataset folder")
    p.add_argument("--data-root", default=None, help="folder with the dataset's files")
    p.add_argument("--bits", type=int, default=None, help="code length, 1..1024")
    p.add_argument("--label", default=None,
                   help="name of this configuration in tables (default: method, preset and overrides, e.g. ugach-fast+epochs=5)")
    p.add_argument("--protocol", default=None,
                   help="split protocol of the dataset (benchmarks: see `datasets list`; .mat/.npy: blocks or random)")
    p.add_argument("--validation-fraction", type=float, default=None,
                   help="share of the training side held out for model selection (0: train on every pair, no selection)")
    p.add_argument("--dataset-param", action="append", default=[], metavar="KEY=VALUE",
                   help="other dataset keys (n_query, n_train, n_validation, ...; unknown keys are errors)")
    p.add_argument("--log-artifact", action="store_true",
                   help="wandb: upload the model, database codes and the dataset folder/file as artifacts")
    p.add_argument("--config", default=None, help="YAML config file (keys of the method, optional datasets: overrides)")
    p.add_argument("--preset", default=None, help="config from experiments/configs: paper (METHOD.yaml) or METHOD-PRESET.yaml (ugach: fast)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--codes-from", default=None, choices=("discriminator", "generator"),
                   help="ugach: which network's codes are kept (default discriminator)")
    p.add_argument("--database-codes", default=None, choices=("per-modality", "unified"),
                   help="evaluation convention: code each database item from its own modality (default), or "
                        "each database pair once from both (unified; methods such as cmfh, lssh, fsh)")
    _add_common_train(p)

    p = sub.add_parser("sweep", help="run a grid of methods x datasets x bits x seeds from a YAML file (resumable)",
                       description="Run every grid point of a sweep file into its own run folder. Finished runs are "
                                   "skipped, interrupted ones resumed, failures recorded and the sweep goes on.")
    from crossmodal.experiments.sweep import add_sweep_arguments

    add_sweep_arguments(p)
    _add_runtime(p)

    p = sub.add_parser("report", help="aggregate run folders into tables (Markdown, CSV) and plots",
                       description="Collect finished runs under the given folders and write table.md, table.csv and "
                                   "PNG plots (precision-recall, mAP vs bits, precision@k): rows methods, columns bits, "
                                   "blocks per direction, mean ± std over seeds.")
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

    p = sub.add_parser("evaluate", help="re-evaluate a finished run",
                       description="Recompute the run's report (JSON, Markdown, PR plot) from its saved model into a "
                                   "new numbered folder RUN/evaluations/eval-NNNN; the run's own files are never "
                                   "changed. Refuses data whose content fingerprint differs from training.")
    p.add_argument("run_dir")
    p.add_argument("-k", type=int, action="append", default=None, help="cut-off for mAP@k and P@k (repeatable; default 100)")
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
    _add_runtime(p)

    p = sub.add_parser("import-codes", help="turn codes made by another repository into a run folder",
                       description="Read external codes (±1 or 0/1, .npy or .mat, one file per part and "
                                   "modality, rows in the order of the dataset's query / database parts), check "
                                   "them, and write a run folder that evaluate and report treat like any other.")
    p.add_argument("--dataset", required=True, help="the dataset the codes were computed on")
    p.add_argument("--data-root", default=None, help="folder with the dataset's files")
    p.add_argument("--bits", type=int, required=True, help="code length of the files")
    p.add_argument("--name", required=True, help="label of the imported method in tables, e.g. djsrh-official")
    p.add_argument("--seed", type=int, default=0, help="seed of the dataset's split (default 0)")
    p.add_argument("--out", default="runs", help="folder that receives the new run folder (default ./runs)")
    for part in ("query", "database"):
        for modality in ("image", "text"):
            p.add_argument(f"--{part}-{modality}", default=None, metavar="FILE",
                           help=f"{part} {modality} codes (.npy, .mat or FILE.mat:VAR)")

    p = sub.add_parser("methods", help="list the methods, or describe one (config keys, defaults, presets)",
                       description="Every method from the registry: built-ins, @register_method classes of "
                                   "modules given with --import, and installed packages' crossmodal.methods "
                                   "entry points.")
    p.add_argument("name", nargs="?", default=None, help="a method to describe")

    p = sub.add_parser("query", help="search a trained model with a typed sentence or an image file",
                       description="Embed the query with the run's own featurizers, hash it, and list the nearest "
                                   "database items of the other modality by Hamming distance.")
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

    from crossmodal.experiments.reproduce import add_reproduce_arguments

    p = sub.add_parser("reproduce", help="run a committed sweep and regenerate its results folder",
                       description="Run experiments/sweeps/NAME.yaml (resumable) and write its tables and figures "
                                   "into experiments/results/NAME/.")
    add_reproduce_arguments(p)
    return parser


def add_prepare_arguments(p: argparse.ArgumentParser, name: str | None = None) -> None:
    """The options of ``datasets prepare`` (shared with ``python -m data_prep.NAME``)."""
    if name is None:
        p.add_argument("name", help="mirflickr25k, nuswide-tc10, nuswide-tc21, coco, iaprtc12; imagelist "
                                    "(image-only, from 'path label-vector' lists); or mat (any paired .mat/.npz file "
                                    "or folder of .npy/.npz features: --root FILE)")
    p.add_argument("--root", required=True, help="the raw dataset folder, an archive of it, or the folder of community .mat files")
    p.add_argument("--out", required=True, help="the dataset folder to write (must not exist, unless --overwrite)")
    p.add_argument("--image-features", default=None, choices=("community", "vgg19", "clip", "hf", "pixels"),
                   help="community: the file's XAll (default when present); vgg19: fc7, needs torchvision; "
                        "clip / hf: a transformers model (default for raw images: clip); pixels: the raw images "
                        "resized to --pixel-size, for the methods' mode end2end")
    p.add_argument("--pixel-size", type=int, default=224,
                   help="pixels: side of the stored images (default 224; 602 KB a row)")
    p.add_argument("--text-features", default=None, choices=("bow", "clip", "hf"),
                   help="bow: the source's standard tag/word vocabulary (default); clip / hf: a transformers text encoder")
    p.add_argument("--image-model", default=None, help="local folder or cached hub name of the image model (vgg19: a .pth file)")
    p.add_argument("--text-model", default=None, help="local folder or cached hub name of the text model")
    p.add_argument("--allow-download", action="store_true", help="allow fetching model weights from the hub")
    p.add_argument("--protocol", default=None, help="split protocol (unsupervised, ugach; see `datasets list`)")
    p.add_argument("--seed", type=_seed, default=0, help="split seed (default 0)")
    p.add_argument("--query", type=int, default=None, dest="n_query", help="override the protocol's query count")
    p.add_argument("--train", type=int, default=None, dest="n_train", help="override the protocol's training count (0: all of the database)")
    p.add_argument("--validation", type=int, default=None, dest="n_validation", help="override the validation count")
    p.add_argument("--validation-fraction", type=float, default=None,
                   help="mat: share of the training side held out for validation (default 0.1; 0: none)")
    p.add_argument("--min-tag-count", type=int, default=None, help="override the vocabulary's minimum count")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--allow-count-mismatch", action="store_true", help="warn instead of failing when counts differ from the standard release")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--query-list", default=None, help="imagelist: the query list (e.g. test.txt), relative to --root")
    p.add_argument("--database-list", default=None, help="imagelist: the database list (e.g. database.txt)")
    p.add_argument("--train-list", default=None, help="imagelist: the training list (default: the database)")


def run_prepare(args, name: str | None = None) -> int:
    from crossmodal.data.prepare import prepare, prepare_image_lists

    if (name or args.name) == "mat":
        from crossmodal.data import save_dataset
        from crossmodal.data.files import load_paired_path

        ds = load_paired_path(args.root, seed=args.seed, protocol=args.protocol, n_query=args.n_query,
                              n_train=args.n_train, n_validation=args.n_validation,
                              validation_fraction=args.validation_fraction)
        for note in ds.notes:
            print(f"note: {note}")
        out = save_dataset(ds, args.out, overwrite=args.overwrite)
        print(f"wrote {out}: {ds.data.n:,} pairs, image {ds.data.image_dim}-d, text {ds.data.text_dim}-d, "
              f"split {ds.split.protocol} (hash {ds.split.hash})")
        return 0
    if (name or args.name) == "imagelist":
        if not (args.query_list and args.database_list):
            raise CrossmodalError("imagelist needs --query-list and --database-list (and optionally --train-list)")
        prepare_image_lists(args.root, args.out, args.query_list, args.database_list, args.train_list,
                            image_features=args.image_features, image_model=args.image_model,
                            n_validation=args.n_validation if args.n_validation is not None else 500, seed=args.seed,
                            device=args.device, batch_size=args.batch_size, allow_download=args.allow_download,
                            overwrite=args.overwrite, pixel_size=args.pixel_size)
        return 0
    prepare(name or args.name, args.root, args.out, image_features=args.image_features,
            text_features=args.text_features, image_model=args.image_model, text_model=args.text_model,
            protocol=args.protocol, seed=args.seed, n_query=args.n_query, n_train=args.n_train,
            n_validation=args.n_validation, min_count=args.min_tag_count, device=args.device,
            batch_size=args.batch_size, allow_download=args.allow_download,
            strict_counts=not args.allow_count_mismatch, overwrite=args.overwrite, pixel_size=args.pixel_size)
    return 0


def _resolve_config(args) -> dict:
    from crossmodal.methods import get_method, method_key
    from crossmodal.runs import dataset_key, load_config_file, parse_overrides, preset_path

    cfg: dict = {}
    ds_name = dataset_key(args.dataset)
    if args.preset:
        cfg.update(load_config_file(preset_path(method_key(get_method(args.method)), args.preset), ds_name,
                                    args.method))
    if args.config:
        cfg.update(load_config_file(args.config, ds_name, args.method))
    cfg.update(parse_overrides(args.overrides))
    threads = cfg.pop("threads", None)  # a run setting, not a method key
    if threads is not None and getattr(args, "threads", None) is None:
        from crossmodal.threads import apply_threads

        apply_threads(threads)
    if args.device:
        cfg["device"] = args.device
    if args.codes_from:
        cfg["codes_from"] = args.codes_from
    return cfg


def _dataset_params(args) -> dict:
    from crossmodal.runs import parse_overrides

    params = parse_overrides(args.dataset_param or [])
    for key in ("protocol", "validation_fraction"):
        if getattr(args, key, None) is not None:
            params[key] = getattr(args, key)
    return params


def cmd_train(args) -> int:
    from crossmodal.runs import parse_overrides, rerun, train_run

    if args.from_run:
        if args.method or args.dataset or args.bits or args.overrides or args.preset or args.config or args.resume:
            raise CrossmodalError("--from reruns a run exactly; give no method, --dataset, --bits, config or overrides with it")
        run = rerun(args.from_run, out=args.out, tracker=args.tracker)
        print((run / "report.md").read_text())
        print(f"run folder: {run}")
        return 0
    missing = [n for n, v in (("METHOD", args.method), ("--dataset", args.dataset), ("--bits", args.bits)) if v is None]
    if missing:
        raise CrossmodalError(f"train needs {', '.join(missing)} (or --from RUN_DIR)")
    over = parse_overrides(args.overrides)
    if args.codes_from:
        over["codes_from"] = args.codes_from
    from crossmodal.report import config_label

    vf = {"validation_fraction": args.validation_fraction} if args.validation_fraction is not None else {}
    label = args.label or config_label(args.method.lower(), args.preset, args.config, {**over, **vf})
    run = train_run(args.method, args.dataset, args.bits, seed=args.seed, config=_resolve_config(args),
                    data_root=args.data_root, dataset_params=_dataset_params(args) or None, out=args.out,
                    tracker=args.tracker, resume=args.resume, log_artifact=args.log_artifact, label=label,
                    wandb=wandb_settings(args), database_codes=args.database_codes or "per-modality")
    print((run / "report.md").read_text())
    print(f"run folder: {run}")
    return 0


def cmd_demo(args) -> int:
    from crossmodal.runs import contact_sheet, query_run, train_run

    cfg = {"device": args.device} if args.device else {}
    if args.method.lower() == "ugach":
        from crossmodal.runs import load_config_file, preset_path

        cfg = {**load_config_file(preset_path("ugach", "fast"), "toy"), **cfg}
    run = train_run(args.method, "toy", args.bits, seed=args.seed, config=cfg, out=args.out, tracker=args.tracker,
                    wandb=wandb_settings(args))
    print((run / "report.md").read_text())
    rows = []
    for q in args.query or DEMO_QUERIES:
        _, D, I, ds = query_run(run, text=q, k=8)
        pixels = ds.extras["pixels"][ds.split.database[I]]
        caps = ds.extras["captions"][ds.split.database[I]]
        rows.append((q, pixels))
        print(f"query {q!r}: " + "; ".join(f"[{d}] {c}" for d, c in zip(D[:3], caps[:3])))
    sheet = contact_sheet(rows, run / "contact_sheet.png")
    print(f"\nrun folder: {run}\n  report: {run / 'report.md'}\n  PR curve: {run / 'pr.png'}\n  contact sheet: {sheet}")
    return 0


def cmd_datasets(args) -> int:
    from crossmodal.data import SOURCES, get_dataset

    if args.datasets_command in (None, "list"):
        from crossmodal.data.prepare import source_specs

        specs = source_specs()
        for s in SOURCES.values():
            print(f"{s.name:13s} {s.description}")
            if s.name in specs:
                protos = "; ".join(f"{k}: {v['query']} queries, {v.get('train') or 'all'} train" for k, v in specs[s.name].protocols.items())
                print(f"{'':13s}   protocols: {protos}")
        print("\nor --dataset PATH: a canonical dataset folder, a paired .mat (v5/v7.3) or .npz file, or a folder of "
              ".npy/.npz features\n(I_tr/T_tr/I_te/T_te[/L_tr/L_te], XAll/YAll[/LAll] or image/text[/labels]); every "
              "dataset takes --validation-fraction")
        return 0
    if args.datasets_command == "prepare":
        return run_prepare(args)
    if args.datasets_command == "verify":
        from crossmodal.data.prepare import verify

        results = verify(args.folder)
        for check, ok, detail in results:
            print(f"{'ok  ' if ok else 'FAIL'} {check}: {detail}")
        bad = sum(not ok for _, ok, _ in results)
        print(f"{args.folder}: {'verified' if not bad else f'{bad} check(s) failed'}")
        return 0 if not bad else 1
    ds = get_dataset(args.name, root=args.data_root, seed=args.seed)
    print(json.dumps(ds.summary(), indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from crossmodal.retrieval.evaluate import published_conventions, published_markdown
    from crossmodal.runs import evaluate_run, load_run

    ks = tuple(args.k or (100,))
    dirs = ("i2t", "t2i", "i2i", "t2t") if args.all_directions else None
    if args.retrieval == "paper":
        dirs = ("i2i",)
    if args.conventions == "published":
        spec, hasher, ds = load_run(args.run_dir, data_root=args.data_root)
        run_dirs = dirs or tuple((spec.get("evaluation") or {}).get("directions") or ("i2t", "t2i"))
        cross = tuple(d for d in run_dirs if d in ("i2t", "t2i", "i2i"))
        print(published_markdown(published_conventions(hasher, ds, directions=cross), directions=cross))
        return 0
    report, folder = evaluate_run(args.run_dir, ks=ks, directions=dirs, database_codes=args.database_codes,
                                  retrieval=args.retrieval, data_root=args.data_root)
    print(report.to_markdown())
    print(f"evaluation written to {folder} (the run's own report.json is unchanged)")
    return 0


def cmd_import_codes(args) -> int:
    from crossmodal.external import import_codes

    files = {(part, m): getattr(args, f"{part}_{m}") for part in ("query", "database") for m in ("image", "text")
             if getattr(args, f"{part}_{m}")}
    run = import_codes(files, args.dataset, args.bits, args.name, data_root=args.data_root, seed=args.seed,
                       out=args.out)
    print((run / "report.md").read_text())
    print(f"run folder: {run}")
    return 0


def cmd_methods(args) -> int:
    from crossmodal.methods import available_methods, describe_method, get_method, method_key
    from crossmodal.runs import presets_of

    if args.name:
        print(describe_method(args.name, presets_of(method_key(get_method(args.name)))))
        return 0
    for name in available_methods():
        cls = get_method(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        kind = "image-only" if tuple(cls.modalities) == ("image",) else "cross-modal"
        print(f"{method_key(cls):12s} {kind:11s} {doc[0] if doc else cls.__name__}")
    print("\n`crossmodal methods NAME` lists a method's config keys, defaults and presets.")
    return 0


def cmd_query(args) -> int:
    from crossmodal.runs import contact_sheet, query_run

    if args.sheet:
        sheet = Path(args.sheet)
        if sheet.is_dir() or not sheet.parent.is_dir():
            why = "is a folder" if sheet.is_dir() else f"folder {sheet.parent} does not exist"
            raise CrossmodalError(f"--sheet {sheet}: {why}; give a PNG file path in an existing folder")
    target, D, I, ds = query_run(args.run_dir, text=args.text, image=args.image, k=args.k,
                                 allow_download=args.allow_download, data_root=args.data_root)
    db = ds.split.database[I[I >= 0]]
    caps = ds.extras.get("captions")
    print(f"{'rank':>4} {'hamming':>7}  {'id':<14} {'labels / caption'}")
    names = ds.data.meta.get("label_names")
    for r, (d, i) in enumerate(zip(D, db), 1):
        desc = str(caps[i]) if caps is not None else ", ".join(
            names[j] if names else str(j) for j in (ds.data.labels[i].nonzero()[0] if ds.data.labels is not None else []))
        print(f"{r:>4} {int(d):>7}  {ds.data.ids[i]:<14} {desc}")
    if args.sheet:
        if "pixels" not in ds.extras or target != "image":
            raise CrossmodalError("--sheet needs an image search on a dataset that keeps its pixels (toy)")
        contact_sheet([(args.text or Path(args.image).name, ds.extras["pixels"][db])], args.sheet)
        print(f"contact sheet: {args.sheet}")
    return 0


def cmd_sweep(args) -> int:
    from crossmodal.experiments.sweep import run_from_args

    return run_from_args(args)


def cmd_reproduce(args) -> int:
    from crossmodal.experiments.reproduce import reproduce_from_args

    return reproduce_from_args(args)


def cmd_report(args) -> int:
    from crossmodal.report import write_report

    order = [o.strip() for o in (args.order or "").split(",") if o.strip()] or list(args.labels or ())
    table, files = write_report(args.runs, args.out, metrics=tuple(args.metric or ("mAP@all", "mAP@100")),
                                methods_order=order, plots=not args.no_plots, only=args.labels,
                                allow_mixed_codes=args.allow_mixed_codes)
    print(table.to_markdown(tuple(args.metric or ("mAP@all", "mAP@100"))))
    print(f"{len(table.runs)} runs -> " + ", ".join(str(f) for f in files[:3]) + f" and {len(files) - 3} figure files")
    return 0


COMMANDS = {"import-codes": cmd_import_codes, "methods": cmd_methods, "sweep": cmd_sweep, "reproduce": cmd_reproduce,
            "report": cmd_report, "demo": cmd_demo, "datasets": cmd_datasets, "train": cmd_train,
            "evaluate": cmd_evaluate, "query": cmd_query}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides may come after options; anything else is an error
        if args.command != "train" or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides) + extra
    if args.command is None:
        parser.print_help()
        return 0
    os.environ.setdefault("WANDB_SILENT", "true")
    from crossmodal.progress import configure_logging

    configure_logging(quiet=args.quiet, verbose=args.verbose)
    try:
        from crossmodal.methods import allow_import
        from crossmodal.threads import apply_threads

        apply_threads(args.threads)
        for module in args.imports:
            allow_import(module)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return code
    except CrossmodalError as exc:
        print(f"crossmodal: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `crossmodal report ... | head`: the reader left; files were written before printing
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        print("crossmodal: error: output pipe closed by the reader (e.g. head); output cut short, files on disk "
              "are complete", file=sys.stderr)
        return 141
    except OSError as exc:
        from crossmodal.engine import DISK_FULL

        where = f" writing {exc.filename}" if exc.filename else ""
        if exc.errno in DISK_FULL:
            print(f"crossmodal: error: disk full{where} ({exc.strerror}); every file written is complete or absent, "
                  "free space and run again (an interrupted training resumes with --resume RUN_DIR)", file=sys.stderr)
        else:
            print(f"crossmodal: error: {exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}; "
                  "check the path and its permissions",
                  file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crossmodal: interrupted; a run with checkpoints can be resumed with `crossmodal train --resume RUN_DIR`", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
