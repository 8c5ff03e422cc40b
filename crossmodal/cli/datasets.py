"""``crossmodal datasets``: list the known datasets, describe one (``info``), build a dataset folder
(``prepare``, see :mod:`crossmodal.cli.prepare`) or check one (``verify``)."""

from __future__ import annotations

import json

from crossmodal.cli.common import seed
from crossmodal.cli.prepare import add_prepare_arguments, run_prepare

NAME = "datasets"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="list the known datasets or describe one",
        description="Datasets are named sources (`crossmodal datasets list`) or paths to canonical dataset folders.")
    dsub = p.add_subparsers(dest="datasets_command", metavar="ACTION")
    dsub.add_parser("list", help="list the known datasets")
    pi = dsub.add_parser("info", help="load a dataset and print its sizes, split and hash")
    pi.add_argument("name", help="dataset name (toy, wiki, digits, mirflickr25k, ...) or a dataset folder")
    pi.add_argument("--data-root", default=None, help="folder with the dataset's files (wiki: raw_features.mat ...)")
    pi.add_argument("--seed", type=seed, default=0)
    pp = dsub.add_parser("prepare", help="build a dataset folder from community .mat files or the raw dataset",
                         description="Turn the community feature files, or the raw images + tags/captions, of a "
                                     "benchmark into a canonical dataset folder with its standard split. Resumable: "
                                     "rerun the same command after an interruption.")
    add_prepare_arguments(pp)
    pv = dsub.add_parser("verify", help="check a dataset folder's file hashes, shapes, split hash and standard counts")
    pv.add_argument("folder")
    return p


def list_datasets() -> int:
    from crossmodal.data import SOURCES
    from crossmodal.data import source_specs

    specs = source_specs()
    for s in SOURCES.values():
        print(f"{s.name:13s} {s.description}")
        if s.name in specs:
            protos = "; ".join(f"{k}: {v['query']} queries, {v.get('train') or 'all'} train"
                               for k, v in specs[s.name].protocols.items())
            print(f"{'':13s}   protocols: {protos}")
    print("\nor --dataset PATH: a canonical dataset folder, a paired .mat (v5/v7.3) or .npz file, or a folder of "
          ".npy/.npz features\n(I_tr/T_tr/I_te/T_te[/L_tr/L_te], XAll/YAll[/LAll] or image/text[/labels]); every "
          "dataset takes --validation-fraction")
    return 0


def verify_folder(folder: str) -> int:
    from crossmodal.data.prepare import verify

    results = verify(folder)
    for check, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {check}: {detail}")
    bad = sum(not ok for _, ok, _ in results)
    print(f"{folder}: {'verified' if not bad else f'{bad} check(s) failed'}")
    return 0 if not bad else 1


def run(args) -> int:
    if args.datasets_command in (None, "list"):
        return list_datasets()
    if args.datasets_command == "prepare":
        return run_prepare(args)
    if args.datasets_command == "verify":
        return verify_folder(args.folder)
    from crossmodal.data import get_dataset

    ds = get_dataset(args.name, root=args.data_root, seed=args.seed)
    print(json.dumps(ds.summary(), indent=2))
    return 0
