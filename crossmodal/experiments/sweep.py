"""Sweeps: a grid of methods x datasets x bits x seeds from one YAML file, resumable.

    crossmodal sweep experiments/sweeps/wiki.yaml --data-root ../shared/data/wiki
    python -m experiments.run experiments/sweeps/wiki.yaml --data-root ../shared/data/wiki   (the same)

A sweep file::

    name: wiki                      # wandb group, default output folder runs/sweeps/NAME
    datasets: [wiki]                # names or {name: ..., root: ..., params: {...}}
    methods:                        # a method and its config: a preset, a config file, overrides
      - {method: ugach, preset: fast}
      - {method: cca-itq}
      - {method: lsh, label: lsh-baseline, overrides: {}}   # label default: method-preset+key=value...
    bits: [16, 32, 64, 128]
    seeds: [0, 1, 2]
    ks: [100]                       # optional; also directions ([i2i] for image tables), tracker, log_artifact, out,
                                    # wandb: {project, entity, tags, notes}

Each grid point gets its own folder ``OUT/LABEL-DATASET-BITSb-sSEED``. Rerunning the sweep skips
finished runs (``report.json`` present) -- a finished run whose config differs from what the sweep
file now gives is reported STALE and kept, never retrained in place --, resumes interrupted ones
from their last checkpoint,
and retries failed ones; a failing point (an unknown method, a bad key, missing data, a crash)
is recorded in its ``failed.json`` and the sweep goes on. ``OUT/sweep.json`` lists every grid
point and its state, rewritten after each point. ``--dry-run`` validates every point (method,
config keys, dataset and its parameters) and trains nothing. With the wandb tracker the sweep's
aggregated report (``OUT/report``) is logged as a ``report`` job in the sweep's group.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
import traceback
from pathlib import Path

from crossmodal.config import dataset_key, load_config, parse_overrides, preset_path, read_yaml
from crossmodal.engine import atomic_write_json
from crossmodal.errors import ConfigError, CrossmodalError, did_you_mean
from crossmodal.report import config_label, write_report
from crossmodal.runs import RunSpec, train_run
from crossmodal.tracking import Tracker

SWEEP_KEYS = {"name", "description", "datasets", "methods", "bits", "seeds", "ks", "directions", "tracker",
              "log_artifact", "out", "wandb"}
WANDB_KEYS = {"project", "entity", "tags", "notes"}
METHOD_KEYS = {"method", "label", "preset", "config", "overrides", "database_codes"}


def load_sweep(path: str | Path) -> dict:
    """The sweep file at ``path``, checked (known keys, non-empty lists, method entries, wandb
    keys, one label per entry) and completed (``name``, ``seeds``; datasets and methods as dicts)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: sweep file not found")
    sw = read_yaml(p, "sweep keys")
    unknown = set(sw) - SWEEP_KEYS
    if unknown:
        k = sorted(unknown)[0]
        raise ConfigError(f"{p}: unknown sweep key {k!r}{did_you_mean(k, sorted(SWEEP_KEYS))} "
                          f"known: {', '.join(sorted(SWEEP_KEYS))}")
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
            may = ", ".join(sorted(METHOD_KEYS - {"method"}))
            raise ConfigError(f"{p}: method entry {m}: needs 'method', may have {may}")
    bad = set(sw.get("wandb") or {}) - WANDB_KEYS
    if bad:
        raise ConfigError(f"{p}: unknown wandb key(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(WANDB_KEYS))}")
    labels = [entry_label(m) for m in sw["methods"]]
    dup = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dup:
        raise ConfigError(f"{p}: two method entries share the label {dup[0]!r}; give one a label: so that the "
                          "report never averages two configurations into one row")
    return sw


def entry_label(m: dict) -> str:
    """A method entry's table label: its ``label``, else method, preset, config and overrides."""
    over = m.get("overrides") or {}
    if isinstance(over, list):
        over = parse_overrides(over)
    label = config_label(m["method"], m.get("preset"), m.get("config"), over)
    if m.get("database_codes") == "unified":
        label += "-unified"  # a different evaluation convention is a different row
    return m.get("label") or label


def method_config(entry: dict, dataset: str) -> tuple[dict, dict]:
    """``(config, run settings)`` of one sweep method entry for one dataset."""
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
    """Every grid point (dataset x method entry x bits x seed) with its label and folder name."""
    points = []
    for ds, m, bits, seed in itertools.product(sw["datasets"], sw["methods"], sw["bits"], sw["seeds"]):
        label = entry_label(m)
        name = ds["name"]
        short = Path(name).name if Path(name).is_dir() else name
        points.append({"dataset": ds, "method": m, "label": label, "bits": int(bits), "seed": int(seed),
                       "folder": f"{label}-{short}-{int(bits)}b-s{int(seed)}"})
    return points


def state(run_dir: Path) -> str:
    """``done`` (report.json), ``failed`` (failed.json), ``interrupted`` (run.json) or ``todo``."""
    if (run_dir / "report.json").is_file():
        return "done"
    if (run_dir / "failed.json").is_file():
        return "failed"
    if (run_dir / "run.json").is_file():
        return "interrupted"
    return "todo"


def check_point(p: dict, data_root: str | None = None, _cache: dict | None = None) -> dict:
    """Validate one grid point without training: the method exists, its preset / config file /
    overrides are valid keys, and its dataset loads with its parameters. Returns the resolved
    ``{"config", "run"}``; raises :class:`CrossmodalError` naming what is wrong."""
    from crossmodal.data import get_dataset
    from crossmodal.methods import get_method

    ds = p["dataset"]
    cls = get_method(p["method"]["method"])
    cfg, run = method_config(p["method"], dataset_key(ds["name"]))
    cls(p["bits"], seed=p["seed"], **cfg)  # unknown or bad keys raise here
    key = json.dumps([ds["name"], ds.get("root") or data_root, ds.get("params") or {}], sort_keys=True, default=str)
    cache = {} if _cache is None else _cache
    if key not in cache:
        try:
            get_dataset(ds["name"], root=ds.get("root") or data_root, seed=p["seed"], **(ds.get("params") or {}))
            cache[key] = None
        except CrossmodalError as exc:
            cache[key] = exc
    if cache[key] is not None:
        raise cache[key]
    return {"config": cfg, "run": run}


IGNORED_KEYS = ("progress", "device", "keep_checkpoints")  # change how a run is made, not what it learns


def stale_keys(run_dir: Path, point: dict) -> list[str]:
    """Config keys whose value in the finished run ``run_dir`` differs from what the sweep file
    now gives its grid ``point`` (e.g. after a preset changed); ``[]`` when they agree."""
    from crossmodal.methods import get_method

    try:
        have = RunSpec.read(run_dir).config
        cfg, _ = method_config(point["method"], dataset_key(point["dataset"]["name"]))
        cls = get_method(point["method"]["method"])
        want = cls(point["bits"], seed=point["seed"], **cfg).config
    except (OSError, ValueError, CrossmodalError):
        return []  # unreadable or no longer valid: reported by the run's own checks, not here
    # a key the run does not record was added later, with its default = the behaviour it ran with
    have = {**cls.defaults, **have}
    return sorted(k for k in cfg if k not in IGNORED_KEYS and have.get(k) != want.get(k))


def stale_runs(sw: dict, out: Path) -> list[tuple[str, list[str]]]:
    """``(folder, keys)`` of every finished grid point under ``out`` made with another config."""
    found = []
    for p in grid(sw):
        run_dir = Path(out) / p["folder"]
        if state(run_dir) == "done":
            keys = stale_keys(run_dir, p)
            if keys:
                found.append((p["folder"], keys))
    return found


def _write_state(out: Path, path, sw: dict, points: list[dict]) -> None:
    summary = [{"folder": p["folder"], "label": p["label"], "state": state(out / p["folder"])} for p in points]
    atomic_write_json(out / "sweep.json", {"sweep": str(path), "name": sw["name"], "points": summary})


def _record_failure(run_dir: Path, exc: BaseException, stage: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "failed.json", {"stage": stage, "error": f"{type(exc).__name__}: {exc}",
                                                "traceback": traceback.format_exc()})


def run_sweep(path: str | Path, data_root: str | None = None, out: str | Path | None = None,
              tracker: str | None = None, only: list[str] | None = None, dry_run: bool = False,
              wandb: dict | None = None, log=print) -> dict:
    """Run (or continue) a sweep; returns ``{state: count}`` after it (``dry_run``: ``{"valid", "invalid"}``)."""
    from crossmodal.methods import get_method

    sw = load_sweep(path)
    out = Path(out or sw.get("out") or Path("runs") / "sweeps" / sw["name"])
    points = grid(sw)
    if only:
        points = [p for p in points if any(o in p["folder"] for o in only)]
    wandb = {**(sw.get("wandb") or {}), **(wandb or {})}
    tracker = tracker or sw.get("tracker")
    if dry_run:  # validate every point, write nothing
        cache: dict = {}
        bad = 0
        for i, p in enumerate(points, 1):
            head = f"[{i}/{len(points)}] {p['folder']}"
            try:
                check_point(p, data_root, cache)
                log(f"{head}: ok ({state(out / p['folder'])})")
            except CrossmodalError as exc:
                bad += 1
                log(f"{head}: INVALID: {exc}")
        log(f"sweep {sw['name']}: {len(points) - bad} of {len(points)} grid points valid")
        return {"valid": len(points) - bad, "invalid": bad}
    out.mkdir(parents=True, exist_ok=True)
    counts = {"done": 0, "failed": 0, "skipped": 0, "stale": 0}
    t0 = time.perf_counter()
    _write_state(out, path, sw, points)
    for i, p in enumerate(points, 1):
        run_dir = out / p["folder"]
        st = state(run_dir)
        head = f"[{i}/{len(points)}] {p['folder']}"
        if st == "done":
            keys = stale_keys(run_dir, p)
            if keys:
                log(f"{head}: STALE: finished with another {', '.join(keys)} than the sweep file now gives; "
                    "kept (a finished run is never changed): sweep into a new --out to retrain")
                counts["stale"] += 1
            else:
                log(f"{head}: finished earlier, skipped")
                counts["skipped"] += 1
            continue
        ds = p["dataset"]
        try:
            cfg, run = method_config(p["method"], dataset_key(ds["name"]))
            if "progress" in get_method(p["method"]["method"]).defaults:
                cfg.setdefault("progress", False)  # one line per run instead of nested bars
        except Exception as exc:  # an unknown method or a bad config: recorded, the sweep goes on
            _record_failure(run_dir, exc, "config")
            log(f"{head}: FAILED ({type(exc).__name__}: {exc}); recorded in {run_dir / 'failed.json'}")
            counts["failed"] += 1
            _write_state(out, path, sw, points)
            continue
        ckpt = run_dir / "checkpoints"
        resume = run_dir if st == "interrupted" and ckpt.is_dir() and any(ckpt.iterdir()) else None
        if st == "failed":  # a retry starts from scratch: its checkpoints may be what failed
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        (run_dir / "failed.json").unlink(missing_ok=True)
        log(f"{head}: {'resuming' if resume else 'training'}")
        try:
            train_run(p["method"]["method"], ds["name"], p["bits"], seed=p["seed"], config=cfg,
                      data_root=ds.get("root") or data_root, dataset_params=ds.get("params"),
                      tracker=tracker or run.get("tracker", "jsonl"),
                      resume=resume, run_dir=None if resume else run_dir,
                      ks=tuple(sw.get("ks") or run.get("ks") or (100,)),
                      directions=tuple(sw.get("directions") or ()) or None,
                      label=p["label"], group=sw["name"],
                      log_artifact=bool(sw.get("log_artifact", run.get("log_artifact", False))), wandb=wandb,
                      log=lambda *a: None,
                      database_codes=p["method"].get("database_codes") or run.get("database_codes", "per-modality"))
            counts["done"] += 1
        except Exception as exc:  # a failing run is recorded and the sweep goes on
            _record_failure(run_dir, exc, "train")
            log(f"{head}: FAILED ({type(exc).__name__}: {exc}); recorded in {run_dir / 'failed.json'}")
            counts["failed"] += 1
        _write_state(out, path, sw, points)
    stale = f", {counts['stale']} STALE (another config)" if counts["stale"] else ""
    log(f"sweep {sw['name']}: {counts['done']} trained, {counts['skipped']} already finished{stale}, "
        f"{counts['failed']} failed in {time.perf_counter() - t0:.0f} s -> {out}")
    if (tracker or "jsonl") == "wandb" and (counts["done"] or counts["skipped"]):
        log_sweep_report(out, sw, wandb, log=log)
    return counts


def log_sweep_report(out: Path, sw: dict, wandb: dict | None = None, log=print) -> Path:
    """Aggregate the sweep into ``OUT/report`` and log it as a ``report`` job in the sweep's wandb
    group: the table (one row per cell), and every figure as an image."""
    rep = out / "report"
    table, files = write_report([out], rep, methods_order=[entry_label(m) for m in sw["methods"]], formats=("png",))
    rows = [line.split(",") for line in (rep / "table.csv").read_text(encoding="utf-8").splitlines()]
    with Tracker(rep, "wandb", config={"sweep": sw["name"], "runs": len(table.runs)}, name=f"{sw['name']}-report",
                 group=sw["name"], job_type="report", flat=False, **(wandb or {})) as tr:
        tr.table("sweep_results", rows[0], rows[1:])
        for f in files:
            if f.suffix == ".png":
                tr.image(f"figures/{f.stem}", f)
    log(f"sweep report -> {rep} (logged to wandb group {sw['name']})")
    return rep
