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

    def artifact(self, name: str, kind: str, paths: list[str | os.PathLike]) -> None:
        """Log files and folders (model, codes) as a wandb artifact; recorded in the JSONL log."""
        self.log({"event": "artifact", "name": name, "type": kind, "paths": [str(p) for p in paths]})
        if self._wandb is not None:
            import wandb

            art = wandb.Artifact(name, type=kind)
            for p in map(Path, paths):
                if p.is_dir():
                    art.add_dir(str(p), name=p.name)
                elif p.is_file():
                    art.add_file(str(p))
            self._wandb.log_artifact(art)

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


def _wandb_chunks(path: Path):
    """Payloads of a ``.wandb`` file: a 7-byte header (``:W&B``, magic, version), then
    LevelDB-log records (4-byte CRC, 2-byte length, 1-byte type) in 32 KiB blocks."""
    import struct

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise CrossmodalError(f"{path}: not a wandb run file")
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        room = block - pos % block
        if room < 7:
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        chunk = data[pos:pos + length]
        pos += length
        if kind == 1:
            yield chunk
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            yield buf + chunk
        elif kind == 0 and length == 0:
            pos += (block - pos % block) % block


def read_wandb_offline(run_dir: str | os.PathLike) -> dict:
    """What an offline wandb run recorded, read from its ``.wandb`` file (no sync, no network).

    ``run_dir``: the ``wandb/offline-run-*`` folder, or a folder holding one (a crossmodal run
    folder). Returns ``{"name", "group", "config", "history": [rows], "summary", "artifacts"}``.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb")) or sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    if not files:
        raise CrossmodalError(f"{run_dir}: no offline wandb run file (run-*.wandb)")
    out: dict = {"name": None, "group": None, "config": {}, "history": [], "summary": {}, "artifacts": []}

    def items(msg):
        return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in msg}

    for chunk in _wandb_chunks(files[-1]):
        rec = pb.Record.FromString(chunk)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["name"], out["group"] = rec.run.display_name, rec.run.run_group
            out["config"].update(items(rec.run.config.update))
        elif kind == "config":
            out["config"].update(items(rec.config.update))
        elif kind == "history":
            out["history"].append(items(rec.history.item))
        elif kind == "summary":
            out["summary"].update(items(rec.summary.update))
        elif kind == "artifact":
            out["artifacts"].append({"name": rec.artifact.name, "type": rec.artifact.type})
    out["config"].pop("_wandb", None)
    return out
