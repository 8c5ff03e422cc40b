"""``crossmodal train``: train a method on a dataset into a fresh run folder and evaluate it
(or ``--from RUN`` rerun one, ``--resume RUN`` continue one)."""

from __future__ import annotations

from crossmodal.cli.common import METHODS, PRESETS, add_common_train, print_run
from crossmodal.config import dataset_key, load_config_file, parse_overrides, preset_path
from crossmodal.errors import CrossmodalError
from crossmodal.report import config_label
from crossmodal.runs import rerun, train_run
from crossmodal.tracking import wandb_settings

NAME = "train"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="train a method on a dataset and evaluate it",
        description="Train METHOD on a dataset at one code length into a fresh run folder, then evaluate I->T and "
                    "T->I on the query split. Extra key=value pairs override the method's config (unknown keys "
                    "are errors).")
    p.add_argument("method", nargs="?", default=None,
                   help=f"{METHODS}, or module.path:Class; omit with --from")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="method config overrides, e.g. epochs=5")
    p.add_argument("--from", dest="from_run", default=None, metavar="RUN_DIR",
                   help="rerun exactly what RUN_DIR ran (method, bits, seed, resolved config, dataset) into a new "
                        "folder")
    p.add_argument("--dataset", default=None, help="toy, wiki, digits, mirflickr25k, cifar10, ... or a dataset folder")
    p.add_argument("--data-root", default=None, help="folder with the dataset's files")
    p.add_argument("--bits", type=int, default=None, help="code length, 1..1024")
    p.add_argument("--label", default=None,
                   help="name of this configuration in tables (default: method, preset and overrides, e.g. "
                        "ugach-fast+epochs=5)")
    p.add_argument("--protocol", default=None,
                   help="split protocol of the dataset (benchmarks: see `datasets list`; .mat/.npy: blocks or random)")
    p.add_argument("--validation-fraction", type=float, default=None,
                   help="share of the training side held out for model selection (0: train on every pair, no "
                        "selection)")
    p.add_argument("--dataset-param", action="append", default=[], metavar="KEY=VALUE",
                   help="other dataset keys (n_query, n_train, n_validation, ...; unknown keys are errors)")
    p.add_argument("--log-artifact", action="store_true",
                   help="wandb: upload the model, database codes and the dataset folder/file as artifacts")
    p.add_argument("--config", default=None, help="YAML config file (keys of the method, optional datasets: overrides)")
    p.add_argument("--preset", default=None,
                   help="config from experiments/configs: paper (METHOD.yaml) or PRESET (METHOD-PRESET.yaml); "
                        f"presets besides paper: {PRESETS} (`crossmodal methods NAME` lists them)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint")
    p.add_argument("--database-codes", default=None, choices=("per-modality", "unified"),
                   help="evaluation convention: code each database item from its own modality (default), or "
                        "each database pair once from both (unified; methods such as cmfh, lssh, fsh)")
    add_common_train(p)
    return p


def resolve_config(args) -> dict:
    """The method config of a ``train`` command line: the preset, then ``--config``, then the
    key=value overrides, then ``--device``; a ``threads`` key is applied (unless ``--threads``
    was given) and removed, as it is a run setting."""
    from crossmodal.methods import get_method, method_key

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
    return cfg


def dataset_params(args) -> dict:
    """``--dataset-param`` pairs plus ``--protocol`` and ``--validation-fraction`` when given."""
    params = parse_overrides(args.dataset_param or [])
    for key in ("protocol", "validation_fraction"):
        if getattr(args, key, None) is not None:
            params[key] = getattr(args, key)
    return params


def run(args) -> int:
    if args.from_run:
        if args.method or args.dataset or args.bits or args.overrides or args.preset or args.config or args.resume:
            raise CrossmodalError("--from reruns a run exactly; give no method, --dataset, --bits, config or "
                                  "overrides with it")
        print_run(rerun(args.from_run, out=args.out, tracker=args.tracker))
        return 0
    missing = [n for n, v in (("METHOD", args.method), ("--dataset", args.dataset), ("--bits", args.bits)) if v is None]
    if missing:
        raise CrossmodalError(f"train needs {', '.join(missing)} (or --from RUN_DIR)")
    over = parse_overrides(args.overrides)
    vf = {"validation_fraction": args.validation_fraction} if args.validation_fraction is not None else {}
    label = args.label or config_label(args.method.lower(), args.preset, args.config, {**over, **vf})
    run_dir = train_run(args.method, args.dataset, args.bits, seed=args.seed, config=resolve_config(args),
                        data_root=args.data_root, dataset_params=dataset_params(args) or None, out=args.out,
                        tracker=args.tracker, resume=args.resume, log_artifact=args.log_artifact, label=label,
                        wandb=wandb_settings(args), database_codes=args.database_codes or "per-modality")
    print_run(run_dir)
    return 0
