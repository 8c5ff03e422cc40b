"""Experiment tracking: a JSON-lines log always, wandb when asked.

``Tracker(run_dir, backend="jsonl")`` appends every logged dict to ``run_dir/metrics.jsonl``
(one JSON object a line, with ``step`` and ``time``). ``backend="wandb"`` also logs to wandb
-- offline unless the user is logged in (``WANDB_API_KEY`` or a netrc entry) or
``WANDB_MODE`` says otherwise -- with the config, per-epoch metrics, the final table and
the PR plot. ``backend="none"`` writes nothing.
"""

from __future__ import annotations

import json
import netrc
import os
import time
from pathlib import Path

from crossmodal.errors import CrossmodalError

BACKENDS = ("none", "jsonl", "wandb")


def wandb_mode() -> str:
    """The wandb mode to use: ``$WANDB_MODE`` if set, online when logged in, else offline."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    os.environ.pop("WANDB_MODE", None)  # an empty value is "unset", not a mode wandb accepts
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        rc = netrc.netrc()
        if rc.authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        pass
    return "offline"


def _jsonable(v):
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


class Tracker:
    def __init__(self, run_dir: str | os.PathLike | None, backend: str = "jsonl", config: dict | None = None,
                 project: str = "crossmodal", name: str | None = None, group: str | None = None):
        if backend not in BACKENDS:
            raise CrossmodalError(f"unknown tracker {backend!r}; use {', '.join(BACKENDS)}")
        self.backend = backend
        self.run_dir = Path(run_dir) if run_dir else None
        self._file = None
        self._wandb = None
        if backend != "none" and self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")
        if backend == "wandb":
            try:
                import wandb
            except ImportError:
                raise CrossmodalError("tracker wandb: wandb is not installed; pip install wandb, or use --tracker jsonl") from None
            mode = wandb_mode()
            try:
                self._wandb = wandb.init(project=project, name=name, group=group, config=config or {},
                                         dir=str(self.run_dir) if self.run_dir else None, mode=mode,
                                         reinit="finish_previous")
            except Exception as exc:  # wandb raises many types (network, auth, validation)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise CrossmodalError(f"tracker wandb (mode {mode}) did not start: {first}; "
                                      "use --tracker jsonl, or WANDB_MODE=offline") from None
        if config is not None:
            self.log({"event": "config", "config": config})

    def log(self, metrics: dict, step: int | None = None) -> None:
        rec = {k: _jsonable(v) for k, v in metrics.items()}
        if step is not None:
            rec["step"] = step
        rec["time"] = round(time.time(), 3)
        if self._file:
            self._file.write(json.dumps(rec) + "\n")
            self._file.flush()
        if self._wandb is not None:
            scalars = {k: v for k, v in rec.items() if isinstance(v, (int, float)) and k not in ("step", "time")}
            if scalars:
                self._wandb.log(scalars, step=step)

    def summary(self, metrics: dict) -> None:
        self.log({"event": "summary", **metrics})
        if self._wandb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float, str)):
                    self._wandb.summary[k] = v

    def table(self, name: str, columns: list[str], rows: list[list]) -> None:
        self.log({"event": "table", "name": name, "columns": columns, "rows": rows})
        if self._wandb is not None:
            import wandb

            self._wandb.log({name: wandb.Table(columns=columns, data=rows)})

    def image(self, name: str, path: str | os.PathLike) -> None:
        self.log({"event": "image", "name": name, "path": str(path)})
        if self._wandb is not None:
            import wandb

            self._wandb.log({name: wandb.Image(str(path))})

    def finish(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.finish()
