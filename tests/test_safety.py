"""Data safety and security: the hostile / careless user cases of the hardening issue.

Every case drives the command line (``crossmodal.cli.main`` in-process, a subprocess where a
file-size limit or a closed pipe is needed) and checks three things: the exit code, one
``crossmodal: error:`` line (no traceback), and that every file that existed before is
byte-identical afterwards (``snapshot``). Runs are trained once per module on a small toy
dataset folder (400 items) with cheap methods: cca-itq, lsh, and a 1-epoch UGACH of width 32.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from crossmodal.cli import main

ROOT = Path(__file__).resolve().parents[1]
UGACH = ["epochs=1", "hidden=32", "pretrain_epochs=1", "batch_size=128", "progress=false"]


# ------------------------------------------------------------------ helpers


def snapshot(folder: Path) -> dict:
    """``{relative path: sha256}`` of every file under ``folder``."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors exit (one line, see cli._Parser)
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str, *needles: str) -> str:
    log_line = re.compile(r"^\d\d:\d\d:\d\d crossmodal: ")  # per-epoch job-log lines (crossmodal.progress)
    lines = [ln for ln in err.strip().splitlines()
             if not ln.startswith("crossmodal: warning:") and not log_line.match(ln)]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("crossmodal: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def interrupted_copy(run: Path, dst: Path) -> Path:
    """A copy of a finished epoch-trained run as a kill before the model was saved leaves it."""
    shutil.copytree(run, dst)
    for name in ("report.json", "report.md", "pr.png", "index-image.npz", "index-text.npz"):
        (dst / name).unlink(missing_ok=True)
    shutil.rmtree(dst / "model")
    return dst


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` pixels (its data is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _subprocess(args, fsize: int | None = None, cwd=None, **kw) -> subprocess.Popen:
    """Start ``python -m crossmodal.cli ARGS`` with an optional file-size limit (writes beyond it fail
    with EFBIG, as on a full disk; SIGXFSZ is ignored so the process sees the error)."""
    def limit():
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.Popen([sys.executable, "-m", "crossmodal.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit, env=env, cwd=cwd or ROOT, **kw)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("safety")


@pytest.fixture(scope="module")
def ds_dir(base):
    from crossmodal.data import save_dataset
    from crossmodal.data.sources.toy import make_toy

    return save_dataset(make_toy(n=400, seed=3, n_query=60), base / "toy400")


@pytest.fixture(scope="module")
def cca_run(base, ds_dir):
    assert main(["train", "cca-itq", "--dataset", str(ds_dir), "--bits", "16", "--out", str(base / "runs"),
                 "--tracker", "none"]) == 0
    return next(p for p in (base / "runs").iterdir() if "cca-itq" in p.name)


@pytest.fixture(scope="module")
def ugach_run(base, ds_dir):
    out = base / "uruns"
    assert main(["train", "ugach", "--dataset", str(ds_dir), "--bits", "16", "--out", str(out), *UGACH]) == 0
    return next(out.iterdir())


def ugach_resume(run: Path):
    dataset = json.loads((run / "run.json").read_text())["dataset"]["name"]
    return ["train", "ugach", "--dataset", dataset, "--bits", "16", *UGACH, "--resume", run]


# ------------------------------------------------------------------ data loss


def _community(d: Path, n: int = 30) -> Path:
    import scipy.io

    rng = np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    labels = (rng.random((n, 4)) < 0.5).astype(np.uint8)
    labels[:, 0] |= ~labels.any(1)
    scipy.io.savemat(d / "img.mat", {"XAll": rng.random((n, 6))})
    scipy.io.savemat(d / "tags.mat", {"YAll": (rng.random((n, 5)) < 0.4).astype(float)})
    scipy.io.savemat(d / "labels.mat", {"LAll": labels})
    return d


PREP = ["--query", "2", "--train", "0", "--validation", "0", "--allow-count-mismatch"]


def test_prepare_overwrite_only_replaces_what_crossmodal_wrote(tmp_path, capsys, monkeypatch):
    parent = tmp_path / "parent"
    src = _community(parent / "src")
    (parent / "sibling").mkdir()
    (parent / "sibling" / "thesis.tex").write_text("years of work")
    (tmp_path / "notes.txt").write_text("keep me")
    before = snapshot(tmp_path)
    cases = [
        (src, "holds the source"),                 # --out == --root: would delete the source files
        (parent, "holds the source"),              # --out a parent of --root: siblings too
        (parent / "sibling", "not a dataset folder crossmodal wrote"),
        (tmp_path / "notes.txt", "is a file"),     # --out FILE --overwrite
    ]
    for out, msg in cases:
        code, _, err = cli(capsys, "datasets", "prepare", "mirflickr25k", "--root", src, "--out", out, "--overwrite", *PREP)
        assert code == 2
        one_error_line(err, msg)
    monkeypatch.chdir(parent / "sibling")
    code, _, err = cli(capsys, "datasets", "prepare", "mirflickr25k", "--root", src, "--out", ".", "--overwrite", *PREP)
    assert code == 2
    one_error_line(err, "working directory")
    assert snapshot(tmp_path) == before
    # what crossmodal wrote can be replaced
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "datasets", "prepare", "mirflickr25k", "--root", src, "--out", tmp_path / "ds", *PREP)[0] == 0
    first = snapshot(tmp_path / "ds")
    assert cli(capsys, "datasets", "prepare", "mirflickr25k", "--root", src, "--out", tmp_path / "ds", *PREP,
               "--seed", "1", "--overwrite")[0] == 0
    assert snapshot(tmp_path / "ds")["split.json"] != first["split.json"]
    assert not list(tmp_path.glob(".ds*"))
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("ds/")} == before


@pytest.mark.parametrize("change", [["--seed", "1"], ["reg=0.5"], ["--dataset", "toy"]])
def test_rejected_resume_changes_nothing(cca_run, capsys, change):
    before = snapshot(cca_run)
    argv = ["train", "cca-itq", "--dataset", cca_run.parents[1] / "toy400", "--bits", "16", "--resume", cca_run]
    if change[0] == "--dataset":
        argv[3] = "toy"
    else:
        argv += change
    code, _, err = cli(capsys, *argv)
    assert code == 2
    one_error_line(err, "that run trained cca-itq", "nothing was changed")
    assert snapshot(cca_run) == before
    # the run still evaluates on its own split
    assert json.loads((cca_run / "run.json").read_text())["seed"] == 0


def test_evaluate_writes_numbered_evaluations_and_report_reads_the_original(cca_run, capsys, tmp_path):
    before = snapshot(cca_run)
    killed = cca_run / "evaluations" / ".eval-partial-999999999-x"  # a killed evaluation's leftovers
    killed.mkdir(parents=True)
    (killed / "report.md").write_text("half")
    code, out, _ = cli(capsys, "evaluate", cca_run, "-k", "50")
    assert code == 0 and "mAP@50" in out and "eval-0001" in out
    assert not killed.exists()
    assert cli(capsys, "evaluate", cca_run, "-k", "20")[0] == 0
    after = snapshot(cca_run)
    assert {k: v for k, v in after.items() if not k.startswith("evaluations/")} == before
    assert sorted(k for k in after if k.startswith("evaluations/")) == [
        f"evaluations/eval-000{i}/{f}" for i in (1, 2) for f in ("pr.png", "report.json", "report.md")]
    rep = json.loads((cca_run / "evaluations" / "eval-0001" / "report.json").read_text())
    assert "mAP@50" in rep["results"]["i2t"] and rep["meta"]["data_fingerprint"].startswith("sha256:")
    shutil.rmtree(cca_run / "evaluations")  # keep the shared run as it was for the other tests
    code, out, _ = cli(capsys, "report", cca_run, "--out", tmp_path / "rep", "--no-plots")
    assert code == 0 and "1 runs" in out
    csv = (tmp_path / "rep" / "table.csv").read_text()
    assert "mAP@100" in csv and "mAP@50" not in csv and "mAP@20" not in csv


def test_evaluate_and_query_refuse_changed_data(tmp_path, capsys):
    from crossmodal.data import save_dataset
    from crossmodal.data.sources.toy import make_toy

    ds = save_dataset(make_toy(n=300, seed=5, n_query=40), tmp_path / "ds")
    assert main(["train", "lsh", "--dataset", str(ds), "--bits", "16", "--out", str(tmp_path / "runs"),
                 "--tracker", "none"]) == 0
    run = next((tmp_path / "runs").iterdir())
    image = np.load(ds / "image.npy")
    np.save(ds / "image.npy", image[::-1].copy())  # rows reordered, split.json (and its hash) unchanged
    before = snapshot(run)
    code, _, err = cli(capsys, "evaluate", run)
    assert code == 2
    one_error_line(err, "changed since training", "fingerprint")
    code, _, err = cli(capsys, "query", run, "--text", "a red circle")
    assert code == 2
    one_error_line(err, "fingerprint")
    assert snapshot(run) == before and not (run / "evaluations").exists()


class CountingSha256:
    """hashlib.sha256 that counts the bytes it is fed (the work a fingerprint does)."""

    fed = 0

    def __init__(self, data=b""):
        self.h = hashlib.new("sha256")
        self.update(data)

    def update(self, data):
        CountingSha256.fed += memoryview(data).nbytes
        self.h.update(data)

    def hexdigest(self):
        return self.h.hexdigest()


def test_fingerprint_cost_and_sensitivity(monkeypatch):
    """The cost is bounded by counting the bytes hashed, not by a clock: every byte of an array
    up to FINGERPRINT_FULL_BYTES once; of a larger one, at most FINGERPRINT_SAMPLE_BYTES and a
    block. A swap of two rows is caught either way."""
    from crossmodal.data import PairedData
    from crossmodal.data import data_fingerprint

    rng = np.random.default_rng(0)
    x = rng.random((20000, 1024), dtype=np.float32)  # 80 MiB
    d = PairedData(image=x, labels=(rng.random((20000, 5)) < 0.3).astype(np.uint8))
    monkeypatch.setattr(hashlib, "sha256", CountingSha256)
    CountingSha256.fed = 0
    fp = data_fingerprint(d)
    ids = len("\n".join(d.ids.tolist()).encode())
    assert x.nbytes + d.labels.nbytes + ids <= CountingSha256.fed <= x.nbytes + d.labels.nbytes + ids + 1024
    y = x.copy()
    y[[7, 19999]] = y[[19999, 7]]  # two rows swapped
    assert data_fingerprint(PairedData(image=y, labels=d.labels)) != fp
    assert data_fingerprint(PairedData(image=x.copy(), labels=d.labels)) == fp
    # the sampled path of arrays over the limit, here lowered to 16 MiB (sampling 8 MiB row blocks)
    module = sys.modules[data_fingerprint.__module__]
    monkeypatch.setattr(module, "FINGERPRINT_FULL_BYTES", 16 << 20)
    monkeypatch.setattr(module, "FINGERPRINT_SAMPLE_BYTES", 24 << 20)
    CountingSha256.fed = 0
    sampled = data_fingerprint(d)
    assert 24 << 20 <= CountingSha256.fed - d.labels.nbytes - ids <= (24 << 20) + (8 << 20) + 1024
    assert sampled != fp
    y = x.copy()
    y[[0, 1]] = y[[1, 0]]  # two rows of the first block, always sampled
    assert data_fingerprint(PairedData(image=y, labels=d.labels)) != sampled


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """Writes that would grow a file beyond ``nbytes`` fail with EFBIG, as on a full disk
    (RLIMIT_FSIZE, soft limit only, restored afterwards; SIGXFSZ ignored meanwhile)."""
    import resource
    import signal

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def test_disk_full_during_evaluate_and_training(cca_run, tmp_path, capsys):
    """An 8 KiB file-size limit: pr.png and state.npz cannot be written."""
    before = snapshot(cca_run)
    with file_size_limit(8192):
        code, _, err = cli(capsys, "evaluate", cca_run)
    assert code == 2
    one_error_line(err, "disk full")
    # no evaluations/ folder, no temporary file, the run's files byte-identical
    assert snapshot(cca_run) == before and not (cca_run / "evaluations").exists()
    with file_size_limit(8192):
        code, _, err = cli(capsys, "train", "cca-itq", "--dataset", cca_run.parents[1] / "toy400", "--bits", "16",
                           "--out", tmp_path / "runs", "--tracker", "none")
    assert code == 2
    one_error_line(err, "disk full")
    # the failed start left no run folder behind
    assert (tmp_path / "runs").is_dir() and list((tmp_path / "runs").iterdir()) == []


def test_disk_full_in_a_subprocess_during_training(ugach_run, tmp_path):
    """The same through a real process with RLIMIT_FSIZE: a checkpoint cannot be written."""
    r = _subprocess(["train", "--from", ugach_run, "--out", tmp_path / "runs", "--tracker", "none"], fsize=8192)
    out, err = r.communicate(timeout=300)
    assert r.returncode == 2, err
    one_error_line(err, "disk full")
    assert (tmp_path / "runs").is_dir() and list((tmp_path / "runs").iterdir()) == []


# ------------------------------------------------------------------ checkpoints, locks, resume


def test_truncated_checkpoint_falls_back_and_stale_tmp_is_cleaned(ugach_run, tmp_path, capsys):
    run = interrupted_copy(ugach_run, tmp_path / "run")
    newest = run / "checkpoints" / "epoch-0001.pt"
    newest.write_bytes(newest.read_bytes()[:2000])  # killed mid-write by an older crossmodal
    stale = run / "checkpoints" / ".epoch-0002.pt.tmp-999999999"
    stale.write_bytes(b"\0" * 4096)
    run_json = (run / "run.json").read_bytes()
    code, _, err = cli(capsys, *ugach_resume(run))
    assert code == 0, err
    assert "damaged or truncated checkpoint" in err and "falling back" in err
    assert not stale.exists()
    assert (run / "run.json").read_bytes() == run_json
    # resumed from epoch 0, epoch 1 trained again: the same codes as the uninterrupted run
    for m in ("image", "text"):
        with np.load(run / f"index-{m}.npz") as a, np.load(ugach_run / f"index-{m}.npz") as b:
            np.testing.assert_array_equal(a["codes"], b["codes"])


def test_resume_of_a_finished_run_changes_nothing(ugach_run, capsys):
    before = snapshot(ugach_run)
    code, out, _ = cli(capsys, *ugach_resume(ugach_run))
    assert code == 0 and "already finished" in out
    assert snapshot(ugach_run) == before


def test_lock_refuses_a_second_process_and_takes_over_a_stale_one(ugach_run, tmp_path, capsys):
    run = interrupted_copy(ugach_run, tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        (run / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid}))
        before = snapshot(run)
        code, _, err = cli(capsys, *ugach_resume(run))
        assert code == 2
        one_error_line(err, f"in use by process {holder.pid}")
        assert snapshot(run) == before
    finally:
        holder.kill()
        holder.wait()
    code, _, err = cli(capsys, *ugach_resume(run))  # the holder is gone: its lock is stale
    assert code == 0 and "stale lock" in err
    assert (run / "report.json").is_file() and not (run / ".lock").exists()


def test_checkpoint_state_round_trip_and_refusal(tmp_path):
    import torch

    from crossmodal.engine import Checkpointer

    state = {"prep": {"mean": np.arange(3, dtype=np.float32), "names": np.array(["a", "b"])},
             "gen": torch.Generator().manual_seed(1).get_state(), "score": np.float64(0.25),
             "betas": (0.9, 0.999), "history": [{"epoch": 1, "loss": 0.5}]}
    ck = Checkpointer(tmp_path)
    ck.save(1, state)
    back, skipped = ck.load_latest()
    assert skipped == [] and back["betas"] == (0.9, 0.999) and back["history"] == state["history"]
    np.testing.assert_array_equal(back["prep"]["mean"], state["prep"]["mean"])
    assert back["prep"]["names"].tolist() == ["a", "b"] and back["score"] == 0.25
    assert torch.equal(back["gen"], state["gen"])
    with pytest.raises(TypeError, match="state.rng: a Generator cannot be saved safely"):
        ck.save(2, {"rng": np.random.default_rng(0)})
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-0001.pt"]


class _Evil:
    """Unpickling this creates a marker file (what a crafted checkpoint could do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_checkpoint_never_executes(ugach_run, tmp_path, capsys):
    import torch

    marker = tmp_path / "pwned"
    probe = tmp_path / "probe.pt"
    torch.save({"x": _Evil(tmp_path / "probe-marker")}, probe)
    torch.load(probe, weights_only=False)  # the test's own check: unsafe loading would run it
    assert (tmp_path / "probe-marker").exists()

    run = interrupted_copy(ugach_run, tmp_path / "run")
    torch.save({"epoch": 2, "nets": {}, "x": _Evil(marker)}, run / "checkpoints" / "epoch-0002.pt")
    code, _, err = cli(capsys, *ugach_resume(run))
    assert code == 0, err
    assert "holds objects other than tensors" in err and "falling back" in err
    assert cli(capsys, "evaluate", run)[0] == 0
    assert cli(capsys, "query", run, "--text", "a red circle", "-k", "3")[0] == 0
    assert not marker.exists()
    # only the crafted checkpoint: one clear error, still nothing executed
    only = interrupted_copy(ugach_run, tmp_path / "run2")
    for p in (only / "checkpoints").iterdir():
        p.unlink()
    torch.save({"x": _Evil(marker)}, only / "checkpoints" / "epoch-0001.pt")
    code, _, err = cli(capsys, *ugach_resume(only))
    assert code == 2
    one_error_line(err, "no readable checkpoint")
    assert not marker.exists()


# ------------------------------------------------------------------ security


def test_stored_featurizer_settings_are_allow_listed(cca_run, tmp_path, capsys, monkeypatch):
    import crossmodal.features as features

    run = tmp_path / "run"
    shutil.copytree(cca_run, run)
    calls = []

    def fake_hf(**kw):
        calls.append(kw)
        from crossmodal.errors import DataError

        raise DataError("fake hub model not in the cache")

    monkeypatch.setitem(features.KINDS, "hf-text", fake_hf)
    feats_file = run / "model" / "featurizers.json"
    feats = json.loads(feats_file.read_text())
    feats["text"] = {"kind": "hf-text", "model": "org/model", "allow_download": True}
    feats_file.write_text(json.dumps(feats))
    before = snapshot(run)
    code, _, err = cli(capsys, "query", run, "--text", "a red circle")
    assert code == 2
    one_error_line(err, "'allow_download' is not a stored setting")
    assert calls == []
    feats["text"] = {"kind": "hf-text", "model": "org/model"}
    feats_file.write_text(json.dumps(feats))
    assert cli(capsys, "query", run, "--text", "a red circle")[0] == 2
    assert calls[-1]["allow_download"] is False  # no network without the flag on this command line
    assert cli(capsys, "query", run, "--text", "a red circle", "--allow-download")[0] == 2
    assert calls[-1]["allow_download"] is True
    assert {k: v for k, v in snapshot(run).items() if k != "model/featurizers.json"} == \
        {k: v for k, v in before.items() if k != "model/featurizers.json"}


@pytest.mark.parametrize("side", [20000, 13000])
def test_huge_query_image_is_refused(cca_run, tmp_path, capsys, side):
    png = _png_header(tmp_path / "huge.png", side, side)
    code, _, err = cli(capsys, "query", cca_run, "--image", png)
    assert code == 2
    one_error_line(err, "pixel limit")


# ------------------------------------------------------------------ wrong results accepted silently


@pytest.mark.parametrize("argv,msg", [
    (["ugach", "epochs=-1"], "epochs must be in [0, inf), got -1"),
    (["ugach", "lr_d=nan"], "not a finite number"),
    (["cca-itq", "reg=inf"], "not a finite number"),
])
def test_bad_numbers_are_refused_before_anything_is_written(tmp_path, capsys, argv, msg):
    code, _, err = cli(capsys, "train", argv[0], "--dataset", "toy", "--bits", "8", *argv[1:], "--out", tmp_path / "runs")
    assert code == 2
    one_error_line(err, msg)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_all_zero_labels_are_refused(tmp_path, capsys):
    from crossmodal.data import save_dataset
    from crossmodal.data.sources.toy import make_toy

    ds = make_toy(n=200, seed=1, n_query=20)
    ds.data.labels[:] = 0
    folder = save_dataset(ds, tmp_path / "ds")
    code, _, err = cli(capsys, "train", "lsh", "--dataset", folder, "--bits", "8", "--out", tmp_path / "runs")
    assert code == 2
    one_error_line(err, "no query shares a label")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_index_from_another_model_is_refused(cca_run, tmp_path, capsys):
    assert main(["train", "lsh", "--dataset", str(cca_run.parents[1] / "toy400"), "--bits", "16", "--out",
                 str(tmp_path / "runs"), "--tracker", "none"]) == 0
    lsh = next((tmp_path / "runs").iterdir())
    run = tmp_path / "run"
    shutil.copytree(cca_run, run)
    shutil.copy(lsh / "index-image.npz", run / "index-image.npz")  # same bit length, another model
    code, _, err = cli(capsys, "query", run, "--text", "a red circle")
    assert code == 2
    one_error_line(err, "index was built for model")


def _tamper(folder: Path, how: str) -> None:
    if how == "duplicated train index":
        s = json.loads((folder / "split.json").read_text())
        s["train"][1] = s["train"][0]
        (folder / "split.json").write_text(json.dumps(s))
    elif how == "missing labels.npy":
        (folder / "labels.npy").unlink()
    elif how == "missing text.npz":
        (folder / "text.npz").unlink()
    elif how == "missing ids.txt":
        (folder / "ids.txt").unlink()
    elif how == "invalid split.json":
        (folder / "split.json").write_text('{"train": [1, 2')
    elif how == "string index":
        s = json.loads((folder / "split.json").read_text())
        s["query"][0] = "a"
        (folder / "split.json").write_text(json.dumps(s))
    elif how == "truncated text.npz":
        data = (folder / "text.npz").read_bytes()
        (folder / "text.npz").write_bytes(data[: len(data) // 2])
    elif how == "object-dtype array":
        np.save(folder / "labels.npy", np.array([{"x": 1}] * 3, dtype=object), allow_pickle=True)
    elif how == "damaged meta.json":
        (folder / "meta.json").write_text("{")


TAMPER = ["duplicated train index", "missing labels.npy", "missing text.npz", "missing ids.txt", "invalid split.json",
          "string index", "truncated text.npz", "object-dtype array", "damaged meta.json"]


@pytest.fixture(scope="module")
def sparse_ds(base):
    import scipy.sparse as sp

    from crossmodal.data import save_dataset
    from crossmodal.data.sources.toy import make_toy

    ds = make_toy(n=100, seed=2, n_query=10)
    ds.data.text = sp.csr_matrix(ds.data.text)
    return save_dataset(ds, base / "sparse")


@pytest.mark.parametrize("how", TAMPER)
def test_tampered_dataset_folder_is_one_line(sparse_ds, tmp_path, capsys, how):
    folder = tmp_path / "ds"
    shutil.copytree(sparse_ds, folder)
    _tamper(folder, how)
    before = snapshot(folder)
    code, _, err = cli(capsys, "datasets", "info", folder)
    assert code == 2
    one_error_line(err, str(folder))
    code, out, err = cli(capsys, "datasets", "verify", folder)
    assert code == 1 and "Traceback" not in err and "FAIL" in out
    code, _, err = cli(capsys, "train", "lsh", "--dataset", folder, "--bits", "8", "--out", tmp_path / "runs")
    assert code == 2
    one_error_line(err)
    assert snapshot(folder) == before and not (tmp_path / "runs").exists()


# ------------------------------------------------------------------ one line instead of a traceback


@pytest.mark.parametrize("damage,argv,msg", [
    ("state.npz", ["evaluate"], "state.npz"),
    ("index-image.npz", ["query", "--text", "a red circle"], "index-image.npz"),
    ("run.json", ["evaluate"], "run.json: damaged"),
    ("run.json", ["query", "--text", "red"], "run.json: damaged"),
    ("run.json", ["train", "--from"], "run.json: damaged"),
    ("hasher.json", ["evaluate"], "hasher.json"),
])
def test_damaged_run_files_are_one_line(cca_run, tmp_path, capsys, damage, argv, msg):
    run = tmp_path / "run"
    shutil.copytree(cca_run, run)
    f = next(run.rglob(damage))
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    before = snapshot(tmp_path)
    if argv[0] == "train":
        cmd = ["train", "--from", run, "--out", tmp_path / "out"]
    else:
        cmd = [argv[0], run, *argv[1:]]
    code, _, err = cli(capsys, *cmd)
    assert code == 2
    one_error_line(err, msg)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv,msg", [
    (["--seed", "-1"], "must be a whole number in 0..4294967295"),
    (["--seed", "1e20"], "must be a whole number in 0..4294967295"),
    (["--device", "nonsense"], "unknown device"),
])
def test_bad_seed_and_device(tmp_path, capsys, argv, msg):
    code, _, err = cli(capsys, "train", "ugach", "--dataset", "toy", "--bits", "8", "--out", tmp_path / "runs", *argv)
    assert code == 2
    one_error_line(err, msg)
    assert not (tmp_path / "runs").exists()


def test_device_cuda_without_cuda_leaves_no_run_folder(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    code, _, err = cli(capsys, "train", "ugach", "--dataset", "toy", "--bits", "8", "--out", tmp_path / "runs",
                       "--device", "cuda", *UGACH)
    assert code == 2
    one_error_line(err, "CUDA is not available")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_failure_after_the_start_leaves_no_run_folder(tmp_path, capsys):
    """ugach on image-only data fails inside fit, after the run folder was created."""
    code, _, err = cli(capsys, "train", "ugach", "--dataset", "digits", "--bits", "8", "--out", tmp_path / "runs", *UGACH)
    assert code == 2
    one_error_line(err, "needs paired text features")
    assert (tmp_path / "runs").is_dir() and not any((tmp_path / "runs").iterdir())


def test_out_naming_a_file(tmp_path, capsys, cca_run):
    f = tmp_path / "afile"
    f.write_text("mine")
    code, _, err = cli(capsys, "train", "lsh", "--dataset", "toy", "--bits", "8", "--out", f)
    assert code == 2
    one_error_line(err, "is a file")
    code, _, err = cli(capsys, "report", cca_run, "--out", f)
    assert code == 2
    one_error_line(err, "is a file")
    assert f.read_text() == "mine"


def test_sheet_into_a_missing_folder(cca_run, tmp_path, capsys):
    code, out, err = cli(capsys, "query", cca_run, "--text", "a red circle", "--sheet", tmp_path / "no" / "s.png")
    assert code == 2 and out == ""
    one_error_line(err, "does not exist")


def test_report_into_a_closed_pipe(cca_run, tmp_path, capsys, monkeypatch):
    class ClosedPipe:
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise ValueError("no fd")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    code = main(["report", str(cca_run), "--out", str(tmp_path / "rep"), "--no-plots"])
    err = capsys.readouterr().err
    assert code != 0
    one_error_line(err, "pipe closed")
    assert (tmp_path / "rep" / "table.md").read_text().startswith("###")


def test_report_skips_a_damaged_report_json(cca_run, tmp_path, capsys):
    shutil.copytree(cca_run, tmp_path / "runs" / "good")
    shutil.copytree(cca_run, tmp_path / "runs" / "cut")
    rep = tmp_path / "runs" / "cut" / "report.json"
    rep.write_bytes(rep.read_bytes()[: rep.stat().st_size // 2])  # what a full disk did before atomic writes
    code, out, err = cli(capsys, "report", tmp_path / "runs", "--out", tmp_path / "rep", "--no-plots")
    assert code == 0 and "1 runs" in out
    assert "Traceback" not in err and "cut: skipped, damaged run.json or report.json" in err


def test_a_key_the_method_gained_later_does_not_block_a_resume(cca_run):
    """An interrupted run recorded before its method gained a key resumes when the key is given
    its default (the behaviour the run had); another value of it is still refused."""
    from crossmodal.errors import CrossmodalError
    from crossmodal.runs import RunSpec

    spec = RunSpec.read(cca_run)
    old = RunSpec.read(cca_run)
    old.config = {k: v for k, v in old.config.items() if k != "itq_iters"}  # as if itq_iters came later
    old.check_resumable_by(spec, cca_run)
    spec.config = {**spec.config, "itq_iters": spec.config["itq_iters"] + 1}
    with pytest.raises(CrossmodalError, match=r"config itq_iters=50 \(given 51\)"):
        old.check_resumable_by(spec, cca_run)
