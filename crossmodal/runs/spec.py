"""``run.json``: what a run folder holds to be rerun, resumed, evaluated and reported.

:class:`RunSpec` is the one reader and writer of ``run.json``, for trained runs and imported
codes alike. The file is a JSON object::

    method, label, bits, seed     the method's registry key, its table label, code length, seed
    config                        the method's resolved config (every key, defaults included)
    dataset                       name (a source, or an absolute path), kind (source | path),
                                  root, params, display_name, notes: reloads the data later
    split_hash, split_protocol    the split it was trained and evaluated on
    data_fingerprint              content hash of features, labels and ids (checked on load)
    evaluation                    ks, directions, database_codes of the run's own report
    group                         wandb group (sweeps)
    provenance                    imported codes only: each file's path and SHA-256
    environment                   versions, platform, commit
    protocol_note                 when the config was meant for another split protocol

Runs written by older versions lack some keys (imported codes had no ``data_fingerprint`` or
``group``, older datasets no ``kind``); they read as ``None`` / empty and mean what they meant
then. Keys this version does not know are kept in :attr:`RunSpec.extra`.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from crossmodal.config import source_names
from crossmodal.engine import atomic_write_json
from crossmodal.errors import CrossmodalError, DataError
from crossmodal.stored import read_json

RUN_FILE = "run.json"
DEFAULT_DATABASE_CODES = "per-modality"
_ORDER = ("method", "label", "bits", "seed", "config", "dataset", "split_hash", "split_protocol",
          "data_fingerprint", "evaluation", "group", "provenance", "environment", "protocol_note")
_OPTIONAL = ("provenance", "protocol_note")  # written only when set


@dataclass
class RunSpec:
    """The contents of a run folder's ``run.json`` (see the module docstring for each key)."""

    method: str
    bits: int
    seed: int
    config: dict
    dataset: dict
    label: str | None = None
    split_hash: str | None = None
    split_protocol: str | None = None
    data_fingerprint: str | None = None
    evaluation: dict = field(default_factory=dict)
    group: str | None = None
    provenance: dict | None = None
    environment: dict = field(default_factory=dict)
    protocol_note: str | None = None
    extra: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ the evaluation settings

    @property
    def ks(self) -> tuple[int, ...]:
        """Cut-offs of the run's own report (default ``(100,)``)."""
        return tuple(self.evaluation.get("ks") or (100,))

    @property
    def directions(self) -> tuple[str, ...]:
        """Directions of the run's own report; ``()`` when it records none."""
        return tuple(self.evaluation.get("directions") or ())

    @property
    def database_codes(self) -> str:
        """The database-coding convention of the run's own report."""
        return self.evaluation.get("database_codes") or DEFAULT_DATABASE_CODES

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict:
        """The ``run.json`` object: the keys in their documented order, then any unknown ones."""
        out = {}
        for key in _ORDER:
            value = getattr(self, key)
            if key in _OPTIONAL and value is None:
                continue
            out[key] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d, where: str | os.PathLike = RUN_FILE) -> "RunSpec":
        """A spec from a ``run.json`` object; one :class:`DataError` line naming ``where`` when a
        key every run has (method, bits, seed, config, dataset) is missing or of the wrong type."""
        ok = isinstance(d, dict) and isinstance(d.get("method"), str) and isinstance(d.get("bits"), int) \
            and isinstance(d.get("seed"), int) and isinstance(d.get("config"), dict) \
            and isinstance(d.get("dataset"), dict) and isinstance(d["dataset"].get("name"), str) \
            and isinstance(d["dataset"].get("params", {}), dict)
        if not ok:
            raise DataError(f"{where}: damaged (method, bits, seed, config or dataset missing or of the wrong "
                            "type); the run folder cannot be used")
        known = {k: d[k] for k in _ORDER if k in d}
        for key in ("evaluation", "environment"):
            if not isinstance(known.get(key), dict):
                known[key] = {}
        return cls(**known, extra={k: v for k, v in d.items() if k not in _ORDER})

    @classmethod
    def read(cls, run_dir: str | os.PathLike, why: str = "") -> "RunSpec":
        """``run_dir/run.json``, checked: one clear error line when it is missing or damaged
        (``why`` is appended to the "not a run folder" line)."""
        run_dir = Path(run_dir)
        f = run_dir / RUN_FILE
        if not f.is_file():
            raise CrossmodalError(f"{run_dir}: not a run folder (no {RUN_FILE}){why}")
        return cls.from_dict(read_json(f, hint="the run folder cannot be used"), where=f)

    def write(self, run_dir: str | os.PathLike) -> Path:
        """Write ``run_dir/run.json`` atomically."""
        return atomic_write_json(Path(run_dir) / RUN_FILE, self.to_dict())

    # ------------------------------------------------------------------ resuming

    def comparable(self) -> dict:
        """What must be equal for a run to be resumed: the model, the data, the split."""
        from crossmodal.methods.training import model_config

        d = self.dataset
        return {"method": self.method, "bits": self.bits, "seed": self.seed,
                "config": model_config(json.loads(json.dumps(self.config))),
                "dataset": {"name": d.get("name"), "root": d.get("root"), "params": d.get("params") or {}},
                "split_hash": self.split_hash}

    def check_resumable_by(self, given: "RunSpec", run_dir: Path) -> None:
        """Refuse (one line, listing every difference) to resume this run with ``given``, the
        spec a resuming command would have written."""
        a, b = self.comparable(), given.comparable()
        # a key the method gained after this run started: its default is the behaviour the run had
        a["config"] = {**method_defaults(self.method, set(b["config"]) - set(a["config"])), **a["config"]}
        diffs = []
        for k in a:
            if a[k] == b[k]:
                continue
            if k == "config":
                keys = sorted(x for x in set(a[k]) | set(b[k]) if a[k].get(x) != b[k].get(x))
                diffs.append("config " + ", ".join(f"{x}={a[k].get(x)!r} (given {b[k].get(x)!r})" for x in keys[:4]))
            else:
                diffs.append(f"{k} {a[k]!r} (given {b[k]!r})")
        if self.data_fingerprint and self.data_fingerprint != given.data_fingerprint:
            diffs.append(f"data fingerprint {self.data_fingerprint} (the data now gives {given.data_fingerprint})")
        if diffs:
            raise CrossmodalError(f"{run_dir}: that run trained {self.method} at {self.bits} bits, seed {self.seed}, "
                                  f"and this command differs: {'; '.join(diffs)}; resume with the same method, "
                                  "--bits, --seed, config and dataset (nothing was changed)")


def method_defaults(method: str, keys) -> dict:
    """The declared defaults of ``method``'s ``keys`` (``{}`` for a method no longer registered)."""
    from crossmodal.methods import get_method

    try:
        defaults = get_method(method, trusted=False).defaults  # a name read from run.json
    except CrossmodalError:
        return {}
    return {k: defaults[k] for k in keys if k in defaults}


def environment() -> dict:
    """Versions (crossmodal, Python, NumPy, torch), CUDA, platform and git commit of this process."""
    import numpy as np
    import torch

    from crossmodal import __version__
    from crossmodal.retrieval.evaluate import git_commit

    return {"crossmodal": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "cuda": torch.cuda.is_available(), "platform": platform.platform(),
            "commit": git_commit()}


def dataset_record(dataset: str, ds, data_root=None, params=None) -> dict:
    """run.json's ``dataset``: what reloads the data later without the environment it was found
    through -- a path dataset resolved to an absolute path, a named source with the resolved
    folder it was read from (``$CROSSMODAL_WIKI`` ...), the parameters and the protocol notes."""
    is_path = dataset not in source_names() and Path(dataset).exists()
    root = str(Path(data_root).resolve()) if data_root else ds.root
    return {"name": str(Path(dataset).resolve()) if is_path else dataset, "kind": "path" if is_path else "source",
            "root": None if is_path else root, "params": params or {}, "display_name": ds.name,
            "notes": list(ds.notes)}
