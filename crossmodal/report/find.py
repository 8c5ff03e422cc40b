"""Finding finished runs for a report: every folder with ``report.json`` and ``run.json`` under
the given paths, read into one :class:`RunResult` each, and the default table label of a
configuration (:func:`config_label`)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from crossmodal.errors import CrossmodalError
from crossmodal.runs.spec import RunSpec
from crossmodal.stored import read_json

IGNORED_CONFIG = {"device", "progress", "num_workers", "threads", "log_every"}
DB_CODES_DEFAULT = "per-modality"


def config_label(method: str, preset: str | None = None, config: str | None = None,
                 overrides: dict | None = None) -> str:
    """Default table label of a configuration: method, preset, config file and overrides,
    e.g. ``ugach-fast+epochs=5`` (so two configurations never share a row)."""
    label = method if preset in (None, "paper") else f"{method}-{preset}"
    if config:
        label += f"+{Path(config).stem}"
    for k, v in sorted((overrides or {}).items()):
        label += f"+{k}={v if isinstance(v, str) else json.dumps(v)}".replace(" ", "")
    return label


@dataclass
class RunResult:
    path: Path
    label: str
    method: str
    dataset: str
    bits: int
    seed: int
    split_hash: str
    results: dict
    config: dict = field(default_factory=dict)
    dataset_params: dict = field(default_factory=dict)
    database_codes: str = DB_CODES_DEFAULT
    model_selection: str | None = None

    def signature(self, config: dict | None = None) -> str:
        """What a table row holds fixed: method, ``config`` (default: the run's) without the keys
        that do not change results, dataset parameters and database codes."""
        cfg = {k: v for k, v in (self.config if config is None else config).items() if k not in IGNORED_CONFIG}
        return json.dumps({"method": self.method, "config": cfg, "dataset": self.dataset_params,
                           "codes": self.database_codes}, sort_keys=True, default=str)



def read_run(folder: Path) -> RunResult:
    """The :class:`RunResult` of one finished run folder (``run.json`` + ``report.json``)."""
    spec = RunSpec.read(folder)
    report = read_json(folder / "report.json")
    meta = report["meta"]
    return RunResult(folder, spec.label or spec.method, spec.method, meta["dataset"], int(meta["bits"]),
                     int(meta["seed"]), meta["split_hash"], report["results"], config=spec.config,
                     dataset_params=spec.dataset.get("params") or {},
                     database_codes=meta.get("database_codes") or DB_CODES_DEFAULT,
                     model_selection=meta.get("model_selection"))


def find_runs(paths: list[str | os.PathLike]) -> list[RunResult]:
    """Every finished run (a folder with ``report.json`` and ``run.json``) under ``paths``; a
    damaged one is skipped with a warning on stderr."""
    found: list[RunResult] = []
    for root in map(Path, paths):
        if not root.exists():
            raise CrossmodalError(f"{root}: no such run folder")
        reports = [root / "report.json"] if (root / "report.json").is_file() else sorted(root.rglob("report.json"))
        for rep in reports:
            if not (rep.parent / "run.json").is_file():
                continue
            try:
                found.append(read_run(rep.parent))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                print(f"crossmodal: warning: {rep.parent}: skipped, damaged run.json or report.json "
                      f"({type(exc).__name__}: {str(exc)[:80]})", file=sys.stderr)
    if not found:
        raise CrossmodalError(f"no finished runs (report.json + run.json) under {', '.join(map(str, paths))}")
    return found
