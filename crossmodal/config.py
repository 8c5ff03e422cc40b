"""Method configs: YAML layers, presets and ``key=value`` overrides.

A config file holds a method's keys flat at the top, optional per-dataset overrides and run
settings, and may build on another file::

    base: base.yaml          # applied first (a chain: base files may have bases)
    method: ugach            # checked against the method being trained
    description: ...         # informational
    lr: 0.0001               # method keys (checked against the method's declared params)
    datasets:
      wiki: {hidden: 2048}   # applied after the top-level keys, for that dataset only
    run: {ks: [100]}         # run settings (RUN_KEYS), not method keys

Presets are the files of :data:`CONFIG_DIR` (``experiments/configs``): ``METHOD.yaml`` is preset
``paper``, ``METHOD-PRESET.yaml`` preset ``PRESET``; a file name is split on the longest
registered method name it starts with (``cca-itq-fast`` is preset ``fast`` of ``cca-itq``).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from crossmodal.errors import ConfigError, DataError, did_you_mean
from crossmodal.stored import read_json

RUN_KEYS = ("ks", "tracker", "log_artifact", "database_codes")
INFO_KEYS = ("method", "description")


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


def read_yaml(p: Path, what: str = "config keys") -> dict:
    """The mapping a YAML file holds (an empty file is ``{}``); one :class:`ConfigError` line
    for text that is not YAML or not a mapping (``what`` names what the mapping should hold)."""
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping of {what}")
    return raw


def config_layers(path: str | os.PathLike, seen: tuple = ()) -> list[tuple[Path, dict]]:
    """The file and its ``base:`` chain as ``[(path, mapping)]``, base first. A relative path
    not found here is looked up in :data:`CONFIG_DIR`; so is a ``base:`` not found beside its file."""
    p = Path(path)
    if not p.is_file() and (CONFIG_DIR / p).is_file():
        p = CONFIG_DIR / p
    if not p.is_file():
        raise ConfigError(f"{path}: config file not found")
    if p.resolve() in seen:
        raise ConfigError(f"{p}: circular base: chain")
    raw = read_yaml(p)
    base = raw.pop("base", None)
    if base and not (p.parent / base).is_file() and (CONFIG_DIR / base).is_file():
        base = CONFIG_DIR / base  # a user's config may build on the shipped base.yaml
    layers = config_layers(p.parent / base, seen + (p.resolve(),)) if base else []
    return layers + [(p, raw)]


def check_layer_keys(p: Path, where: str, keys, params) -> None:
    """Every key of one config layer is a parameter of the method; else name file, path and fix."""
    valid = [q.name for q in params]
    for key in keys:
        if key not in valid:
            raise ConfigError(f"{p.name}: {where}{key}: unknown key{did_you_mean(key, valid)}")


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
    for p, raw in config_layers(path):
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
            raise ConfigError(f"{p}: unknown run: key(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(RUN_KEYS)}")
        if cls is not None:
            check_layer_keys(p, "", raw, cls.params)
            for name, block in per_dataset.items():
                check_layer_keys(p, f"datasets.{name}.", block or {}, cls.params)
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
        known = ", ".join(presets_of(method)) or "none"
        raise ConfigError(f"no preset {preset!r} for {method}; known: {known}")
    return p


def source_names() -> set:
    """The names of the registered data sources (``toy``, ``wiki``, ...)."""
    from crossmodal.data import SOURCES

    return set(SOURCES)


def dataset_key(dataset: str) -> str:
    """The name ``datasets:`` overrides use: a registry name, or a prepared folder's source
    (its ``meta.json`` ``name``; the folder's name when that file is damaged -- loading the
    dataset reports the damage)."""
    p = Path(dataset)
    if dataset in source_names():
        return dataset
    if p.is_file() or (p.is_dir() and not (p / "meta.json").is_file()):
        return p.stem  # a paired .mat / .npz file or a feature folder: its name
    if p.is_dir() and (p / "meta.json").is_file():
        try:
            return read_json(p / "meta.json").get("name") or p.name
        except DataError:
            return p.name
    return dataset
