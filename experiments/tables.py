"""Reproduce the result tables: methods x bits x seeds on one dataset, mean +- std.

    python -m experiments.tables --dataset wiki --data-root ../shared/data/wiki
    python -m experiments.tables --dataset toy

Every number comes from a run folder under ``--runs`` (written by the same ``train_run`` as
``crossmodal train``); the table goes to ``experiments/results/<dataset>.md`` and ``.json``.
UGACH uses the ``fast`` preset (``experiments/configs/ugach-fast.yaml``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from crossmodal.runs import load_config_file, preset_path, train_run

RESULTS = Path(__file__).resolve().parent / "results"
LABELS = {"i2t": "I→T", "t2i": "T→I"}


def run_grid(dataset, data_root, methods, bits_list, seeds, runs_dir, log=print):
    rows = []
    for method in methods:
        cfg = {}
        if method == "ugach":
            cfg = load_config_file(preset_path("ugach", "fast"), dataset)
            cfg["progress"] = False
        for bits in bits_list:
            for seed in seeds:
                t = time.perf_counter()
                run = train_run(method, dataset, bits, seed=seed, config=cfg, data_root=data_root, out=runs_dir,
                                tracker="jsonl", log=lambda *a: None)
                rep = json.loads((run / "report.json").read_text())
                rec = {"method": method, "bits": bits, "seed": seed, "run": str(run), "seconds": time.perf_counter() - t}
                for d, r in rep["results"].items():
                    rec[f"{d}/mAP@all"], rec[f"{d}/mAP@100"] = r["mAP@all"], r["mAP@100"]
                rows.append(rec)
                log(f"{method:8s} {bits:4d} bits seed {seed}: " + ", ".join(
                    f"{LABELS[d]} {rec[f'{d}/mAP@all']:.4f}" for d in ("i2t", "t2i")) + f"  ({rec['seconds']:.0f} s)")
    return rows


def to_markdown(rows, dataset, bits_list, split_hash) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    out = [f"### {dataset}: mAP@all / mAP@100, mean ± std over seeds {', '.join(map(str, seeds))} (split {split_hash})", "",
           "| method | direction | " + " | ".join(f"{b} bits" for b in bits_list) + " |",
           "|---|---|" + "---|" * len(bits_list)]
    for m in methods:
        for d in ("i2t", "t2i"):
            cells = []
            for b in bits_list:
                sel = [r for r in rows if r["method"] == m and r["bits"] == b]
                a = np.array([r[f"{d}/mAP@all"] for r in sel])
                k = np.array([r[f"{d}/mAP@100"] for r in sel])
                cells.append(f"{a.mean():.3f}±{a.std():.3f} / {k.mean():.3f}±{k.std():.3f}")
            out.append(f"| {m} | {LABELS[d]} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--methods", default="lsh,cca-itq,ugach")
    ap.add_argument("--bits", default="16,32,64,128")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--runs", default="runs/tables")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    bits_list = [int(b) for b in args.bits.split(",")]
    rows = run_grid(args.dataset, args.data_root, args.methods.split(","), bits_list,
                    [int(s) for s in args.seeds.split(",")], args.runs)
    split_hash = json.loads((Path(rows[0]["run"]) / "run.json").read_text())["split_hash"]
    md = to_markdown(rows, args.dataset, bits_list, split_hash)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.dataset}.md").write_text(md, encoding="utf-8")
    (out / f"{args.dataset}.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
