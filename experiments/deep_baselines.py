"""The deep unsupervised cross-modal baselines (DJSRH, JDSH, DGCPN, UCCH) on toy / wiki / MIRFlickr.

    # the table (mAP@all I->T / T->I, mean ± std over seeds) of the `fast` presets on toy and wiki
    OMP_NUM_THREADS=1 python -m experiments.deep_baselines table --datasets toy wiki \\
        --data-root wiki=/work/shared/data/wiki
    # the papers' settings on MIRFlickr-25K (VGG19 fc7 or CLIP image features; meant for a GPU)
    python -m experiments.deep_baselines table --datasets mirflickr25k --preset paper \\
        --data-root mirflickr25k=PREPARED_FOLDER --out runs/deep-mirflickr
    # validation-split tuning grid (never the query split): one line per setting
    python -m experiments.deep_baselines tune --dataset wiki --method djsrh --bits 32 \\
        --data-root wiki=/work/shared/data/wiki --grid lr=0.01,0.001 hidden=[],[1024]

``table`` writes a sweep file into ``--out`` and runs it with :func:`crossmodal.experiments.sweep.run_sweep`
(resumable: finished runs are skipped), then aggregates the runs with ``crossmodal report``
into ``OUT/results/DATASET/`` and prints the mAP@all table beside UGACH-fast's committed
figures (``experiments/results/DATASET/table.csv``) where those exist.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
METHODS = ("djsrh", "jdsh", "dgcpn", "ucch")


def _roots(pairs: list[str]) -> dict:
    out = {}
    for p in pairs or []:
        name, _, root = p.partition("=")
        out[name] = root
    return out


def _label(method: str, preset: str) -> str:
    return method if preset in (None, "", "paper") else f"{method}-{preset}"


def run_table(datasets, methods, preset, bits, seeds, out: Path, roots: dict, log=print) -> dict:
    from crossmodal.report import write_report
    from crossmodal.experiments.sweep import run_sweep

    tables = {}
    for ds in datasets:
        root = {"root": roots[ds]} if ds in roots else {}
        sweep = {"name": f"deep-{Path(ds).name}", "datasets": [{"name": ds, **root}],
                 "methods": [{"method": m, **({"preset": preset} if preset not in (None, "", "paper") else {})}
                             for m in methods],
                 "bits": list(bits), "seeds": list(seeds), "ks": [100], "tracker": "jsonl"}
        d = out / Path(ds).name
        d.mkdir(parents=True, exist_ok=True)
        (d / "sweep.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False), encoding="utf-8")
        t0 = time.perf_counter()
        run_sweep(d / "sweep.yaml", out=d / "runs", log=log)
        log(f"{ds}: sweep took {time.perf_counter() - t0:.0f} s")
        table, _ = write_report([d / "runs"], d / "results", methods_order=[_label(m, preset) for m in methods])
        tables[ds] = mAP_rows(d / "results" / "table.csv", Path(ds).name)
    return tables


def mAP_rows(path: Path, dataset: str) -> dict:
    """``{(method, direction, bits): (mean, std)}`` of mAP@all from a report table.csv (plus
    UGACH-fast's committed figures for the dataset, where present)."""
    rows = {}
    for p in (path, HERE / "results" / dataset / "table.csv"):
        if not p.is_file():
            continue
        with open(p, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if r["metric"] == "mAP@all" and (p == path or r["method"] == "ugach-fast"):
                    rows[r["method"], r["direction"], int(r["bits"])] = (float(r["mean"]), float(r["std"]))
    return rows


def markdown(rows: dict, dataset: str) -> str:
    methods = list(dict.fromkeys(m for m, _, _ in rows))
    bits = sorted({b for _, _, b in rows})
    lines = [f"### {dataset}: mAP@all I→T / T→I, mean ± std over seeds", "",
             "| method | " + " | ".join(f"{b} bits" for b in bits) + " |", "|---|" + "---:|" * len(bits)]
    for m in methods:
        cells = []
        for b in bits:
            it, ti = rows.get((m, "i2t", b)), rows.get((m, "t2i", b))
            cells.append(f"{it[0]:.3f}±{it[1]:.3f} / {ti[0]:.3f}±{ti[1]:.3f}" if it and ti else "–")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _value(s: str):
    return yaml.safe_load(s)


def tune(dataset, method, preset, bits, seeds, grid: list[str], roots: dict, log=print) -> list[dict]:
    """Train every point of ``grid`` (``key=v1,v2`` items; lists in YAML, e.g. ``hidden=[],[512]``)
    and print its best validation score (mean I→T/T→I mAP@all on the validation split)."""
    from crossmodal.data import get_dataset
    from crossmodal.methods import get_method
    from crossmodal.config import dataset_key, load_config, preset_path
    from crossmodal.runs import validation_set

    cfg, _ = load_config(preset_path(method, preset if preset != "paper" else None), dataset_key(dataset), method)
    cfg["progress"] = False
    keys, values = [], []
    for g in grid:
        k, _, vs = g.partition("=")
        keys.append(k)
        values.append([_value(v) for v in _split_top(vs)])
    out = []
    for combo in itertools.product(*values):
        over = dict(zip(keys, combo))
        scores = []
        t0 = time.perf_counter()
        for seed in seeds:
            ds = get_dataset(dataset, root=roots.get(dataset), seed=seed)
            h = get_method(method)(bits, seed=seed, **{**cfg, **over})
            h.fit(ds.part("train"), valid=validation_set(ds))
            scores.append((h.best_score, h.best["epoch"]))
        mean = sum(s for s, _ in scores) / len(scores)
        rec = {"over": over, "val": round(mean, 4), "per_seed": [round(s, 4) for s, _ in scores],
               "epochs": [e for _, e in scores],
               "s": round(time.perf_counter() - t0, 1)}
        log(json.dumps(rec))
        out.append(rec)
    return out


def _split_top(s: str) -> list[str]:
    """Split on commas outside brackets: ``[],[512,256],3`` -> ``['[]', '[512,256]', '3']``."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    return parts + [cur]


def main(argv=None) -> int:
    from crossmodal.errors import CrossmodalError

    p = argparse.ArgumentParser(prog="python -m experiments.deep_baselines", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="run the sweep and print the mAP@all table")
    t.add_argument("--datasets", nargs="+", default=["toy", "wiki"])
    t.add_argument("--methods", nargs="+", default=list(METHODS))
    t.add_argument("--preset", default="fast", help="fast (tuned on validation) or paper")
    t.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64, 128])
    t.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    t.add_argument("--out", default="runs/deep-baselines")
    t.add_argument("--data-root", nargs="*", default=[], help="DATASET=FOLDER for each dataset with files")
    u = sub.add_parser("tune", help="validation scores of a grid of config overrides")
    u.add_argument("--dataset", required=True)
    u.add_argument("--method", required=True)
    u.add_argument("--preset", default="paper")
    u.add_argument("--bits", type=int, default=32)
    u.add_argument("--seeds", nargs="+", type=int, default=[0])
    u.add_argument("--data-root", nargs="*", default=[])
    u.add_argument("--grid", nargs="*", default=[], help="KEY=V1,V2 ... (values in YAML)")
    args = p.parse_args(argv)
    try:
        if args.cmd == "table":
            tables = run_table(args.datasets, args.methods, args.preset, args.bits, args.seeds, Path(args.out),
                               _roots(args.data_root))
            for ds, rows in tables.items():
                print(markdown(rows, ds))
                print()
        else:
            tune(args.dataset, args.method, args.preset, args.bits, args.seeds, args.grid, _roots(args.data_root))
    except CrossmodalError as exc:
        print(f"crossmodal: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
