"""Sweeps: a grid of methods x datasets x bits x seeds from one YAML file, resumable.

    crossmodal sweep experiments/sweeps/wiki.yaml --data-root ../shared/data/wiki
    python -m experiments.run experiments/sweeps/wiki.yaml --data-root ../shared/data/wiki

A sweep file::

    name: wiki                      # wandb group, default output folder runs/sweeps/NAME
    datasets: [wiki]                # names or {name: ..., root: ..., params: {...}}
    methods:                        # a method and its config: a preset, a config file, overrides
      - {method: ugach, preset: fast}
      - {method: cca-itq}
      - {method: lsh, label: lsh-baseline, overrides: {}}
    bits: [16, 32, 64, 128]
    seeds: [0, 1, 2]
    ks: [100]                       # optional; also directions ([i2i] for image tables), tracker, log_artifact, out

Each grid point gets its own folder ``OUT/LABEL-DATASET-BITSb-sSEED``. Rerunning the sweep skips
finished runs (``report.json`` present), resumes interrupted ones from their last checkpoint,
and retries failed ones; a failing run is recorded in its ``failed.json`` and the sweep goes on.
``OUT/sweep.json`` lists every grid point and its state.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import traceback
from pathlib import Path

import yaml

from crossmodal.errors import ConfigError, CrossmodalError

SWEEP_KEYS = {"name", "description", "datasets", "methods", "bits", "seeds", "ks", "directions", "tracker", "log_artifact", "out"}
METHOD_KEYS = {"method", "label", "preset", "config", "overrides", "database_codes"}


def load_sweep(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: sweep file not found")
    try:
        sw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML ({str(exc).splitlines()[0]})") from None
    unknown = set(sw) - SWEEP_KEYS
    if unknown:
        import difflib

        k = sorted(unknown)[0]
        close = difflib.get_close_matches(k, SWEEP_KEYS, n=1)
        raise ConfigError(f"{p}: unknown sweep key {k!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                          + f" known: {', '.join(sorted(SWEEP_KEYS))}")
    for key in ("datasets", "methods", "bits"):
        if not sw.get(key):
            raise ConfigError(f"{p}: the sweep needs a non-empty {key!r} list")
    sw.setdefault("name", p.stem)
    sw.setdefault("seeds", [0])
    sw["datasets"] = [d if isinstance(d, dict) else {"name": d} for d in sw["datasets"]]
    sw["methods"] = [m if isinstance(m, dict) else {"method": m} for m in sw["methods"]]
    for m in sw["methods"]:
        bad = set(m) - METHOD_KEYS
        if bad or "method" not in m:
            raise ConfigError(f"{p}: method entry {m}: needs 'method', may have {', '.join(sorted(METHOD_KEYS - {'method'}))}")
    return sw


def method_config(entry: dict, dataset: str) -> tuple[dict, dict]:
    """``(config, run settings)`` of one sweep method entry for one dataset."""
    from crossmodal.runs import load_config, parse_overrides, preset_path

    method = entry["method"]
    cfg, run = {}, {}
    path = Path(entry["config"]) if entry.get("config") else None
    if path is None:
        try:
            path = preset_path(method, entry.get("preset"))
        except ConfigError:
            if entry.get("preset"):
                raise
    if path is not None:
        cfg, run = load_config(path, dataset, method)
    over = entry.get("overrides") or {}
    cfg.update(parse_overrides(over) if isinstance(over, list) else over)
    return cfg, run


def grid(sw: dict) -> list[dict]:
    points = []
    for ds, m, bits, seed in itertools.product(sw["datasets"], sw["methods"], sw["bits"], sw["seeds"]):
        label = m.get("label") or (m["method"] if m.get("preset") in (None, "paper") else f"{m['method']}-{m['preset']}")
        name = ds["name"]
        short = Path(name).name if Path(name).is_dir() else name
        points.append({"dataset": ds, "method": m, "label": label, "bits": int(bits), "seed": int(seed),
                       "folder": f"{label}-{short}-{int(bits)}b-s{int(seed)}"})
    return points


def state(run_dir: Path) -> str:
    if (run_dir / "report.json").is_file():
        return "done"
    if (run_dir / "failed.json").is_file():
        return "failed"
    if (run_dir / "run.json").is_file():
        return "interrupted"
    return "todo"


def run_sweep(path: str | Path, data_root: str | None = None, out: str | Path | None = None,
              tracker: str | None = None, only: list[str] | None = None, dry_run: bool = False, log=print) -> dict:
    """Run (or continue) a sweep; returns ``{state: count}`` after it."""
    from crossmodal.methods import get_method
    from crossmodal.runs import dataset_key, train_run

    sw = load_sweep(path)
    out = Path(out or sw.get("out") or Path("runs") / "sweeps" / sw["name"])
    points = grid(sw)
    if only:
        points = [p for p in points if any(o in p["folder"] for o in only)]
    out.mkdir(parents=True, exist_ok=True)
    counts = {"done": 0, "failed": 0, "skipped": 0}
    t0 = time.perf_counter()
    for i, p in enumerate(points, 1):
        run_dir = out / p["folder"]
        st = state(run_dir)
        head = f"[{i}/{len(points)}] {p['folder']}"
        if st == "done":
            log(f"{head}: finished earlier, skipped")
            counts["skipped"] += 1
            continue
        if dry_run:
            log(f"{head}: {st}")
            continue
        ds = p["dataset"]
        cfg, run = method_config(p["method"], dataset_key(ds["name"]))
        if "progress" in get_method(p["method"]["method"]).defaults:
            cfg.setdefault("progress", False)  # one line per run instead of nested bars
        resume = run_dir if st == "interrupted" and (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()) else None
        if st == "failed":  # a retry starts from scratch: its checkpoints may be what failed
            import shutil

            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        (run_dir / "failed.json").unlink(missing_ok=True)
        log(f"{head}: {'resuming' if resume else 'training'}")
        try:
            train_run(p["method"]["method"], ds["name"], p["bits"], seed=p["seed"], config=cfg,
                      data_root=ds.get("root") or data_root, dataset_params=ds.get("params"),
                      tracker=tracker or sw.get("tracker") or run.get("tracker", "jsonl"),
                      resume=resume, run_dir=None if resume else run_dir,
                      ks=tuple(sw.get("ks") or run.get("ks") or (100,)), directions=tuple(sw.get("directions") or ()) or None,
                      label=p["label"], group=sw["name"],
                      log_artifact=bool(sw.get("log_artifact", run.get("log_artifact", False))), log=lambda *a: None,
                      database_codes=p["method"].get("database_codes") or run.get("database_codes", "per-modality"))
            counts["done"] += 1
        except Exception as exc:  # a failing run is recorded and the sweep goes on
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "failed.json").write_text(json.dumps({
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}, indent=2), encoding="utf-8")
            log(f"{head}: FAILED ({type(exc).__name__}: {exc}); recorded in {run_dir / 'failed.json'}")
            counts["failed"] += 1
    summary = [{"folder": p["folder"], "state": state(out / p["folder"])} for p in points]
    (out / "sweep.json").write_text(json.dumps({"sweep": str(path), "name": sw["name"], "points": summary}, indent=2),
                                    encoding="utf-8")
    log(f"sweep {sw['name']}: {counts['done']} trained, {counts['skipped']} already finished, {counts['failed']} failed "
        f"in {time.perf_counter() - t0:.0f} s -> {out}")
    return counts


def build_parser(prog: str = "python -m experiments.run") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Run a sweep (methods x datasets x bits x seeds), resumably.")
    add_sweep_arguments(p)
    return p


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep YAML file (see experiments/sweeps/)")
    p.add_argument("--data-root", default=None, help="folder with the dataset's files, for datasets without root:")
    p.add_argument("--out", default=None, help="output folder (default: the file's out:, or runs/sweeps/NAME)")
    p.add_argument("--tracker", default=None, choices=("none", "jsonl", "wandb"), help="override the sweep's tracker")
    p.add_argument("--only", action="append", default=None, metavar="TEXT", help="only grid points whose folder name contains TEXT")
    p.add_argument("--dry-run", action="store_true", help="list the grid points and their state, train nothing")


def run_from_args(args) -> int:
    counts = run_sweep(args.sweep, data_root=args.data_root, out=args.out, tracker=args.tracker, only=args.only,
                       dry_run=args.dry_run)
    return 1 if counts["failed"] else 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_from_args(args)
    except CrossmodalError as exc:
        print(f"crossmodal: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
