"""Experiment tracking: a JSON-lines log always, wandb when asked.

``Tracker(run_dir, backend="jsonl")`` appends every logged dict to ``run_dir/metrics.jsonl``
(one JSON object a line, with ``step`` and ``time``). ``backend="wandb"`` also logs to wandb
-- offline unless the user is logged in (``WANDB_API_KEY`` or a netrc entry) or
``WANDB_MODE`` says otherwise -- into ``$WANDB_PROJECT`` / ``$WANDB_ENTITY`` unless given, with
the hyper-parameters flat at the top of the config (the environment under ``environment``),
per-epoch metrics, the final table, PR / P@k / NDCG@k / recall@k as native line plots and the PR
image, and artifacts (model, codes, the dataset) on request. ``backend="none"`` writes nothing.
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


ENV_KEYS = ("environment",)
RUN_KEYS = ("method", "label", "bits", "seed", "group")


def flat_config(spec: dict) -> dict:
    """The wandb config of a run: hyper-parameters flat at the top (``lr``, ``epochs``, ...),
    beside the run keys (``method``, ``label``, ``bits``, ``seed``, ``dataset``, ``split_hash``),
    the environment under its own key. A hyper-parameter whose name is a run key is kept as
    ``hp/NAME``. ``spec``: the dict of ``run.json``."""
    spec = dict(spec)
    hp = dict(spec.pop("config", None) or {})
    env = spec.pop("environment", None)
    out: dict = {}
    d = spec.pop("dataset", None)
    if isinstance(d, dict):
        out["dataset"] = d.get("name")
        for k in ("root", "params", "kind"):
            if d.get(k):
                out[f"dataset_{k}"] = d[k]
    elif d is not None:
        out["dataset"] = d
    ev = spec.pop("evaluation", None)
    if isinstance(ev, dict):
        out.update({f"eval_{k}": v for k, v in ev.items()})
    out.update(spec)
    for k, v in hp.items():
        out[f"hp/{k}" if k in out else k] = v
    if env is not None:
        out["environment"] = env
    return out



def add_wandb_arguments(p) -> None:
    """``--wandb-project/--wandb-entity/--wandb-tags/--wandb-notes`` on an argparse parser
    (defaults: $WANDB_PROJECT, $WANDB_ENTITY)."""
    p.add_argument("--wandb-project", default=None, help="wandb project (default $WANDB_PROJECT, else crossmodal)")
    p.add_argument("--wandb-entity", default=None, help="wandb entity / team (default $WANDB_ENTITY)")
    p.add_argument("--wandb-tags", default=None, help="comma-separated wandb tags, e.g. paper,ablation")
    p.add_argument("--wandb-notes", default=None, help="wandb notes of the run")


def wandb_settings(args) -> dict:
    """The :class:`Tracker` wandb settings (``project``, ``entity``, ``tags``, ``notes``) given on
    a command line parsed with :func:`add_wandb_arguments`; unset ones left out."""
    tags = [t.strip() for t in (getattr(args, "wandb_tags", None) or "").split(",") if t.strip()]
    out = {"project": getattr(args, "wandb_project", None), "entity": getattr(args, "wandb_entity", None),
           "tags": tags or None, "notes": getattr(args, "wandb_notes", None)}
    return {k: v for k, v in out.items() if v}

class Tracker:
    """Logs a run: ``metrics.jsonl`` always (unless ``backend="none"``), wandb when asked.

    wandb settings: ``project`` (default ``$WANDB_PROJECT``, else ``crossmodal``), ``entity``
    (default ``$WANDB_ENTITY``), ``tags``, ``notes``, ``job_type``. The config given is logged
    to wandb flat (:func:`flat_config`) and to the JSONL log as given.
    """

    def __init__(self, run_dir: str | os.PathLike | None, backend: str = "jsonl", config: dict | None = None,
                 project: str | None = None, name: str | None = None, group: str | None = None,
                 entity: str | None = None, tags=None, notes: str | None = None, job_type: str | None = None,
                 flat: bool = True):
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
                raise CrossmodalError("tracker wandb: wandb is not installed; pip install wandb, or use --tracker "
                                      "jsonl") from None
            mode = wandb_mode()
            project = project or os.environ.get("WANDB_PROJECT") or "crossmodal"
            entity = entity or os.environ.get("WANDB_ENTITY") or None
            cfg = flat_config(config) if (flat and config) else (config or {})
            try:
                self._wandb = wandb.init(project=project, entity=entity, name=name, group=group, config=cfg,
                                         tags=list(tags) if tags else None, notes=notes, job_type=job_type,
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

    def line_plot(self, name: str, series: dict, xname: str, yname: str, title: str | None = None) -> None:
        """One line chart: ``series = {label: (xs, ys)}``; a native wandb plot (``wandb.plot.line``
        over a table of ``series, x, y``) and a JSONL record."""
        rows = [[lab, float(x), float(y)] for lab, (xs, ys) in series.items() for x, y in zip(xs, ys)]
        self.log({"event": "line_plot", "name": name, "x": xname, "y": yname, "rows": rows})
        if self._wandb is not None:
            import wandb

            table = wandb.Table(columns=["series", xname, yname], data=rows)
            self._wandb.log({name: wandb.plot.line(table, xname, yname, stroke="series", title=title or name)})

    def log_report(self, report, run_dir: str | os.PathLike | None = None) -> None:
        """A run's evaluation: the results table, PR and P@k line plots (native wandb charts), the
        PR image, and the summary metrics ``DIRECTION/METRIC``."""
        from crossmodal.retrieval.evaluate import LABELS

        names = report.metric_names()
        self.table("results", ["direction"] + names, [[d] + [r[n] for n in names] for d, r in report.results.items()])
        curves = (("pr_curve", "recall", "precision"), ("pk_curve", "k", "precision"), ("ndcg_curve", "k", "ndcg"),
                  ("recall_curve", "k", "recall"))
        for key, xk, yk in curves:
            series = {LABELS.get(d, d): (r[key][xk], r[key][yk]) for d, r in report.results.items() if key in r}
            if series:
                self.line_plot(key, series, xk, yk, title=f"{key.split('_')[0]} ({report.meta.get('method')}, "
                                                            f"{report.meta.get('bits')} bits)")
        if run_dir is not None and (Path(run_dir) / "pr.png").is_file():
            self.image("pr_image", Path(run_dir) / "pr.png")
        self.summary({f"{d}/{n}": r[n] for d, r in report.results.items() for n in names})

    def artifact(self, name: str, kind: str, paths: list[str | os.PathLike]) -> None:
        """Log files and folders (model, codes) as a wandb artifact; recorded in the JSONL log."""
        self.log({"event": "artifact", "name": name, "type": kind, "paths": [str(p) for p in paths]})
        if self._wandb is not None:
            import wandb

            import re

            art = wandb.Artifact(re.sub(r"[^A-Za-z0-9._-]+", "_", name), type=kind)
            for p in map(Path, paths):  # immutable: finished files are not copied into a staging area
                if p.is_dir():
                    art.add_dir(str(p), name=p.name, policy="immutable")
                elif p.is_file():
                    art.add_file(str(p), policy="immutable")
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


def read_wandb_offline(run_dir: str | os.PathLike, wait: float = 60.0) -> dict:
    """What an offline wandb run recorded, read from its ``.wandb`` file (no sync, no network).

    ``run_dir``: the ``wandb/offline-run-*`` folder, or a folder holding one (a crossmodal run
    folder). Returns ``{"name", "group", "project", "entity", "tags", "notes", "job_type", "config",
    "history": [rows], "summary", "artifacts", "charts": {name: panel config of a wandb.plot chart}}``.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb")) or sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    if not files:
        raise CrossmodalError(f"{run_dir}: no offline wandb run file (run-*.wandb)")
    # wandb's writer may still be flushing just after finish() on a loaded machine: wait (up to
    # ``wait`` seconds) for the run's closing "exit" record before reading
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            last = None
            for chunk in _wandb_chunks(files[-1]):
                last = pb.Record.FromString(chunk).WhichOneof("record_type")
            if last == "exit":
                break
        except Exception:  # a half-written record: read again shortly
            pass
        time.sleep(0.2)
    out: dict = {"name": None, "group": None, "project": None, "entity": None, "tags": [], "notes": None,
                 "job_type": None, "config": {}, "history": [], "summary": {}, "artifacts": []}

    def items(msg):
        return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in msg}

    for chunk in _wandb_chunks(files[-1]):
        rec = pb.Record.FromString(chunk)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["name"], out["group"] = rec.run.display_name, rec.run.run_group
            out.update(project=rec.run.project, entity=rec.run.entity, tags=list(rec.run.tags),
                       notes=rec.run.notes, job_type=rec.run.job_type)
            out["config"].update(items(rec.run.config.update))
        elif kind == "config":
            out["config"].update(items(rec.config.update))
        elif kind == "history":
            out["history"].append(items(rec.history.item))
        elif kind == "summary":
            out["summary"].update(items(rec.summary.update))
        elif kind == "artifact":
            out["artifacts"].append({"name": rec.artifact.name, "type": rec.artifact.type})
    internal = out["config"].pop("_wandb", None) or {}
    charts = {k.split("/", 2)[2]: v for k, v in list(out["config"].items()) if k.startswith("_wandb/visualize/")}
    for k in [k for k in out["config"] if k.startswith("_wandb/")]:
        out["config"].pop(k)
    if isinstance(internal, dict):
        charts.update(internal.get("visualize") or {})
    out["charts"] = {k: (v.get("panel_config", v) if isinstance(v, dict) else v) for k, v in charts.items()}
    return out
