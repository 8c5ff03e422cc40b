"""Runs: train a method on a dataset into a fresh run folder, evaluate it, query it.

A run folder holds::

    run.json            everything needed to rerun: method, bits, seed, resolved config,
                        dataset spec, split hash, versions, commit
    metrics.jsonl       the tracker's log (config, per-epoch metrics, summary)
    checkpoints/        per-epoch checkpoints of methods that have epochs (resume)
    model/              the trained hasher (hasher.json + state.npz) and featurizers.json
    index-image.npz     Hamming index of the database's image codes
    index-text.npz      Hamming index of the database's text codes
    report.json / report.md / pr.png   the evaluation
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import yaml

from crossmodal import __version__
from crossmodal.data import get_dataset
from crossmodal.engine import new_run_dir, seed_everything
from crossmodal.errors import ConfigError, CrossmodalError, DataError
from crossmodal.features import embed_query, featurizer_from_dict
from crossmodal.methods import ValidationSet, get_method, load_hasher
from crossmodal.retrieval.codes import check_bits
from crossmodal.retrieval.evaluate import evaluate, git_commit
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


RUN_KEYS = ("ks", "tracker", "log_artifact")


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
    layers = _config_layers(p.parent / base, seen + (p.resolve(),)) if base else []
    return layers + [(p, raw)]


def load_config(path: str | os.PathLike, dataset: str) -> tuple[dict, dict]:
    """``(method config, run settings)`` from a YAML config and its ``base:`` chain.

    Each layer's top-level keys, then its ``datasets: {NAME: {...}}`` overrides for ``dataset``,
    are applied base first; ``run:`` holds run-level settings (``ks``, ``tracker``,
    ``log_artifact``); ``method`` and ``description`` are informational.
    """
    cfg: dict = {}
    run: dict = {}
    for p, raw in _config_layers(path):
        raw = dict(raw)
        per_dataset = raw.pop("datasets", {}) or {}
        raw.pop("method", None)
        raw.pop("description", None)
        layer_run = raw.pop("run", {}) or {}
        unknown = set(layer_run) - set(RUN_KEYS)
        if unknown:
            raise ConfigError(f"{p}: unknown run: key(s) {', '.join(sorted(unknown))}; known: {', '.join(RUN_KEYS)}")
        run.update(layer_run)
        cfg.update(raw)
        cfg.update(per_dataset.get(dataset, {}) or {})
    return cfg, run


def load_config_file(path: str | os.PathLike, dataset: str) -> dict:
    """The method config of :func:`load_config` (run settings dropped)."""
    return load_config(path, dataset)[0]


def preset_path(method: str, preset: str | None = None) -> Path:
    """``experiments/configs/METHOD.yaml`` (the paper settings; ``preset`` None or ``paper``)
    or ``METHOD-PRESET.yaml``."""
    p = CONFIG_DIR / (f"{method}.yaml" if preset in (None, "paper") else f"{method}-{preset}.yaml")
    if not p.is_file():
        known = ["paper"] * (CONFIG_DIR / f"{method}.yaml").is_file() + sorted(
            f.stem.split("-", 1)[1] for f in CONFIG_DIR.glob(f"{method}-*.yaml") if f.stem.split("-", 1)[0] == method)
        raise ConfigError(f"no preset {preset!r} for {method}; known: {', '.join(known) or 'none'}")
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


def environment() -> dict:
    import torch

    return {"crossmodal": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "cuda": torch.cuda.is_available(), "platform": platform.platform(),
            "commit": git_commit()}


def default_directions(hasher, ds=None) -> tuple[str, ...]:
    """I->T and T->I for cross-modal hashers on paired data, I->I for image-only hashers or data."""
    paired = ds is None or ds.data.text is not None
    return ("i2t", "t2i") if paired and set(hasher.modalities) >= {"image", "text"} else ("i2i",)


def train_run(method: str, dataset: str, bits: int, seed: int = 0, config: dict | None = None,
              data_root: str | None = None, dataset_params: dict | None = None, out: str | os.PathLike = "runs",
              tracker: str = "jsonl", resume: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None,
              ks=(100,), directions: tuple[str, ...] | None = None, label: str | None = None,
              group: str | None = None, log_artifact: bool = False, wandb: dict | None = None, log=print) -> Path:
    """Train ``method`` on ``dataset`` at ``bits``, evaluate, and return the run folder.

    The folder is new under ``out`` unless ``run_dir`` names it (sweeps) or ``resume`` points at
    an interrupted run. ``label`` names the configuration in tables (default: the method);
    ``group`` groups runs in wandb; ``log_artifact`` uploads the model, database codes and the
    dataset; ``wandb`` holds Tracker settings (``project``, ``entity``, ``tags``, ``notes``).
    """
    bits = check_bits(bits)
    cls = get_method(method)
    hasher = cls(bits, seed=seed, **dict(config or {}))  # validates the config before anything is written
    ds = get_dataset(dataset, root=data_root, seed=seed, **(dataset_params or {}))
    directions = tuple(directions or default_directions(hasher, ds))
    if resume:
        run_dir = Path(resume)
        if not (run_dir / "run.json").is_file():
            raise CrossmodalError(f"{run_dir}: not a run folder (no run.json); nothing to resume")
        prev = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if prev["method"] != cls.name or prev["bits"] != bits:
            raise CrossmodalError(f"{run_dir}: that run trained {prev['method']} at {prev['bits']} bits; "
                                  "resume it with the same method and --bits")
    elif run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = new_run_dir(out, f"{label or cls.name}-{ds.name}-{bits}b-s{seed}")
    label = label or cls.name
    spec = {
        "method": cls.name, "label": label, "bits": bits, "seed": seed, "config": hasher.config,
        "dataset": dataset_record(dataset, ds, data_root, dataset_params),
        "split_hash": ds.split.hash, "split_protocol": ds.split.protocol,
        "evaluation": {"ks": list(ks), "directions": list(directions)},
        "group": group, "environment": environment(),
    }
    (run_dir / "run.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    seed_everything(seed)
    hasher.checkpoint_dir = run_dir / "checkpoints"
    with Tracker(run_dir, tracker, config=spec, name=run_dir.name, group=group or f"{label}-{ds.name}",
                 **(wandb or {})) as tr:
        for note in ds.notes:
            log(f"note: {note}")
        log(f"training {label} ({bits} bits, seed {seed}) on {ds.name}: {len(ds.split.train)} training pairs -> {run_dir}")
        hasher.fit(ds.part("train"), valid=validation_set(ds, directions=directions), tracker=tr)
        model_dir = hasher.save(run_dir / "model")
        (model_dir / "featurizers.json").write_text(
            json.dumps({k: f.to_dict() for k, f in ds.featurizers.items()}, indent=2), encoding="utf-8")
        db = ds.part("database")
        for modality in hasher.modalities:
            codes = hasher.encode_image(db.image) if modality == "image" else hasher.encode_text(db.text_dense())
            HammingIndex(bits).add(codes).save(run_dir / f"index-{modality}.npz")
        report = write_report(hasher, ds, run_dir, ks=ks, directions=directions)
        tr.log_report(report, run_dir)
        if log_artifact:
            tr.artifact(f"{label}-{ds.name}-{bits}b-s{seed}", "model",
                        [model_dir] + [run_dir / f"index-{m}.npz" for m in hasher.modalities])
            if ds.root:
                tr.artifact(f"dataset-{ds.name}", "dataset", [ds.root])
    return run_dir


def rerun(run_dir: str | os.PathLike, out: str | os.PathLike = "runs", tracker: str = "jsonl", log=print) -> Path:
    """Train again exactly what ``run_dir`` trained (method, bits, seed, resolved config,
    dataset, evaluation) into a new run folder; on the CPU the codes come out identical."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise CrossmodalError(f"{run_dir}: not a run folder (no run.json); --from needs a run folder")
    spec = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    d, ev = spec["dataset"], spec.get("evaluation", {})
    new = train_run(spec["method"], d["name"], spec["bits"], seed=spec["seed"], config=spec["config"],
                    data_root=d.get("root"), dataset_params=d.get("params"), out=out, tracker=tracker,
                    ks=tuple(ev.get("ks", (100,))), directions=tuple(ev.get("directions", ())) or None,
                    label=spec.get("label"), group=spec.get("group"), log=log)
    now = json.loads((new / "run.json").read_text(encoding="utf-8"))
    if now["split_hash"] != spec["split_hash"]:
        log(f"warning: the split hash changed ({spec['split_hash']} -> {now['split_hash']}); the data is not the same")
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


def write_report(hasher, ds, run_dir: Path, ks=(100,), directions=("i2t", "t2i")):
    report = evaluate(hasher, ds, directions=directions, ks=ks)
    report.meta.setdefault("database_codes", "unified" if getattr(hasher, "unified_codes", False) else "per-modality")
    report.meta["model_selection"] = model_selection(ds)
    report.meta["n_train"] = int(len(ds.split.train))
    if ds.notes:
        report.meta["notes"] = list(ds.notes)
    report.save_json(run_dir / "report.json")
    (run_dir / "report.md").write_text(report.to_markdown(), encoding="utf-8")
    report.plot_pr(run_dir / "pr.png")
    return report


def load_run(run_dir: str | os.PathLike, data_root: str | os.PathLike | None = None):
    """``(spec, hasher, dataset)`` of a finished run folder. ``data_root`` points at a moved copy
    of the data: the dataset file / folder itself for a path dataset, else the source's folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise CrossmodalError(f"{run_dir}: not a run folder (no run.json)")
    spec = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
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
    if ds.split.hash != spec["split_hash"]:
        raise DataError(f"{run_dir}: the dataset's split hash is {ds.split.hash}, the run used {spec['split_hash']}; the data changed")
    return spec, hasher, ds


def query_run(run_dir: str | os.PathLike, text: str | None = None, image: str | None = None, k: int = 10,
              target: str | None = None, data_root: str | os.PathLike | None = None):
    """Embed a typed sentence or an image file with the run's featurizers and search the
    other modality of the database. Returns ``(modality searched, D, I, dataset)``."""
    if (text is None) == (image is None):
        raise CrossmodalError("query: give exactly one of --text or --image")
    if int(k) != k or k <= 0:
        raise CrossmodalError(f"k must be a positive whole number, got {k!r}")
    run_dir = Path(run_dir)
    spec, hasher, ds = load_run(run_dir, data_root=data_root)
    feats_file = run_dir / "model" / "featurizers.json"
    feats = json.loads(feats_file.read_text(encoding="utf-8")) if feats_file.is_file() else {}
    modality = "text" if text is not None else "image"
    if modality not in feats:
        raise CrossmodalError(
            f"{run_dir}: dataset {ds.name!r} ships precomputed {modality} features only, so a new {modality} "
            "cannot be embedded; train on a dataset prepared with featurizers (e.g. toy)")
    f = featurizer_from_dict(feats[modality])
    x = embed_query(f, text if modality == "text" else image)
    codes = hasher.encode(modality, x)
    target = target or ("image" if modality == "text" else "text")
    index = HammingIndex.load(run_dir / f"index-{target}.npz")
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
    sheet.save(path)
    return Path(path)
