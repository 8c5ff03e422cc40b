"""The one code path of every official-code reference run: export a dataset, score returned codes.

A reference run feeds released code (MATLAB under GNU Octave, or Python) ``crossmodal``'s own data
and split, takes the codes it writes back, and scores them with ``crossmodal``'s evaluation only, so
that the released code and the port differ in the method and nothing else. This module does the
parts every such script shares, always through the public surface of ``crossmodal``:

* :class:`DatasetRef` names a dataset (a registry name with its data root, or a path) and loads it
  with ``crossmodal.data.get_dataset(..., validation_fraction=0)``: every training-side pair trains,
  as published tables do. With ``validation_fraction=0`` the split does not depend on the seed
  (checked by :func:`export_mat`).
* :func:`export_mat` writes the split to a MATLAB v5 ``.mat`` file the released code reads:
  ``I_tr (Ntr, Di)``, ``T_tr (Ntr, Dt)``, ``L_tr (Ntr, C)``, the query part ``I_te``, ``T_te``,
  ``L_te`` and the database part ``I_db``, ``T_db``, ``L_db`` (float64, rows in the order of
  ``Dataset.part(name)``; labels as ``Dataset.part(name).labels``, one-hot or multi-hot).
* :func:`score_codes` turns code files into a run folder with ``crossmodal import-codes`` and scores
  them under both database conventions where the codes allow it (``crossmodal evaluate
  --database-codes per-modality`` for an import with pair codes); :func:`train_port` trains the port
  with ``crossmodal train METHOD --validation-fraction 0`` and scores its unified codes with
  ``crossmodal evaluate --database-codes unified`` where the method has them.
* :class:`Results` is the results file: one JSON object with an ``entries`` list, rewritten
  atomically after every entry, so an interrupted grid resumes where it stopped.

Figures are read from the ``report.json`` files the commands write: ``mAP@all``, ``mAP@100`` and
``P@100`` for each direction (``i2t``, ``t2i``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
METRICS = ("mAP@all", "mAP@100", "P@100")
DIRECTIONS = ("i2t", "t2i")


class OfficialError(Exception):
    """A reference run cannot go on; the message is one line for the user."""


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as ``crossmodal`` names it: ``name`` is a registry name (then ``root`` is its
    folder) or the path of a paired ``.mat`` / dataset folder (then ``root`` is None)."""

    key: str
    name: str
    root: str | None = None

    def cli_args(self) -> list[str]:
        """``--dataset NAME [--data-root ROOT]`` for the ``crossmodal`` commands."""
        return ["--dataset", self.name] + (["--data-root", self.root] if self.root else [])

    def load(self, seed: int = 0):
        """The :class:`crossmodal.data.Dataset` with every training-side pair in training."""
        from crossmodal.data import get_dataset

        return get_dataset(self.name, root=self.root, seed=seed, validation_fraction=0)


def wiki_ref(root: str | os.PathLike) -> "DatasetRef":
    """The wiki dataset at ``root`` (its ``raw_features.mat``); an OfficialError when it is not there."""
    wiki = Path(root)
    if not (wiki / "raw_features.mat").is_file():
        raise OfficialError(f"{wiki}: no raw_features.mat (--wiki-root)")
    return DatasetRef("wiki", "wiki", str(wiki.resolve()))


def one_line_errors(name: str, run, args) -> int:
    """``run(args)``, with an OfficialError turned into one line on stderr and exit status 2."""
    try:
        return run(args)
    except OfficialError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2


def dataset_refs(wiki_root: str | None, uci: str | None) -> dict[str, DatasetRef]:
    """The datasets of the classic table whose files exist: wiki (registry name, its folder) and
    the UCI handwritten-digits pair (a paired ``.mat`` path)."""
    refs = {}
    if wiki_root and Path(wiki_root, "raw_features.mat").is_file():
        refs["wiki"] = DatasetRef("wiki", "wiki", str(Path(wiki_root).resolve()))
    if uci and Path(uci).is_file():
        refs["uci"] = DatasetRef("uci", str(Path(uci).resolve()))
    return refs


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_mat(ref: DatasetRef, path: Path, seeds=(0,)) -> dict:
    """Write ``ref``'s split to ``path`` (MATLAB v5; keys in the module docstring) and return its
    description: split hash and protocol, part sizes, feature widths.

    Every seed in ``seeds`` must give the same split (true with ``validation_fraction=0``), so one
    file serves every seed of the grid; a split that moves with the seed is an error.
    """
    from scipy.io import savemat

    ds = ref.load(seeds[0])
    for s in seeds[1:]:
        other = ref.load(s).split
        if other.hash != ds.split.hash:
            raise OfficialError(f"{ref.key}: the split depends on the seed ({ds.split.hash} vs {other.hash}); "
                                "one export cannot serve every seed")
    arrays = {}
    for part, suffix in (("train", "tr"), ("query", "te"), ("database", "db")):
        p = ds.part(part)
        arrays[f"I_{suffix}"] = np.asarray(p.image, dtype=np.float64)
        arrays[f"T_{suffix}"] = np.asarray(p.text_dense(), dtype=np.float64)
        arrays[f"L_{suffix}"] = np.asarray(p.labels, dtype=np.float64)
    atomic_write(path, lambda tmp: savemat(tmp, arrays, do_compression=False))
    return {"name": ds.name, "split_hash": ds.split.hash, "split_protocol": ds.split.protocol,
            "n_train": int(arrays["I_tr"].shape[0]), "n_query": int(arrays["I_te"].shape[0]),
            "n_database": int(arrays["I_db"].shape[0]), "image_dims": int(arrays["I_tr"].shape[1]),
            "text_dims": int(arrays["T_tr"].shape[1])}


def crossmodal(*args: str, log=None) -> str:
    """Run ``python -m crossmodal.cli ARGS`` (the interpreter and ``PYTHONPATH`` of this process)
    and return its standard output; a failure is an :class:`OfficialError` with its last line."""
    cmd = [sys.executable, "-m", "crossmodal.cli", *args]
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if log is not None:
        log(" ".join(cmd[1:]))
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise OfficialError(f"crossmodal {args[0]} failed (exit {proc.returncode}): {last}")
    return proc.stdout


def _line_path(stdout: str, prefix: str) -> Path:
    for line in reversed(stdout.splitlines()):
        if line.startswith(prefix):
            return Path(line[len(prefix):].split(" (")[0].strip())
    raise OfficialError(f"crossmodal printed no {prefix.strip()!r} line")


def figures(report_json: Path) -> dict:
    """``{direction: {metric: value}}`` of a ``report.json`` (metrics of :data:`METRICS`), plus
    the report's ``database_codes`` and ``split_hash`` under ``"meta"``."""
    rep = json.loads(Path(report_json).read_text(encoding="utf-8"))
    out = {d: {m: float(rep["results"][d][m]) for m in METRICS} for d in DIRECTIONS if d in rep["results"]}
    out["meta"] = {"database_codes": rep["meta"]["database_codes"], "split_hash": rep["meta"]["split_hash"]}
    return out


def _evaluate(run: Path, convention: str, log=None) -> dict:
    out = crossmodal("evaluate", str(run), "--database-codes", convention, log=log)
    return figures(_line_path(out, "evaluation written to ") / "report.json")


def score_codes(ref: DatasetRef, bits: int, seed: int, name: str, files: dict[str, Path | str],
                out: Path, log=None) -> tuple[dict, Path]:
    """Import code files and score them; returns ``({convention: figures}, run folder)``.

    ``files`` maps ``query_image``, ``query_text``, ``database_image``, ``database_text`` and
    optionally ``database_pair`` (one code per database pair: the unified convention) to
    ``.mat`` / ``.npy`` files (``FILE.mat:VAR`` names a variable). With pair codes the import
    reports the unified convention and ``crossmodal evaluate --database-codes per-modality``
    scores the per-modality database codes of the same run.
    """
    args = ["import-codes", *ref.cli_args(), "--bits", str(bits), "--seed", str(seed), "--name", name,
            "--validation-fraction", "0", "--out", str(out)]
    for key, path in files.items():
        args += [f"--{key.replace('_', '-')}", str(path)]
    stdout = crossmodal(*args, log=log)
    run = _line_path(stdout, "run folder: ")
    first = figures(run / "report.json")
    result = {first["meta"]["database_codes"]: first}
    if "database_pair" in files and {"database_image", "database_text"} <= set(files):
        result["per-modality"] = _evaluate(run, "per-modality", log)
    return result, run


def train_port(ref: DatasetRef, method: str, bits: int, seed: int, overrides: dict, label: str,
               out: Path, unified: bool, log=None, preset: str | None = None) -> tuple[dict, Path, float]:
    """Train the port on every training pair and score it; returns ``({convention: figures},
    run folder, training seconds)``. ``unified``: also score the unified database codes.
    ``preset``: train with ``--preset PRESET`` (the overrides apply on top of it)."""
    over = [f"{k}={json.dumps(v) if isinstance(v, (list, dict)) or v is None else v}" for k, v in overrides.items()]
    pre = ["--preset", preset] if preset else []
    t0 = time.perf_counter()
    stdout = crossmodal("train", method, *pre, *over, *ref.cli_args(), "--bits", str(bits), "--seed", str(seed),
                        "--validation-fraction", "0", "--label", label, "--out", str(out), log=log)
    seconds = time.perf_counter() - t0
    run = _line_path(stdout, "run folder: ")
    first = figures(run / "report.json")
    result = {first["meta"]["database_codes"]: first}
    if unified:
        result["unified"] = _evaluate(run, "unified", log)
    return result, run, seconds


def deep_merge(into: dict, new: dict) -> None:
    """Deep-merge ``new`` into ``into`` (dicts merged key by key, other values replaced)."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            deep_merge(into[k], v)
        else:
            into[k] = v


class Results:
    """The results file: ``{"about": {...}, "entries": [...]}``; an entry is identified by its
    ``key`` fields and replaced when written again. Every change rewrites the file atomically."""

    KEY = ("method", "dataset", "bits", "seed", "variant")

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data = {"about": {}, "entries": []}
        if self.path.is_file():
            from crossmodal.stored import read_json

            self.data = read_json(self.path, hint="a results file of benchmarks/official")
            self.data.setdefault("about", {})
            self.data.setdefault("entries", [])

    def key(self, entry: dict) -> tuple:
        return tuple(entry[k] for k in self.KEY)

    def get(self, **key) -> dict | None:
        want = tuple(key[k] for k in self.KEY)
        return next((e for e in self.data["entries"] if self.key(e) == want), None)

    def put(self, entry: dict) -> None:
        k = self.key(entry)
        self.data["entries"] = [e for e in self.data["entries"] if self.key(e) != k] + [entry]
        self.save()

    def merge(self, other: Results) -> int:
        """Take ``other``'s entries (an entry of the same key is replaced) and its ``about``
        (:func:`deep_merge`); saves once and returns the number of entries taken."""
        deep_merge(self.data["about"], other.data.get("about", {}))
        keys = {self.key(e) for e in other.data["entries"]}
        self.data["entries"] = [e for e in self.data["entries"] if self.key(e) not in keys] + other.data["entries"]
        self.save()
        return len(keys)

    def save(self) -> None:
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        atomic_write(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def git_commit(path: Path) -> str | None:
    """The commit checked out at ``path`` (a git work tree), else None."""
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def bit_agreement(official: np.ndarray, run: Path, modality: str, bits: int) -> dict | None:
    """How far a port run's database codes of one modality equal the official ones.

    ``official (N, bits)`` 0/1 (or ``(bits, N)``); the port's packed codes are read from the run
    folder's ``index-{modality}.npz`` (its database index). Each bit counts as equal up to a flip
    (a bit negated in both modalities ranks the same). Returns ``{"identical_bits": bits whose
    every item agrees, "mean_agreement": mean over bits of the agreeing share}``, or None when
    the run has no such index.
    """
    path = Path(run) / f"index-{modality}.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        mine = np.unpackbits(z["codes"], axis=1, count=bits).astype(bool)
    theirs = np.asarray(official) > 0
    if theirs.shape != mine.shape:
        theirs = theirs.T
    same = (mine == theirs).mean(axis=0)
    per_bit = np.maximum(same, 1 - same)
    return {"identical_bits": int(np.sum(per_bit == 1.0)), "mean_agreement": round(float(per_bit.mean()), 4)}
