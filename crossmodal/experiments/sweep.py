"""Sweeps: a grid of methods x datasets x bits x seeds from one YAML file, resumable.

    crossmodal sweep experiments/sweeps/wiki.yaml --data-root ../shared/data/wiki
    python -m experiments.run experiments/sweeps/wiki.yaml --data-root ../shared/data/wiki   (the same)
    crossmodal sweep experiments/sweeps/wiki.yaml --executor dask --workers 2   (2 runs at a time)

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

Where the runs train is the executor's business (:mod:`crossmodal.experiments.executors`):
one after another in this process, or each grid point one Dask task; every grid point goes
through :func:`crossmodal.experiments.point.run_point` either way, into the same folders.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from pathlib import Path

from crossmodal.config import dataset_key, load_config, parse_overrides, preset_path, read_yaml
from crossmodal.engine import atomic_write_json
from crossmodal.errors import ConfigError, CrossmodalError, did_you_mean
from crossmodal.experiments.executors import SequentialExecutor
from crossmodal.experiments.point import record_failure, run_point, state
from crossmodal.report import config_label, write_report
from crossmodal.runs import RunSpec
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


def run_sweep(path: str | Path, data_root: str | None = None, out: str | Path | None = None,
              tracker: str | None = None, only: list[str] | None = None, dry_run: bool = False,
              wandb: dict | None = None, log=print, executor=None) -> dict:
    """Run (or continue) a sweep; returns ``{state: count}`` after it (``dry_run``: ``{"valid", "invalid"}``).

    ``executor`` (:mod:`crossmodal.experiments.executors`; default: sequential, in this process)
    runs the grid points left to train, each :func:`~crossmodal.experiments.point.run_point`;
    finished (and STALE) points and points whose config does not resolve are settled here first.
    One line per settled point, ``[done/total]``; ``OUT/sweep.json`` is rewritten after each.
    """
    sw = load_sweep(path)
    out = Path(out or sw.get("out") or Path("runs") / "sweeps" / sw["name"])
    points = grid(sw)
    if only:
        points = [p for p in points if any(o in p["folder"] for o in only)]
    wandb = {**(sw.get("wandb") or {}), **(wandb or {})}
    tracker = tracker or sw.get("tracker")
    if dry_run:
        return dry_run_sweep(sw, points, out, data_root, log)
    executor = executor or SequentialExecutor()
    out.mkdir(parents=True, exist_ok=True)
    counts = {"done": 0, "failed": 0, "skipped": 0, "stale": 0}
    settled = []

    def settle(p: dict, what: str, line: str) -> None:
        counts[what] += 1
        settled.append(p["folder"])
        log(f"[{len(settled)}/{len(points)}] {p['folder']}: {line}")
        _write_state(out, path, sw, points)

    t0 = time.perf_counter()
    _write_state(out, path, sw, points)
    if any(state(out / p["folder"]) != "done" for p in points):
        executor.prepare()  # a cluster starts while the points are checked below
    todo = []
    try:
        for p in points:
            task = _settle_or_task(p, out, sw, data_root, tracker, wandb, settle)
            if task is not None:
                todo.append((p, task))
        fn = functools.partial(run_point, log=log) if executor.in_process else run_point
        for o in executor.map_unordered(fn, [t for _, t in todo], keys=[p["folder"] for p, _ in todo]):
            p = todo[o.index][0]
            res = o.value
            if o.error is not None:  # the task itself was lost (its worker died again and again)
                record_failure(out / p["folder"], o.error, "executor")
                res = {"state": "failed", "resumed": False, "error": f"{type(o.error).__name__}: {o.error}"}
            if res["state"] == "failed":
                settle(p, "failed", f"FAILED ({res['error']}); recorded in {out / p['folder'] / 'failed.json'}")
            elif res["state"] == "skipped":
                settle(p, "skipped", "finished meanwhile by another process, skipped")
            else:
                how = "resumed from its checkpoint and finished" if res["resumed"] else "trained"
                settle(p, "done", f"{how} in {o.seconds:.0f} s")
    finally:
        _write_state(out, path, sw, points)
    stale = f", {counts['stale']} STALE (another config)" if counts["stale"] else ""
    log(f"sweep {sw['name']}: {counts['done']} trained, {counts['skipped']} already finished{stale}, "
        f"{counts['failed']} failed in {time.perf_counter() - t0:.0f} s -> {out}")
    if (tracker or "jsonl") == "wandb" and (counts["done"] or counts["skipped"]):
        log_sweep_report(out, sw, wandb, log=log)
    return counts


def dry_run_sweep(sw: dict, points: list[dict], out: Path, data_root, log) -> dict:
    """Validate every grid point (:func:`check_point`), write nothing; ``{"valid", "invalid"}``."""
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


def _settle_or_task(p: dict, out: Path, sw: dict, data_root, tracker, wandb, settle) -> dict | None:
    """A grid point finished earlier (kept, STALE when its config changed since) or whose config
    does not resolve (recorded as failed) is settled here and gives None; any other point gives
    the task :func:`run_point` trains."""
    from crossmodal.methods import get_method

    run_dir = out / p["folder"]
    if state(run_dir) == "done":
        keys = stale_keys(run_dir, p)
        if keys:
            settle(p, "stale", f"STALE: finished with another {', '.join(keys)} than the sweep file now gives; "
                               "kept (a finished run is never changed): sweep into a new --out to retrain")
        else:
            settle(p, "skipped", "finished earlier, skipped")
        return None
    ds = p["dataset"]
    try:
        cfg, run = method_config(p["method"], dataset_key(ds["name"]))
        if "progress" in get_method(p["method"]["method"]).defaults:
            cfg.setdefault("progress", False)  # one line per run instead of nested bars
    except Exception as exc:  # an unknown method or a bad config: recorded, the sweep goes on
        record_failure(run_dir, exc, "config")
        settle(p, "failed", f"FAILED ({type(exc).__name__}: {exc}); recorded in {run_dir / 'failed.json'}")
        return None
    train = dict(data_root=ds.get("root") or data_root, dataset_params=ds.get("params"),
                 tracker=tracker or run.get("tracker", "jsonl"), ks=tuple(sw.get("ks") or run.get("ks") or (100,)),
                 directions=tuple(sw.get("directions") or ()) or None, label=p["label"], group=sw["name"],
                 log_artifact=bool(sw.get("log_artifact", run.get("log_artifact", False))), wandb=wandb,
                 database_codes=p["method"].get("database_codes") or run.get("database_codes", "per-modality"))
    return {"run_dir": str(run_dir), "method": p["method"]["method"], "dataset": ds["name"], "bits": p["bits"],
            "seed": p["seed"], "config": cfg, "train": train}


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
