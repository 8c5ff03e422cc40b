"""Runs: train a method on a dataset into a fresh run folder, evaluate it, query it.

A run folder holds::

    run.json            everything needed to rerun: method, bits, seed, resolved config,
                        dataset spec, split hash, versions, commit
    metrics.jsonl       the tracker's log (config, per-epoch metrics, summary)
    checkpoints/        per-epoch checkpoints of methods that have epochs (resume)
    model/              the trained hasher (hasher.json + state.npz) and featurizers.json
    index-image.npz     Hamming index of the database's image codes
    index-text.npz      Hamming index of the database's text codes (both record the model's identity)
    report.json / report.md / pr.png   the evaluation (report.json is written last: the run is finished)
    evaluations/eval-0001/...          re-evaluations (``crossmodal evaluate``), numbered, never in place
    .lock               while a process trains or resumes the run (owner's host and pid)

A finished run folder is immutable; every file is written atomically; ``run.json`` records a
content fingerprint of the data, which ``evaluate`` and ``query`` check.
"""

from __future__ import annotations

import difflib
import json
import os
import platform
import re
import sys
from pathlib import Path

import numpy as np
import yaml

from crossmodal import __version__
from crossmodal.data import get_dataset
from crossmodal.engine import (
    pid_alive,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    new_run_dir,
    seed_everything,
)
from crossmodal.errors import ConfigError, CrossmodalError, DataError
from crossmodal.features import embed_query, featurizer_from_dict
from crossmodal.methods import ValidationSet, get_method, load_hasher, method_key
from crossmodal.retrieval.codes import check_bits
from crossmodal.retrieval.evaluate import check_database_codes, evaluate, git_commit
from crossmodal.retrieval.index import HammingIndex
from crossmodal.tracking import Tracker

def _config_dir() -> Path:
    """``experiments/configs`` of a source checkout, else the copy installed as package data."""
    repo = Path(__file__).resolve().parent.parent / "experiments" / "configs"
    return repo if repo.is_dir() else Path(__file__).resolve().parent / "_configs"


CONFIG_DIR = _config_dir()


def parse_overrides(pairs: list[str]) -> dict:
    """``["lr=0.01", "epochs=5"]`` -> ``{"lr": 0.01, "epochs": 5}`` (values parsed as YAML)."""
    out = {}
    for p in pairs:
        if "=" not in p or p.startswith("="):
            raise ConfigError(f"override {p!r} is not key=value")
        k, v = p.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v) if v != "" else ""
        except yaml.YAMLError:
            out[k.strip()] = v
    return out


RUN_KEYS = ("ks", "tracker", "log_artifact", "database_codes")
INFO_KEYS = ("method", "description")


def _read_yaml(p: Path) -> dict:
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping of config keys")
    return raw


def _config_layers(path: str | os.PathLike, seen: tuple = ()) -> list[tuple[Path, dict]]:
    """The file and its ``base:`` chain, base first."""
    p = Path(path)
    if not p.is_file() and (CONFIG_DIR / p).is_file():
        p = CONFIG_DIR / p
    if not p.is_file():
        raise ConfigError(f"{path}: config file not found")
    if p.resolve() in seen:
        raise ConfigError(f"{p}: circular base: chain")
    raw = _read_yaml(p)
    base = raw.pop("base", None)
    if base and not (p.parent / base).is_file() and (CONFIG_DIR / base).is_file():
        base = CONFIG_DIR / base  # a user's config may build on the shipped base.yaml
    layers = _config_layers(p.parent / base, seen + (p.resolve(),)) if base else []
    return layers + [(p, raw)]


def _check_layer_keys(p: Path, where: str, keys, params) -> None:
    """Every key of one config layer is a parameter of the method; else name file, path and fix."""
    valid = [q.name for q in params]
    for key in keys:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{p.name}: {where}{key}: unknown key{hint}")


def load_config(path: str | os.PathLike, dataset: str, method: str | None = None) -> tuple[dict, dict]:
    """``(method config, run settings)`` from a YAML config and its ``base:`` chain.

    Each layer's top-level keys, then its ``datasets: {NAME: {...}}`` overrides for ``dataset``,
    are applied base first; ``run:`` holds run-level settings (:data:`RUN_KEYS`); ``method`` and
    ``description`` are informational. With ``method``, every layer's keys (and those of every
    ``datasets:`` block) are checked against the method's declared parameters, and a ``method:``
    key must name that method.
    """
    from crossmodal.methods import get_method, method_key

    cls = get_method(method) if method else None
    cfg: dict = {}
    run: dict = {}
    for p, raw in _config_layers(path):
        raw = dict(raw)
        per_dataset = raw.pop("datasets", {}) or {}
        if not isinstance(per_dataset, dict):
            raise ConfigError(f"{p.name}: datasets: must map dataset names to config keys")
        named = raw.get("method")
        if cls is not None and named and method_key(get_method(str(named))) != method_key(cls):
            raise ConfigError(f"{p.name}: method: {named}, but the method being trained is {method_key(cls)}; "
                              "use that method's config or preset")
        for key in INFO_KEYS:
            raw.pop(key, None)
        layer_run = raw.pop("run", {}) or {}
        unknown = set(layer_run) - set(RUN_KEYS)
        if unknown:
            raise ConfigError(f"{p}: unknown run: key(s) {', '.join(sorted(unknown))}; known: {', '.join(RUN_KEYS)}")
        if cls is not None:
            _check_layer_keys(p, "", raw, cls.params)
            for name, block in per_dataset.items():
                _check_layer_keys(p, f"datasets.{name}.", block or {}, cls.params)
        run.update(layer_run)
        cfg.update(raw)
        cfg.update(per_dataset.get(dataset, {}) or {})
    return cfg, run


def load_config_file(path: str | os.PathLike, dataset: str, method: str | None = None) -> dict:
    """The method config of :func:`load_config` (run settings dropped)."""
    return load_config(path, dataset, method)[0]


def presets_of(method: str) -> list[str]:
    """Preset names of a method: ``paper`` for ``METHOD.yaml``, ``P`` for ``METHOD-P.yaml``.

    A file belongs to the longest registered method name it starts with, so ``cca-itq-fast``
    is preset ``fast`` of ``cca-itq``, not a preset of some method ``cca``.
    """
    from crossmodal.methods import available_methods

    names = available_methods()
    out = ["paper"] if (CONFIG_DIR / f"{method}.yaml").is_file() else []
    for f in sorted(CONFIG_DIR.glob(f"{method}-*.yaml")):
        owner, preset = split_preset(f.stem, names)
        if owner == method and preset != "paper":
            out.append(preset)
    return out


def split_preset(stem: str, names: list[str] | None = None) -> tuple[str, str]:
    """``"cca-itq-fast"`` -> ``("cca-itq", "fast")``; ``"ugach"`` -> ``("ugach", "paper")``."""
    from crossmodal.methods import available_methods

    names = names if names is not None else available_methods()
    owners = [m for m in names if f"{stem}-".startswith(f"{m}-")]
    if not owners:
        return stem, "paper"
    name = max(owners, key=len)
    return name, stem[len(name) + 1:] or "paper"


def preset_path(method: str, preset: str | None = None) -> Path:
    """``experiments/configs/METHOD.yaml`` (the paper settings; ``preset`` None or ``paper``)
    or ``METHOD-PRESET.yaml``."""
    p = CONFIG_DIR / (f"{method}.yaml" if preset in (None, "paper") else f"{method}-{preset}.yaml")
    if not p.is_file():
        raise ConfigError(f"no preset {preset!r} for {method}; known: {', '.join(presets_of(method)) or 'none'}")
    return p


def dataset_key(dataset: str) -> str:
    """The name ``datasets:`` overrides use: a registry name, or a prepared folder's source."""
    p = Path(dataset)
    if dataset in _source_names():
        return dataset
    if p.is_file() or (p.is_dir() and not (p / "meta.json").is_file()):
        return p.stem  # a paired .mat / .npz file or a feature folder: its name
    if p.is_dir() and (p / "meta.json").is_file():
        try:
            return json.loads((p / "meta.json").read_text(encoding="utf-8")).get("name") or p.name
        except json.JSONDecodeError:
            return p.name
    return dataset


def validation_set(ds, k=None, directions=("i2t", "t2i")) -> ValidationSet | None:
    if len(ds.split.validation) == 0 or ds.data.labels is None:
        return None
    return ValidationSet(query=ds.part("validation"), database=ds.data.subset(ds.split.validation_database()), k=k,
                         directions=tuple(directions))


def protocol_note(want: str | None, ds) -> str | None:
    """One line when a config names a split protocol (e.g. UGACH's ``protocol: ugach``) that
    the dataset defines but its split is not; None when they agree or the dataset has no
    named protocols (toy, wiki)."""
    if not want:
        return None
    from crossmodal.data.prepare import get_spec

    try:
        spec = get_spec(ds.name)
    except DataError:
        return None
    if want not in spec.protocols or ds.split.protocol == want:
        return None
    p = spec.protocols[want]
    return (f"{ds.name}: split {ds.split.protocol!r} ({len(ds.split.train)} training pairs, {len(ds.split.query)} "
            f"queries) is not the {want!r} protocol this config is meant for ({p.get('train') or 'all'} training, "
            f"{p['query']} queries), so figures are not the paper's; prepare it with `crossmodal datasets prepare "
            f"{ds.name} --protocol {want} --root ... --out ...`")


def environment() -> dict:
    import torch

    return {"crossmodal": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "cuda": torch.cuda.is_available(), "platform": platform.platform(),
            "commit": git_commit()}


def default_directions(hasher, ds=None) -> tuple[str, ...]:
    """I->T and T->I for cross-modal hashers on paired data, I->I for image-only hashers or data."""
    paired = ds is None or ds.data.text is not None
    return ("i2t", "t2i") if paired and set(hasher.modalities) >= {"image", "text"} else ("i2i",)


RUN_FILES = ("run.json", "metrics.jsonl", ".lock")  # what a failed start may have written


def read_run_spec(run_dir: str | os.PathLike, why: str = "") -> dict:
    """``run.json`` of a run folder, checked: one clear error when it is missing or damaged."""
    run_dir = Path(run_dir)
    f = run_dir / "run.json"
    if not f.is_file():
        raise CrossmodalError(f"{run_dir}: not a run folder (no run.json){why}")
    try:
        spec = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{f}: damaged ({type(exc).__name__}: {str(exc)[:80]}); the run folder cannot be used") from None
    ok = isinstance(spec, dict) and isinstance(spec.get("method"), str) and isinstance(spec.get("bits"), int) \
        and isinstance(spec.get("seed"), int) and isinstance(spec.get("config"), dict) \
        and isinstance(spec.get("dataset"), dict) and isinstance(spec["dataset"].get("name"), str) \
        and isinstance(spec["dataset"].get("params", {}), dict)
    if not ok:
        raise DataError(f"{f}: damaged (method, bits, seed, config or dataset missing or of the wrong type); "
                        "the run folder cannot be used")
    return spec


def finished(run_dir: str | os.PathLike) -> bool:
    """A run is finished (and immutable) once its ``report.json`` exists (written last)."""
    return (Path(run_dir) / "report.json").is_file()


def model_identity(model_dir: str | os.PathLike) -> str:
    """Content hash of a saved model (``hasher.json`` + ``state.npz``), recorded in its indexes."""
    import hashlib

    h = hashlib.sha256()
    for name in ("hasher.json", "state.npz"):
        f = Path(model_dir) / name
        if f.is_file():
            h.update(name.encode())
            h.update(f.read_bytes())
    return "sha256:" + h.hexdigest()[:16]


def _comparable(spec: dict) -> dict:
    """What must be equal for a run to be resumed: the model, the data, and the evaluation."""
    from crossmodal.methods.training import model_config

    d = spec.get("dataset", {})
    return {"method": spec.get("method"), "bits": spec.get("bits"), "seed": spec.get("seed"),
            "config": model_config(json.loads(json.dumps(spec.get("config", {})))),
            "dataset": {"name": d.get("name"), "root": d.get("root"), "params": d.get("params") or {}},
            "split_hash": spec.get("split_hash")}


def _check_resume(prev: dict, spec: dict, run_dir: Path) -> None:
    a, b = _comparable(prev), _comparable(spec)
    diffs = []
    for k in a:
        if a[k] != b[k]:
            if k == "config":
                keys = sorted(x for x in set(a[k]) | set(b[k]) if a[k].get(x) != b[k].get(x))
                diffs.append("config " + ", ".join(f"{x}={a[k].get(x)!r} (given {b[k].get(x)!r})" for x in keys[:4]))
            else:
                diffs.append(f"{k} {a[k]!r} (given {b[k]!r})")
    fp_prev, fp_now = prev.get("data_fingerprint"), spec.get("data_fingerprint")
    if fp_prev and fp_prev != fp_now:
        diffs.append(f"data fingerprint {fp_prev} (the data now gives {fp_now})")
    if diffs:
        raise CrossmodalError(f"{run_dir}: that run trained {prev.get('method')} at {prev.get('bits')} bits, seed "
                              f"{prev.get('seed')}, and this command differs: {'; '.join(diffs)}; resume with the same "
                              f"method, --bits, --seed, config and dataset (nothing was changed)")


def check_evaluable(ds) -> None:
    """Refuse, before training, data on which every score would be 0 (no query has a relevant item)."""
    from crossmodal.retrieval.evaluate import queries_without_relevant

    if ds.data.labels is None:
        return
    q = ds.data.labels[ds.split.query]
    db = ds.data.labels[ds.split.database]
    if queries_without_relevant(q, db) == len(ds.split.query):
        raise DataError(f"{ds.name}: no query shares a label with any database item (are the labels all zero?), so "
                        "every score would be 0; check the labels")


def _remove_failed_start(run_dir: Path) -> None:
    """Remove a run folder this call created when it holds nothing worth resuming (no
    checkpoint, no model): only the files crossmodal writes at a start, then the folder."""
    ckpt = run_dir / "checkpoints"
    if (ckpt.is_dir() and any(ckpt.iterdir())) or (run_dir / "model" / "hasher.json").exists():
        return
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for sub in (ckpt, run_dir / "model"):
        try:
            sub.rmdir()  # only when empty
        except OSError:
            pass
    try:
        run_dir.rmdir()  # only when empty: anything else stays
    except OSError:
        pass


def train_run(method: str, dataset: str, bits: int, seed: int = 0, config: dict | None = None,
              data_root: str | None = None, dataset_params: dict | None = None, out: str | os.PathLike = "runs",
              tracker: str = "jsonl", resume: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None,
              ks=(100,), directions: tuple[str, ...] | None = None, label: str | None = None,
              group: str | None = None, log_artifact: bool = False, wandb: dict | None = None, log=print,
              database_codes: str = "per-modality") -> Path:
    """Train ``method`` on ``dataset`` at ``bits``, evaluate, and return the run folder.

    The folder is new under ``out`` unless ``run_dir`` names it (sweeps) or ``resume`` points at
    an interrupted run. ``label`` names the configuration in tables (default: the method);
    ``group`` groups runs in wandb; ``log_artifact`` uploads the model, database codes and the
    dataset; ``wandb`` holds Tracker settings (``project``, ``entity``, ``tags``, ``notes``);
    ``database_codes`` is the evaluation's database-coding convention (per-modality or unified).

    Safety: everything (method, config, device, seed, dataset, labels, and for ``resume`` the
    run's own ``run.json``) is validated before anything is written; the run folder is locked
    while training; a resumed run's ``run.json`` is never rewritten; a finished run is never
    touched (resuming it returns it as it is); a start that fails before a checkpoint leaves no
    folder behind.
    """
    from crossmodal.data.core import data_fingerprint
    from crossmodal.engine import RunLock, check_out_folder, check_seed, clean_stale_tmp, resolve_device

    bits = check_bits(bits)
    seed = check_seed(seed)
    if tracker not in ("none", "jsonl", "wandb"):
        raise CrossmodalError(f"unknown tracker {tracker!r}; use none, jsonl, wandb")
    cls = get_method(method)
    hasher = cls(bits, seed=seed, **dict(config or {}))  # validates the config before anything is written
    check_database_codes(hasher, database_codes)
    if "device" in hasher.config:
        resolve_device(hasher.config["device"])
    ds = get_dataset(dataset, root=data_root, seed=seed, **(dataset_params or {}))
    directions = tuple(directions or default_directions(hasher, ds))
    check_evaluable(ds)
    hasher.check_data(ds.data)
    label = label or cls.name
    spec = {
        "method": method_key(cls), "label": label, "bits": bits, "seed": seed, "config": hasher.config,
        "dataset": dataset_record(dataset, ds, data_root, dataset_params),
        "split_hash": ds.split.hash, "split_protocol": ds.split.protocol,
        "data_fingerprint": data_fingerprint(ds.data),
        "evaluation": {"ks": list(ks), "directions": list(directions), "database_codes": database_codes},
        "group": group, "environment": environment(),
    }
    note = protocol_note(hasher.config.get("protocol"), ds)
    if note:
        spec["protocol_note"] = note
    created = False
    if resume:
        run_dir = Path(resume)
        prev = read_run_spec(run_dir, "; nothing to resume")
        _check_resume(prev, spec, run_dir)
        if finished(run_dir):
            log(f"{run_dir}: already finished; a finished run is not changed (re-evaluate it with "
                f"`crossmodal evaluate {run_dir}`)")
            return run_dir
        ev = prev.get("evaluation") or {}
        ks = tuple(ev.get("ks") or ks)
        directions = tuple(ev.get("directions") or directions)
        spec = prev
    elif run_dir is not None:
        run_dir = check_out_folder(run_dir, "run folder")
        if finished(run_dir):
            raise CrossmodalError(f"{run_dir}: holds a finished run, which is never overwritten; choose another folder")
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = new_run_dir(out, f"{label}-{ds.name}-{bits}b-s{seed}")
        created = True
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except BaseException:
        if created:
            _remove_failed_start(run_dir)
        raise
    try:
        for p in clean_stale_tmp(run_dir):
            log(f"removed {p}, left by an interrupted write")
        if note:
            log(f"warning: {note}")
        if not resume:
            atomic_write_json(run_dir / "run.json", spec)
        seed_everything(seed)
        hasher.checkpoint_dir = run_dir / "checkpoints"
        _train_and_evaluate(hasher, ds, run_dir, spec, tracker, ks, directions, label, group, seed, bits,
                            log_artifact, log, wandb)
    except BaseException:
        if created:
            lock.release()
            _remove_failed_start(run_dir)
        raise
    finally:
        lock.release()
    return run_dir


def _train_and_evaluate(hasher, ds, run_dir, spec, tracker, ks, directions, label, group, seed, bits,
                        log_artifact, log, wandb=None) -> None:
    with Tracker(run_dir, tracker, config=spec, name=run_dir.name, group=group or f"{label}-{ds.name}",
                 **(wandb or {})) as tr:
        for note in ds.notes:
            log(f"note: {note}")
        log(f"training {label} ({bits} bits, seed {seed}) on {ds.name}: {len(ds.split.train)} training pairs -> {run_dir}")
        hasher.fit(ds.part("train"), valid=validation_set(ds, directions=directions), tracker=tr)
        model_dir = hasher.save(run_dir / "model")
        atomic_write_json(model_dir / "featurizers.json", {k: f.to_dict() for k, f in ds.featurizers.items()})
        identity = model_identity(model_dir)
        db = ds.part("database")
        for modality in hasher.modalities:
            codes = hasher.encode_image(db.image) if modality == "image" else hasher.encode_text(db.text_dense())
            index = HammingIndex(bits).add(codes)
            index.meta = {"model": identity, "modality": modality, "split_hash": ds.split.hash}
            index.save(run_dir / f"index-{modality}.npz")
        report = write_report(hasher, ds, run_dir, ks=ks, directions=directions,
                              fingerprint=spec.get("data_fingerprint"), note=spec.get("protocol_note"),
                              database_codes=(spec.get("evaluation") or {}).get("database_codes", "per-modality"))
        tr.log_report(report, run_dir)
        if log_artifact:
            tr.artifact(f"{label}-{ds.name}-{bits}b-s{seed}", "model",
                        [model_dir] + [run_dir / f"index-{m}.npz" for m in hasher.modalities])
            if ds.root:
                tr.artifact(f"dataset-{ds.name}", "dataset", [ds.root])


def rerun(run_dir: str | os.PathLike, out: str | os.PathLike = "runs", tracker: str = "jsonl", log=print) -> Path:
    """Train again exactly what ``run_dir`` trained (method, bits, seed, resolved config,
    dataset, evaluation) into a new run folder; on the CPU the codes come out identical."""
    run_dir = Path(run_dir)
    spec = read_run_spec(run_dir, "; --from needs a run folder")
    d, ev = spec["dataset"], spec.get("evaluation") or {}
    new = train_run(spec["method"], d["name"], spec["bits"], seed=spec["seed"], config=spec["config"],
                    data_root=d.get("root"), dataset_params=d.get("params"), out=out, tracker=tracker,
                    ks=tuple(ev.get("ks", (100,))), directions=tuple(ev.get("directions", ())) or None,
                    label=spec.get("label"), group=spec.get("group"), log=log,
                    database_codes=ev.get("database_codes", "per-modality"))
    now = read_run_spec(new)
    if now["split_hash"] != spec.get("split_hash"):
        log(f"warning: the split hash changed ({spec.get('split_hash')} -> {now['split_hash']}); the data is not the same")
    elif spec.get("data_fingerprint") and now.get("data_fingerprint") != spec["data_fingerprint"]:
        log(f"warning: the data fingerprint changed ({spec['data_fingerprint']} -> {now.get('data_fingerprint')}); "
            "the features or labels are not the same")
    return new


def dataset_record(dataset: str, ds, data_root=None, params=None) -> dict:
    """run.json's ``dataset``: what reloads the data later without the environment it was found
    through -- a path dataset resolved to an absolute path, a named source with the resolved
    folder it was read from (``$CROSSMODAL_WIKI`` ...), the parameters and the protocol notes."""
    is_path = dataset not in _source_names() and Path(dataset).exists()
    root = str(Path(data_root).resolve()) if data_root else ds.root
    return {"name": str(Path(dataset).resolve()) if is_path else dataset, "kind": "path" if is_path else "source",
            "root": None if is_path else root, "params": params or {}, "display_name": ds.name, "notes": list(ds.notes)}


def _source_names() -> set:
    from crossmodal.data import SOURCES

    return set(SOURCES)


def model_selection(ds) -> str:
    """How a run chose its model, for the report."""
    n_val = len(ds.split.validation)
    if n_val and ds.data.labels is not None:
        return (f"labelled validation: {n_val} items held out of the training side, searched against the "
                f"{len(ds.split.train)} training items (never the query split)")
    why = "no validation items (validation_fraction=0)" if not n_val else "unlabelled data"
    return f"none: {why}; the method ran its fixed schedule and the last model was kept"


def selection_statement(hasher, ds) -> str:
    """How a run chose its model, for the report: the hasher's rule (and epoch) and the
    validation data it had."""
    rule = getattr(hasher, "model_selection", None) or "none"
    n_val = len(ds.split.validation)
    if n_val and ds.data.labels is not None:
        data = (f"validation split: {n_val} labelled items held out of the training side, searched against the "
                f"{len(ds.split.train)} training items (never the query split)")
    else:
        data = "no validation split (validation_fraction=0 or no labels): nothing was selected on labels"
    return f"{rule}; {data}"


def write_report(hasher, ds, run_dir: Path, ks=(100,), directions=("i2t", "t2i"), fingerprint: str | None = None,
                 database_codes: str = "per-modality", note: str | None = None, retrieval: str = "hamming"):
    """Evaluate and write ``report.md``, ``pr.png`` and, last, ``report.json`` into ``run_dir``
    (each atomically; ``report.json`` marks the folder finished). ``note`` (a protocol
    mismatch) goes into the report's meta and Markdown."""
    report = evaluate(hasher, ds, directions=directions, ks=ks, database_codes=database_codes, retrieval=retrieval)
    if fingerprint:
        report.meta["data_fingerprint"] = fingerprint
    if note:
        report.meta["protocol_note"] = note
    report.meta["model_selection"] = selection_statement(hasher, ds)
    report.meta["n_train"] = int(len(ds.split.train))
    if ds.notes:
        report.meta["notes"] = list(ds.notes)
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / "report.md", report.to_markdown())
    report.plot_pr(run_dir / "pr.png")
    report.save_json(run_dir / "report.json")
    return report


def evaluate_run(run_dir: str | os.PathLike, ks=(100,), directions=None, log=print,
                 database_codes: str | None = None, retrieval: str = "hamming",
                 data_root: str | os.PathLike | None = None):
    """Re-evaluate a run without touching its files: the report goes to a new numbered folder
    ``evaluations/eval-0001`` (``-0002`` ...) holding report.json, report.md and pr.png, written
    under a hidden name and renamed when complete. ``directions`` and ``database_codes`` default
    to the run's own. Returns ``(report, folder)``."""
    import shutil
    import tempfile

    run_dir = Path(run_dir)
    spec, hasher, ds = load_run(run_dir, data_root=data_root)
    ev = spec.get("evaluation") or {}
    directions = tuple(directions or ev.get("directions") or ("i2t", "t2i"))
    database_codes = database_codes or ev.get("database_codes", "per-modality")
    report = evaluate(hasher, ds, directions=directions, ks=ks, database_codes=database_codes, retrieval=retrieval)
    if spec.get("data_fingerprint"):
        report.meta["data_fingerprint"] = spec["data_fingerprint"]
    if spec.get("protocol_note"):
        report.meta["protocol_note"] = spec["protocol_note"]
    report.meta["model_selection"] = selection_statement(hasher, ds)
    evals = run_dir / "evaluations"
    evals.mkdir(exist_ok=True)
    for old in evals.glob(".eval-partial-*"):  # left by a killed evaluation: its process is gone
        m = re.match(r"\.eval-partial-(\d+)-", old.name)
        if m and not pid_alive(int(m.group(1))):
            shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".eval-partial-{os.getpid()}-", dir=evals))
    try:
        atomic_write_text(tmp / "report.md", report.to_markdown())
        report.plot_pr(tmp / "pr.png")
        report.save_json(tmp / "report.json")
        taken = [int(p.name[5:]) for p in evals.iterdir() if re.fullmatch(r"eval-\d{4,}", p.name)]
        n = max(taken, default=0) + 1
        while True:
            target = evals / f"eval-{n:04d}"
            if not target.exists():
                try:
                    os.rename(tmp, target)  # fails if another evaluation took the number meanwhile
                    return report, target
                except OSError:
                    if not target.exists():
                        raise
            n += 1
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            evals.rmdir()  # only when empty: the run folder is left as it was
        except OSError:
            pass
        raise


def load_run(run_dir: str | os.PathLike, data_root: str | os.PathLike | None = None):
    """``(spec, hasher, dataset)`` of a finished run folder; refuses data whose split hash or
    content fingerprint differs from the one recorded at training time. ``data_root`` points at
    a moved copy of the data: the dataset file / folder itself for a path dataset, else the
    source's folder (checked by the same split hash and fingerprint)."""
    from crossmodal.data.core import data_fingerprint

    run_dir = Path(run_dir)
    spec = read_run_spec(run_dir)
    if not (run_dir / "model" / "hasher.json").is_file():
        raise CrossmodalError(f"{run_dir}: the run has no trained model yet (unfinished?); resume it with `crossmodal train --resume {run_dir}`")
    hasher = load_hasher(run_dir / "model")
    d = spec["dataset"]
    name, root = d["name"], d.get("root")
    if data_root is not None:
        if d.get("kind") == "path" or (d.get("kind") is None and Path(name).is_absolute()):
            name = str(data_root)
        else:
            root = str(data_root)
    elif d.get("kind") == "path" and not Path(name).exists():
        raise DataError(f"{run_dir}: the run's data {name} is gone; point --data-root at its new place")
    ds = get_dataset(name, root=root, seed=spec["seed"], **d.get("params", {}))
    ds.name = d.get("display_name") or ds.name  # a moved copy keeps the name its tables use
    if ds.split.hash != spec.get("split_hash"):
        raise DataError(f"{run_dir}: the dataset's split hash is {ds.split.hash}, the run used {spec.get('split_hash')}; the data changed")
    want = spec.get("data_fingerprint")
    if want:
        got = data_fingerprint(ds.data)
        if got != want:
            raise DataError(f"{run_dir}: the dataset's features, labels or ids changed since training (fingerprint "
                            f"{got}, the run recorded {want}); use the data it was trained on, or train again")
    return spec, hasher, ds


def query_run(run_dir: str | os.PathLike, text: str | None = None, image: str | None = None, k: int = 10,
              target: str | None = None, allow_download: bool = False,
              data_root: str | os.PathLike | None = None):
    """Embed a typed sentence or an image file with the run's featurizers and search the
    other modality of the database. Returns ``(modality searched, D, I, dataset)``.

    The stored featurizer settings are read through an allow-list; a model hub is reached only
    with ``allow_download`` (``--allow-download`` on this command line)."""
    if (text is None) == (image is None):
        raise CrossmodalError("query: give exactly one of --text or --image")
    if int(k) != k or k <= 0:
        raise CrossmodalError(f"k must be a positive whole number, got {k!r}")
    run_dir = Path(run_dir)
    spec, hasher, ds = load_run(run_dir, data_root=data_root)
    feats_file = run_dir / "model" / "featurizers.json"
    try:
        feats = json.loads(feats_file.read_text(encoding="utf-8")) if feats_file.is_file() else {}
    except (OSError, ValueError) as exc:
        raise DataError(f"{feats_file}: damaged ({exc})") from None
    if not isinstance(feats, dict):
        raise DataError(f"{feats_file}: damaged (expected an object)")
    modality = "text" if text is not None else "image"
    if modality not in feats:
        raise CrossmodalError(
            f"{run_dir}: dataset {ds.name!r} ships precomputed {modality} features only, so a new {modality} "
            "cannot be embedded; train on a dataset prepared with featurizers (e.g. toy)")
    f = featurizer_from_dict(feats[modality], where=f"{feats_file}: {modality}", allow_download=bool(allow_download))
    x = embed_query(f, text if modality == "text" else image)
    codes = hasher.encode(modality, x)
    target = target or ("image" if modality == "text" else "text")
    index = HammingIndex.load(run_dir / f"index-{target}.npz",
                              expect={"model": model_identity(run_dir / "model"), "modality": target})
    if not index.meta:
        print(f"crossmodal: warning: {run_dir / f'index-{target}.npz'} records no model identity (an older "
              "crossmodal wrote it); it cannot be checked against this run's model", file=sys.stderr)
    if index.ntotal != len(ds.split.database):
        raise DataError(f"{run_dir / f'index-{target}.npz'}: {index.ntotal} codes but the database has "
                        f"{len(ds.split.database)} items; the index belongs to another run")
    D, I = index.search(codes, k)
    return target, D[0], I[0], ds


def contact_sheet(rows: list[tuple[str, np.ndarray]], path: str | os.PathLike, scale: int = 3) -> Path:
    """A PNG with one row per query: the query text, then its retrieved images."""
    from PIL import Image, ImageDraw

    h = max(im.shape[1] for _, ims in rows for im in ims) * scale if rows else 32
    label_w = 220
    width = label_w + max(len(ims) for _, ims in rows) * (h + 4)
    sheet = Image.new("RGB", (width, len(rows) * (h + 8) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (label, ims) in enumerate(rows):
        y = 4 + r * (h + 8)
        draw.text((6, y + h // 2 - 6), label[:34], fill=(0, 0, 0))
        for c, im in enumerate(ims):
            tile = Image.fromarray(np.asarray(im, dtype=np.uint8)).resize((h, h), Image.NEAREST)
            sheet.paste(tile, (label_w + c * (h + 4), y))
    import io

    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
