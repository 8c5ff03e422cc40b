"""Validation-split grid for a block of UGACH-fast (no run folders written).

Each setting is the ``ugach-fast.yaml`` config for ``--dataset`` (its per-dataset block
applied) plus JSON overrides; it prints the validation score UGACH's epoch selection keeps
(mean of I->T and T->I mAP@all on the held-out validation pairs against the training
database), the score after D's pre-training (epoch 0) and at the last epoch, the selected
epoch, and, only with ``--query``, the query mAP@all (final comparison only; never select on
it). Usage::

    OMP_NUM_THREADS=1 python benchmarks/ugach_grid.py --dataset wiki --bits 16 64 --seeds 0 \
        --set '{"n_text_neighbours": 10, "knn_k": 10}' --set '{}'
    OMP_NUM_THREADS=1 python benchmarks/ugach_grid.py --dataset toy --bits 32 128 --set '{"epochs": 80}'
"""
from __future__ import annotations

import argparse
import json
import time

from crossmodal.data import get_dataset
from crossmodal.methods import get_method
from crossmodal.config import load_config_file
from crossmodal.runs import validation_set

CONFIG = "experiments/configs/ugach-fast.yaml"
ROOTS = {"wiki": "/work/shared/data/wiki"}


def main(default_dataset: str = "toy") -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default=default_dataset)
    ap.add_argument("--root", default=None, help="data folder (default: /work/shared/data/wiki for wiki)")
    ap.add_argument("--bits", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--set", action="append", default=None, help="JSON overrides (repeatable)")
    ap.add_argument("--query", action="store_true", help="also report query mAP@all (final choice only)")
    ap.add_argument("--trace", type=int, default=0, help="also print every n-th epoch's validation score")
    args = ap.parse_args()
    root = args.root or ROOTS.get(args.dataset)
    base = load_config_file(CONFIG, args.dataset, "ugach")
    for over in args.set or ["{}"]:
        extra = json.loads(over)
        for seed in args.seeds:
            ds = get_dataset(args.dataset, root=root, seed=seed)
            valid = validation_set(ds)
            for bits in args.bits:
                cfg = {**base, **extra, "progress": False}
                t0 = time.time()
                h = get_method("ugach")(bits, seed=seed, **cfg).fit(ds.part("train"), valid=valid)
                v = valid.score(h)
                hist = [r["score"] for r in h.history if "score" in r]
                row = {"set": extra, "seed": seed, "bits": bits, "val": round(v["score"], 4),
                       "val_i2t": round(v["val/i2t/mAP@all"], 4), "val_t2i": round(v["val/t2i/mAP@all"], 4),
                       "epoch": h.selected["epoch"], "val_e0": round(hist[0], 4) if hist else None,
                       "val_last": round(hist[-1], 4) if hist else None, "s": round(time.time() - t0)}
                if args.trace:
                    row["trace"] = [round(x, 3) for x in hist[::args.trace]]
                if args.query:
                    from crossmodal.retrieval.evaluate import evaluate

                    rep = evaluate(h, ds, ks=())
                    row["query"] = {d: round(float(r["mAP@all"]), 4) for d, r in rep.results.items()}
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
