"""Shared parts of the deep reference runs: released PyTorch code (DJSRH, JDSH, DGCPN, UCCH) on
``crossmodal``'s split, scored by ``crossmodal``, beside the port trained on the same split.

Each ``METHOD_official.py`` script describes its released code with a :class:`MethodSpec`: the
repository, the list of changes its code needs (:class:`Patch`: Python 3 / current PyTorch / CPU
edits, each with its reason), the released settings per dataset, the port's preset and
overrides that match them, and ``child``: the function that trains the released code and
returns its codes. :func:`main` then, for every dataset x seed (32 bits by default):

1. exports the split with :func:`common.export_mat` (all training pairs, ``validation_fraction=0``;
   one file per distinct split: toy's items are generated from the seed);
2. copies the checkout (never modified; nothing of it enters this repository) to a work folder
   and applies the patches, each of which must match the released text exactly
   (:func:`prepare_checkout`);
3. runs the released training in a child process (this script with ``--child``), one intra-op
   thread, seeded with the run's seed; the child imports the patched modules, feeds them the
   exported split through :class:`FeatureRows` (the stand-in for the released data loaders,
   which read image files or the authors' feature files), trains, and writes the sign codes
   ``(x >= 0)`` of the query and database parts (:func:`write_codes`);
4. scores them with ``crossmodal import-codes`` (:func:`common.score_codes`) and trains the port
   with ``crossmodal train METHOD --preset paper --validation-fraction 0`` plus the overrides
   (:func:`common.train_port`), both with ``CROSSMODAL_THREADS=1``;
5. records every figure in ``experiments/results/official/deep.json`` (atomically, after each
   entry: a rerun skips what is there) and regenerates ``deep.md`` (:mod:`deep_table`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (ROOT, DATA, DatasetRef, OfficialError, Results, atomic_write, dataset_refs, deep_merge,  # noqa: E402
                    export_mat, git_commit, score_codes, train_port)

RESULTS = ROOT / "experiments" / "results" / "official"
WORK = Path("/tmp/official-deep")
PARTS = {"train": "tr", "query": "te", "database": "db"}


class SharedResults(Results):
    """The results file shared by several scripts running at once (one per method): every change
    re-reads the file under an exclusive lock (a file in :data:`WORK`, outside the repository) and
    applies itself to what is there, so no script overwrites another's entries."""

    def update(self, change: Callable[[dict], None]) -> None:
        """Apply ``change(data)`` to the file's current content, with this object's ``about``
        merged in (it only grows), and write it back, locked."""
        import fcntl

        about = self.data.get("about", {})
        WORK.mkdir(parents=True, exist_ok=True)
        with open(WORK / f"{self.path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.data = Results(self.path).data
            deep_merge(self.data.setdefault("about", {}), about)
            change(self.data)
            Results.save(self)

    def put(self, entry: dict) -> None:
        """Write ``entry`` (replacing the one with its key), with the collapse its run's report
        stated (:func:`collapse_of`) unless the entry holds one."""
        if "collapse" not in entry and entry.get("run"):
            entry = {**entry, "collapse": collapse_of(Path(entry["run"]))}
        k = self.key(entry)
        self.update(lambda data: data.__setitem__("entries", [e for e in data["entries"] if self.key(e) != k]
                                                   + [entry]))

    def save(self) -> None:
        self.update(lambda data: None)


def collapse_of(run: Path) -> dict | None:
    """``meta["collapse"]`` of the run's ``report.json`` (constant bits per code set, the
    statement; see crossmodal.retrieval.collapse): ``{}`` when the report states none, None when
    the run folder has no report (a run from before collapse detection, or gone)."""
    report = Path(run) / "report.json"
    if not report.is_file():
        return None
    return json.loads(report.read_text(encoding="utf-8"))["meta"].get("collapse", {})


@dataclass(frozen=True)
class Patch:
    """Replace ``old`` by ``new`` in ``path`` (relative to the checkout); ``count`` occurrences
    must be found (0: every occurrence, at least one). ``why`` is the reason, for the record."""

    path: str
    old: str
    new: str
    why: str
    count: int = 1


@dataclass
class MethodSpec:
    """A released code base and how to run it beside the port (see the module docstring).

    ``settings(dataset_key, n_train) -> dict`` gives the released settings the child runs with;
    ``port(dataset_key, n_train) -> dict`` the port's overrides on top of ``--preset paper``;
    ``child(work, split, settings, bits, seed) -> {"query_image": (Nq, bits) real, ...}`` trains
    the released code in ``work`` and returns real-valued outputs whose signs are the codes
    (keys ``"last__query_image"`` ... are a second set of codes, variant ``official-last``).
    ``set_epochs(settings, n) -> settings`` cuts the released run to ``n`` epochs (``--epochs``:
    the port gets ``epochs=n`` alike).
    """

    method: str
    repo: str
    patches: list[Patch]
    settings: Callable[[str, int], dict]
    port: Callable[[str, int], dict]
    child: Callable
    set_epochs: Callable[[dict, int], dict]
    notes: list[str] = field(default_factory=list)


def prepare_checkout(code: Path, work: Path, patches: list[Patch]) -> list[dict]:
    """Copy the files of the checkout ``code`` (not ``.git``) to ``work`` and apply ``patches``; a
    patch whose text is not found as often as it says is an OfficialError (the checkout is another
    version). The copy is built in a temporary sibling and moved into place; a ``work`` that already
    holds the same files (and perhaps others the code wrote) is kept as it is, so that runs side by
    side can share it. Returns the applied patches as records."""
    if not (code / ".git").exists():
        raise OfficialError(f"{code}: not a git checkout of the released code")
    work.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{work.name}-", dir=work.parent))
    try:
        new = tmp / "code"
        shutil.copytree(code, new, ignore=shutil.ignore_patterns(".git"))
        done = [_apply_patch(new, p) for p in patches]
        if not _holds(work, new):
            if work.exists():
                work.rename(tmp / "old")
            new.rename(work)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done


def _apply_patch(root: Path, p: Patch) -> dict:
    f = root / p.path
    text = f.read_text(encoding="utf-8", errors="surrogateescape")
    n = text.count(p.old)
    if (p.count and n != p.count) or n == 0:
        raise OfficialError(f"{p.path}: expected {p.count or 'some'} occurrence(s) of {p.old!r}, found {n}")
    f.write_text(text.replace(p.old, p.new), encoding="utf-8", errors="surrogateescape")
    return {"file": p.path, "old": p.old, "new": p.new, "why": p.why, "occurrences": n}


def _holds(work: Path, new: Path) -> bool:
    """Whether every file under ``new`` is in ``work`` with the same bytes (files the running code
    wrote into ``work`` beside them do not count)."""
    if not work.is_dir():
        return False
    for f in new.rglob("*"):
        mine = work / f.relative_to(new)
        if f.is_file() and not (mine.is_file() and mine.read_bytes() == f.read_bytes()):
            return False
    return True


def load_split(path: Path) -> dict:
    """The exported split: ``{"train" | "query" | "database": {"image", "text", "labels"}}``, float32."""
    from scipy.io import loadmat

    m = loadmat(str(path))
    return {part: {"image": np.asarray(m[f"I_{s}"], np.float32), "text": np.asarray(m[f"T_{s}"], np.float32),
                   "labels": np.asarray(m[f"L_{s}"], np.float32)} for part, s in PARTS.items()}


class FeatureRows:
    """Stand-in for a released data set class: item ``i`` of a part is ``(image row, text row,
    label row, i)`` (float32 tensors; DJSRH / JDSH / DGCPN order). A torch ``Dataset`` by duck typing."""

    def __init__(self, part: dict):
        import torch

        self.image = torch.from_numpy(part["image"])
        self.text = torch.from_numpy(part["text"])
        self.labels = torch.from_numpy(part["labels"])

    def __len__(self):
        return len(self.image)

    def __getitem__(self, i):
        return self.image[i], self.text[i], self.labels[i], i


def forward_rows(fn, X: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """``fn`` (a released network's forward returning the relaxed codes) over the rows of ``X``
    in eval mode and without gradients, ``chunk`` rows at a time: ``(N, bits) float32``."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(X), chunk):
            out.append(fn(torch.from_numpy(X[s:s + chunk])).float().numpy())
    return np.concatenate(out)


def write_codes(folder: Path, outputs: dict) -> dict:
    """Write ``(x >= 0)`` of each real-valued output ``(N, bits)`` as ``KEY.npy`` (uint8 0/1, the
    sign with sign(0) = +1, crossmodal's convention) into ``folder``; returns ``{key: path}``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, x in outputs.items():
        x = np.asarray(x)
        if not np.isfinite(x).all():
            raise OfficialError(f"{key}: the released code produced non-finite outputs")
        path = folder / (key.replace("/", "__") + ".npy")
        atomic_write(path, lambda tmp, x=x: np.save(tmp, (x >= 0).astype(np.uint8)))
        paths[key] = path
    return paths


def refs(args) -> dict[str, DatasetRef]:
    """The datasets whose files exist: toy (generated), wiki (its folder), UCI (the paired .mat)."""
    return {"toy": DatasetRef("toy", "toy"), **dataset_refs(args.wiki_root, args.uci)}


def export_for(ref: DatasetRef, seed: int, work: Path) -> tuple[Path, dict]:
    """The exported split of ``ref`` at ``seed`` (one file per distinct split hash)."""
    ds = ref.load(seed)
    path = work / "data" / f"{ref.key}-{ds.split.hash}.mat"
    info_path = path.with_suffix(".json")
    if not (path.is_file() and info_path.is_file()):  # the .json is written last
        info = export_mat(ref, path, seeds=(seed,))
        atomic_write(info_path, lambda tmp: tmp.write_text(json.dumps(info), encoding="utf-8"))
    return path, json.loads(info_path.read_text(encoding="utf-8"))


def run_child(script: Path, work: Path, data: Path, settings: dict, bits: int, seed: int, codes: Path,
              log: Path) -> float:
    """Run ``script --child`` (the released training) in a subprocess; returns its seconds. Its
    output goes to ``log``; a failure is an OfficialError with the log's last line."""
    cmd = [sys.executable, str(script), "--child", "--work", str(work), "--data", str(data), "--bits", str(bits),
           "--seed", str(seed), "--codes", str(codes), "--settings", json.dumps(settings)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
    if proc.returncode != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines() or ["no output"]
        raise OfficialError(f"released {script.stem} failed (exit {proc.returncode}): {lines[-1]} (log: {log})")
    return time.perf_counter() - t0


def child_main(spec: MethodSpec, argv: list[str]) -> int:
    """The child process: seed, one thread, import the patched code from ``--work``, train, write codes."""
    p = argparse.ArgumentParser()
    for name in ("--work", "--data", "--codes", "--settings"):
        p.add_argument(name, required=True)
    p.add_argument("--bits", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    a = p.parse_args(argv)
    import random

    import torch

    torch.set_num_threads(1)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    sys.path.insert(0, a.work)
    os.chdir(a.work)
    outputs = spec.child(Path(a.work), load_split(Path(a.data)), json.loads(a.settings), a.bits, a.seed)
    write_codes(Path(a.codes), outputs)
    return 0


def parse_args(spec: MethodSpec, argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=f"{spec.method}: released code ({spec.repo}) beside the port")
    p.add_argument("--code", help=f"git checkout of github.com/{spec.repo} (fetch it, check it out under /tmp)")
    p.add_argument("--datasets", nargs="+", default=["toy", "wiki", "uci"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--bits", nargs="+", type=int, default=[32])
    p.add_argument("--wiki-root", default=str(DATA / "wiki"))
    p.add_argument("--uci", default=str(DATA / "uci-handwritten" / "uci_all.mat"))
    p.add_argument("--sides", nargs="+", default=["official", "port"], choices=["official", "port"])
    p.add_argument("--epochs", type=int, default=None,
                   help="cut both sides alike to this many epochs (default: the released settings)")
    p.add_argument("--results", default=str(RESULTS / "deep.json"))
    p.add_argument("--work", default=str(WORK))
    return p.parse_args(argv)


def main(spec: MethodSpec, script: Path, argv=None) -> int:
    """Command line of a ``METHOD_official.py`` script (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if "--child" in argv:
        return child_main(spec, [a for a in argv if a != "--child"])
    args = parse_args(spec, argv)
    try:
        return run_grid(spec, script, args)
    except OfficialError as exc:
        print(f"{script.name}: {exc}", file=sys.stderr)
        return 2


def run_grid(spec: MethodSpec, script: Path, args) -> int:
    from deep_table import write_table

    os.environ["CROSSMODAL_THREADS"] = "1"
    results = SharedResults(Path(args.results))
    work = Path(args.work)
    available = refs(args)
    missing = [d for d in args.datasets if d not in available]
    if missing:
        raise OfficialError(f"no data for {', '.join(missing)} (--wiki-root / --uci)")
    code = Path(args.code) if args.code else None
    if "official" in args.sides and (code is None or not code.is_dir()):
        raise OfficialError(f"give --code, a checkout of github.com/{spec.repo}")
    patched = work / spec.method / "code"
    if "official" in args.sides:
        changes = prepare_checkout(code, patched, spec.patches)
        results.data["about"].setdefault("code", {})[spec.method] = {
            "repo": spec.repo, "commit": git_commit(code), "changes": changes, "notes": spec.notes}
        results.save()
    for dkey in args.datasets:
        ref = available[dkey]
        for seed in args.seeds:
            data, info = export_for(ref, seed, work)
            results.data["about"].setdefault("datasets", {}).setdefault(dkey, {})[info["split_hash"]] = info
            results.save()
            for bits in args.bits:
                key = dict(method=spec.method, dataset=dkey, bits=bits, seed=seed)
                if "official" in args.sides and results.get(**key, variant="official") is None:
                    run_official(spec, script, results, ref, data, info, key, patched, work, args.epochs)
                if "port" in args.sides and results.get(**key, variant="port") is None:
                    over = {**spec.port(dkey, info["n_train"]), **({"epochs": args.epochs} if args.epochs else {})}
                    figs, run, seconds = train_port(ref, spec.method, bits, seed, over, f"{spec.method}-port",
                                                    work / "runs", unified=False, preset="paper")
                    results.put({**key, "variant": "port", "figures": figs, "seconds": round(seconds, 1),
                                 "run": str(run), "preset": "paper", "overrides": over,
                                 "split_hash": info["split_hash"], "crossmodal_commit": git_commit(ROOT)})
                    print(f"{spec.method} port {dkey} s{seed}: {brief(figs)} ({seconds:.0f} s)", flush=True)
    write_table(results.path)
    return 0


def run_official(spec, script, results, ref, data, info, key, patched, work, epochs=None) -> None:
    bits, seed, dkey = key["bits"], key["seed"], key["dataset"]
    settings = spec.settings(dkey, info["n_train"])
    if epochs:
        settings = spec.set_epochs(settings, epochs)
    tag = f"{spec.method}-{dkey}-{bits}b-s{seed}"
    codes = work / spec.method / "codes" / tag
    seconds = run_child(script, patched, data, settings, bits, seed, codes, work / spec.method / f"{tag}.log")
    files = {p.stem: p for p in codes.glob("*.npy")}
    sets = {"official": {k: v for k, v in files.items() if "__" not in k},
            "official-last": {k.split("__", 1)[1]: v for k, v in files.items() if k.startswith("last__")}}
    for variant, f in sets.items():
        if not f:
            continue
        figs, run = score_codes(ref, bits, seed, f"{spec.method}-{variant}", f, work / "runs")
        results.put({**key, "variant": variant, "figures": figs, "seconds": round(seconds, 1), "run": str(run),
                     "settings": settings, "split_hash": info["split_hash"],
                     "code_commit": results.data["about"]["code"][spec.method]["commit"]})
        print(f"{spec.method} {variant} {dkey} s{seed}: {brief(figs)} ({seconds:.0f} s)", flush=True)


def brief(figs: dict) -> str:
    f = figs["per-modality"]
    return f"mAP@all I->T {f['i2t']['mAP@all']:.3f} T->I {f['t2i']['mAP@all']:.3f}"
