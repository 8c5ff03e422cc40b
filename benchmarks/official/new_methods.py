"""UCMFH, CIRH and DAEH: their released code beside the port, on the same data, split and scoring.

    PYTHONPATH=. python benchmarks/official/new_methods.py --released /tmp/official \
        [--datasets toy wiki uci] [--methods ucmfh cirh daeh] [--seeds 0 1 2] [--bits 32]

``--released DIR`` holds the checkouts ``UCMFH``, ``CIRH`` and ``DAEH`` (XinyuXia97/UCMFH,
XizeWu/CIRH, reresearcher/DAEH; never copied into this repository). For each dataset the split
is exported once (:func:`common.export_mat`, every training pair trains); for each method, seed
and code length the released code runs through its harness (``{method}_released.py``, its changes
listed there) and its codes are scored by ``crossmodal import-codes`` (:func:`common.score_codes`),
then the port trains with the same settings and epochs (:func:`common.train_port`) and is scored
the same way. Every entry goes to ``experiments/results/official/new_methods.json`` as it
finishes (a rerun skips what is there); ``new_methods.md`` is regenerated from it.

Variants: ``official`` (the released codes), ``official-permodality`` (UCMFH: the released model
coding each item from its own modality), ``port`` (the method's defaults = its paper preset),
``port-paired`` (UCMFH ``fusion_input=paired``) and ``port-released`` (CIRH
``hashfunc_similarity=released``). ``EPOCHS`` is what this machine's time allowed (2 shared CPU
cores); both sides always train the same number of epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (DATA, ROOT, DatasetRef, OfficialError, Results, export_mat, figures, git_commit, score_codes,
                    train_port)

HERE = Path(__file__).resolve().parent
RESULTS = ROOT / "experiments" / "results" / "official" / "new_methods.json"
REPOS = {"ucmfh": ("UCMFH", "XinyuXia97/UCMFH"), "cirh": ("CIRH", "XizeWu/CIRH"),
         "daeh": ("DAEH", "reresearcher/DAEH")}
EPOCHS = {  # (method, dataset) -> epochs of both sides (released: UCMFH 100, CIRH 60, DAEH 30)
    ("ucmfh", "toy"): 3, ("ucmfh", "wiki"): 10, ("ucmfh", "uci"): 10,
    ("cirh", "toy"): 20, ("cirh", "wiki"): 20, ("cirh", "uci"): 20,
    ("daeh", "toy"): 3, ("daeh", "wiki"): 5, ("daeh", "uci"): 5,
}
PORT_VARIANTS = {"ucmfh": {"port": {}, "port-paired": {"fusion_input": "paired"}},
                 "cirh": {"port": {}, "port-released": {"hashfunc_similarity": "released"}},
                 "daeh": {"port": {}}}
OFFICIAL_VARIANTS = {"ucmfh": ("released", "permodality"), "cirh": ("released",), "daeh": ("released",)}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def refs(data: Path) -> dict[str, DatasetRef]:
    """The three datasets: toy (generated), wiki and the UCI pair under ``data`` (shared/data)."""
    return {"toy": DatasetRef("toy", "toy"), "wiki": DatasetRef("wiki", "wiki", str(data / "wiki")),
            "uci": DatasetRef("uci", str(data / "uci-handwritten" / "uci_all.mat"))}


def run_released(method: str, code: Path, data: Path, bits: int, seed: int, epochs: int, out: Path) -> float:
    """Run the harness of ``method``; returns its seconds (0 when ``out`` already holds every code
    file of an earlier run of the same settings). A failure is an :class:`OfficialError`."""
    if (out / "done").is_file():
        return float((out / "done").read_text())
    cmd = [sys.executable, str(HERE / f"{method}_released.py"), "--code", str(code), "--data", str(data),
           "--bits", str(bits), "--seed", str(seed), "--epochs", str(epochs), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise OfficialError(f"{method} released code failed: {last}")
    seconds = time.perf_counter() - t0
    (out / "done").write_text(f"{seconds:.1f}")
    return seconds


def codes_files(out: Path, prefix: str) -> dict[str, Path]:
    """``{part_modality: OUT/PREFIX_part_modality.npy}`` for the query / database image / text codes."""
    return {f"{part}_{m}": out / f"{prefix}_{part}_{m}.npy"
            for part in ("query", "database") for m in ("image", "text")}


def record_run(results: Results, run: Path) -> None:
    """Put a finished ``crossmodal train`` run into ``results``: variant ``run:LABEL``, its config,
    model selection and figures (from its run.json and report.json)."""
    from crossmodal.stored import read_json

    spec, report = read_json(run / "run.json"), read_json(run / "report.json")
    figs = figures(run / "report.json")
    val = None
    if (run / "metrics.jsonl").is_file():
        for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec.get("event") == "selected":
                val = rec.get("val_score")
    results.put({"method": spec["method"], "dataset": spec["dataset"]["display_name"], "bits": spec["bits"],
                 "seed": spec["seed"], "variant": f"run:{spec['label']}", "config": spec["config"],
                 "model_selection": report["meta"].get("model_selection"), "validation_score": val,
                 "split_hash": spec["split_hash"], "commit": spec.get("environment", {}).get("commit"),
                 "figures": {figs["meta"]["database_codes"]: figs}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--released", required=True, help="folder with the UCMFH, CIRH and DAEH checkouts")
    ap.add_argument("--datasets", nargs="+", default=["toy", "wiki", "uci"])
    ap.add_argument("--methods", nargs="+", default=list(REPOS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--bits", nargs="+", type=int, default=[32])
    ap.add_argument("--epochs", type=int, default=None,
                    help="every method trains this many epochs on both sides (default: EPOCHS); give it its own "
                         "--results and --work, since an entry's key does not hold its epochs")
    ap.add_argument("--variants", nargs="+", default=None, help="only these variants (default: all)")
    ap.add_argument("--data", default=str(DATA), help="the shared data folder (wiki/, uci-handwritten/)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--results", default=str(RESULTS), help="results file (parallel grids: one file each)")
    ap.add_argument("--record-runs", nargs="+", default=None, metavar="RUN",
                    help="only record these finished run folders (crossmodal train) as variant `run:LABEL`")
    ap.add_argument("--merge", nargs="+", default=None, metavar="FILE",
                    help="only merge these results files into --results and write its table")
    args = ap.parse_args()

    from new_methods_table import write_table

    results = Results(Path(args.results))
    if args.record_runs:
        for run in map(Path, args.record_runs):
            record_run(results, run)
        write_table(results.data, Path(args.results).with_suffix(".md"))
        return
    if args.merge:
        for path in args.merge:
            other = Results(Path(path))
            for k, v in other.data["about"].items():
                if k == "datasets":  # toy's split moves with the seed: one export (and hash) per seed
                    mine = results.data["about"].setdefault(k, {})
                    for ds, info in v.items():
                        seen = [h for h in mine.get(ds, {}).get("split_hash", "").split(", ") if h]
                        new = [info["split_hash"]] * (info["split_hash"] not in seen)
                        mine[ds] = {**info, "split_hash": ", ".join(seen + new)}
                elif isinstance(v, dict):
                    results.data["about"].setdefault(k, {}).update(v)
                elif k == "crossmodal_commit":  # the grids ran at different commits: keep each
                    seen = [c for c in results.data["about"].get(k, "").split(", ") if c]
                    results.data["about"][k] = ", ".join(seen + [v] * bool(v and v not in seen))
                else:
                    results.data["about"][k] = v
            for entry in other.data["entries"]:
                results.put(entry)
        write_table(results.data, Path(args.results).with_suffix(".md"))
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="new-methods-"))
    about = results.data["about"]
    about["crossmodal_commit"] = git_commit(ROOT)
    epochs_of = {key: args.epochs or e for key, e in EPOCHS.items()}
    about["epochs"] = {f"{m}/{d}": e for (m, d), e in epochs_of.items()}
    about.setdefault("code", {})
    about.setdefault("datasets", {})
    for method in args.methods:
        folder, repo = REPOS[method]
        about["code"][method] = {"repo": repo, "commit": git_commit(Path(args.released) / folder)}
    all_refs = refs(Path(args.data))
    for ds in args.datasets:
        ref = all_refs[ds]
        data = work / f"{ds}.mat"
        about["datasets"][ds] = export_mat(ref, data, seeds=tuple(args.seeds))
        results.save()
        for method in args.methods:
            epochs = epochs_of[(method, ds)]
            for bits in args.bits:
                for seed in args.seeds:
                    key = {"method": method, "dataset": ds, "bits": bits, "seed": seed}
                    stamp = {**key, "commit": about["crossmodal_commit"]}  # the commit that made the entry
                    wanted = (lambda v: args.variants is None or v in args.variants)
                    if wanted("official") and not results.get(**key, variant="official"):
                        out = work / f"{method}-{ds}-{bits}-{seed}"
                        try:
                            secs = run_released(method, Path(args.released) / REPOS[method][0], data, bits, seed,
                                                epochs, out)
                            for prefix in OFFICIAL_VARIANTS[method]:
                                variant = "official" if prefix == "released" else f"official-{prefix}"
                                figs, run = score_codes(ref, bits, seed, f"{method}-{variant}",
                                                        codes_files(out, prefix), work / "runs")
                                results.put({**stamp, "variant": variant, "epochs": epochs, "seconds": round(secs, 1),
                                             "figures": figs})
                        except OfficialError as exc:
                            results.put({**stamp, "variant": "official", "epochs": epochs, "error": str(exc),
                                         "figures": {}})
                    for variant, over in PORT_VARIANTS[method].items():
                        if not wanted(variant) or results.get(**key, variant=variant):
                            continue
                        over = {"epochs": epochs, "progress": "false", **over}
                        try:
                            figs, run, secs = train_port(ref, method, bits, seed, over, f"{method}-{variant}",
                                                         work / "runs", unified=False)
                            results.put({**stamp, "variant": variant, "epochs": epochs, "seconds": round(secs, 1),
                                         "overrides": over, "figures": figs})
                        except OfficialError as exc:
                            results.put({**stamp, "variant": variant, "epochs": epochs, "error": str(exc),
                                         "figures": {}})
                    print(f"{method} {ds} {bits} bits seed {seed}: done", flush=True)
    write_table(results.data, Path(args.results).with_suffix(".md"))


if __name__ == "__main__":
    main()
