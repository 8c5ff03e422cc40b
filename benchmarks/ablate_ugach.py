"""UGACH ablation: the official-exact configuration, then each departure of crossmodal alone.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/ablate_ugach.py [--datasets toy wiki]
        [--bits 16 64] [--seeds 0 1 2] [--hidden 64] [--epochs 2] [--pretrain-epochs 10]
        [--train-pairs 400] [--jobs 2] [--out ugach-ablation.json] [--table-only]

(from the repository root; wiki is read from /work/shared/data/wiki or $ABLATE_ROOT_WIKI)

Rows (every row gets the same cuts: ``--hidden`` units, ``--epochs`` adversarial epochs,
``--train-pairs`` training pairs, a fixed random subset; validation, query and database unchanged):

official-exact   the paper preset (experiments/configs/ugach.yaml) at batch 1, with the official
                 REINFORCE normaliser (softmax over the 2 drawn items), the official D
                 pre-training (batch 20, lr 0.01, fixed negatives, best D on validation,
                 ``--pretrain-epochs`` epochs), raw features, constant rates
+ batching       batches of 32 with the rates scaled by the batch size (the paper preset's batching)
+ pool softmax   REINFORCE normalised over the whole pool (the paper's formula)
+ old pretrain   crossmodal's earlier pre-training: 5 epochs at the adversarial batch and D's rate,
                 negatives drawn afresh each epoch, no selection
+ z-score        features standardised per dimension (the fast preset's choice)
paper preset     ugach.yaml as shipped (= batching + pool softmax)
paper, sampled   the paper preset with the official normaliser (cheap: isolates the normaliser
                 over more epochs than the batch-1 rows can afford)
fast preset      ugach-fast.yaml with its per-dataset settings (its own pre-training), same cuts

Each cell: mean (std) over the seeds of the mean of I->T and T->I mAP@all, on the validation
split (the selection score of the kept epoch) and on the query split (never used to select).
The data split is fixed (dataset seed 0); the seed varies the model (init, sampling).
Results are appended to ``--out`` as they finish (a rerun skips what is there).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROWS = ("official-exact", "+ batching", "+ pool softmax", "+ old pretrain", "+ z-score", "paper preset",
        "paper, sampled", "fast preset")
OFFICIAL = dict(batch_size=1, lr_scale_batch=False, g_normaliser="sampled")
DEPARTURES = {
    "official-exact": {},
    "+ batching": dict(batch_size=32, lr_scale_batch=True),
    "+ pool softmax": dict(g_normaliser="pool"),
    "+ old pretrain": dict(pretrain_epochs=5, pretrain_batch_size=0, pretrain_lr=0.0, pretrain_negatives="resample",
                           pretrain_select=False),
    "+ z-score": dict(standardize="zscore"),
}
ROOTS = {"wiki": "/work/shared/data/wiki"}


def row_config(row: str, dataset: str, hidden: int, epochs: int, pretrain_epochs: int) -> dict:
    from crossmodal.config import load_config_file, preset_path

    cut = dict(hidden=hidden, epochs=epochs, progress=False, device="cpu")
    if row == "fast preset":
        return {**load_config_file(preset_path("ugach", "fast"), dataset), **cut}
    cfg = {**load_config_file(preset_path("ugach", "paper"), dataset), **cut, "pretrain_epochs": pretrain_epochs}
    if row == "paper preset":
        return cfg
    if row == "paper, sampled":
        return {**cfg, "g_normaliser": "sampled"}
    return {**cfg, **OFFICIAL, **DEPARTURES[row]}


def run_one(task: tuple) -> dict:
    dataset, row, bits, seed, hidden, epochs, pretrain_epochs, train_pairs = task
    import dataclasses

    import numpy as np
    import torch

    from crossmodal.data import get_dataset
    from crossmodal.methods.ugach import UGACH
    from crossmodal.retrieval.evaluate import evaluate
    from crossmodal.runs import validation_set

    torch.set_num_threads(1)
    ds = get_dataset(dataset, root=os.environ.get(f"ABLATE_ROOT_{dataset.upper()}", ROOTS.get(dataset)), seed=0)
    if train_pairs and train_pairs < len(ds.split.train):  # a fixed random subset of the training pairs
        keep = np.sort(np.random.default_rng(0).choice(ds.split.train, train_pairs, replace=False))
        ds.split = dataclasses.replace(ds.split, train=keep)
    cfg = row_config(row, dataset, hidden, epochs, pretrain_epochs)
    t0 = time.perf_counter()
    h = UGACH(bits, seed=seed, **cfg).fit(ds.part("train"), valid=validation_set(ds))
    secs = time.perf_counter() - t0
    val = validation_set(ds).score(h)
    res = evaluate(h, ds).results
    return {"dataset": dataset, "row": row, "bits": bits, "seed": seed, "hidden": hidden, "epochs": epochs,
            "pretrain_epochs": pretrain_epochs, "train_pairs": len(ds.split.train), "seconds": secs, "val": val["score"],
            "query": float(np.mean([res[d]["mAP@all"] for d in ("i2t", "t2i")])),
            "query_i2t": res["i2t"]["mAP@all"], "query_t2i": res["t2i"]["mAP@all"],
            "best_epoch": next((r["epoch"] for r in h.history if r.get("score") == h.best_score), None),
            "pretrain_best_epoch": h.history[0].get("pretrain_best_epoch")}


def table(results: list[dict], datasets, bits_list, seeds) -> str:
    import numpy as np

    def cell(rows, key):
        v = [r[key] for r in rows]
        return f"{np.mean(v):.3f} ({np.std(v):.3f})" if v else "-"

    head = ["configuration"] + [f"{d} {b}b {s}" for d in datasets for b in bits_list for s in ("val", "query")]
    lines = ["| " + " | ".join(head) + " | time (s) |", "|---|" + "---:|" * (len(head))]
    for row in [r for r in ROWS if any(x["row"] == r for x in results)]:
        cells, secs = [], []
        for d in datasets:
            for b in bits_list:
                rs = [r for r in results if (r["dataset"], r["row"], r["bits"]) == (d, row, b) and r["seed"] in seeds]
                cells += [cell(rs, "val"), cell(rs, "query")]
                secs += [r["seconds"] for r in rs]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {np.mean(secs):.0f} |" if secs else f"| {row} | " +
                     " | ".join(cells) + " | - |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["toy", "wiki"])
    ap.add_argument("--bits", nargs="+", type=int, default=[16, 64])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--pretrain-epochs", type=int, default=10)
    ap.add_argument("--train-pairs", type=int, default=400, help="train on a fixed random subset of this many pairs (0: all)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="ugach-ablation.json")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else []
    done = {(r["dataset"], r["row"], r["bits"], r["seed"], r["hidden"], r["epochs"], r["pretrain_epochs"], r["cut"])
            for r in results}
    tasks = [(d, row, b, s, args.hidden, args.epochs, args.pretrain_epochs, args.train_pairs) for d in args.datasets
             for row in args.rows for b in args.bits for s in args.seeds]
    # the quick batched rows first, then the batch-1 rows
    tasks = sorted((t for t in tasks if t not in done), key=lambda t: t[1] not in ("+ batching", "paper preset", "paper, sampled", "fast preset"))
    if not args.table_only and tasks:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for fut in as_completed([pool.submit(run_one, t) for t in tasks]):
                r = {**fut.result(), "cut": args.train_pairs}
                results.append(r)
                tmp = out.with_suffix(".tmp")
                tmp.write_text(json.dumps(results, indent=1))
                os.replace(tmp, out)
                print(f"{r['dataset']:5s} {r['row']:15s} {r['bits']:3d}b s{r['seed']}: val {r['val']:.3f} "
                      f"query {r['query']:.3f} ({r['seconds']:.0f} s)", flush=True)
        print(f"wall: {time.perf_counter() - t0:.0f} s")
    results = [r for r in results if (r["hidden"], r["epochs"], r["pretrain_epochs"], r["cut"]) ==
               (args.hidden, args.epochs, args.pretrain_epochs, args.train_pairs)]
    print(f"\nUGACH ablation: hidden {args.hidden}, {args.epochs} adversarial epochs, official pre-training "
          f"{args.pretrain_epochs} epochs, {args.train_pairs or 'all'} training pairs; mean (std) over seeds "
          f"{args.seeds} of mean(I->T, T->I) mAP@all\n")
    print(table(results, args.datasets, args.bits, set(args.seeds)))


if __name__ == "__main__":
    main()
