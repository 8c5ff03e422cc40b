import json

import pytest

from crossmodal.engine import Checkpointer, atomic_write_bytes, new_run_dir, resolve_device
from crossmodal.errors import CrossmodalError
from crossmodal.tracking import Tracker, wandb_mode


def test_run_dirs_never_collide(tmp_path):
    a = new_run_dir(tmp_path, "x")
    b = new_run_dir(tmp_path, "x")
    assert a != b and a.is_dir() and b.is_dir()


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "f.bin"
    atomic_write_bytes(p, b"old")
    atomic_write_bytes(p, b"new content")
    assert p.read_bytes() == b"new content"
    assert [f.name for f in tmp_path.iterdir()] == ["f.bin"]


def test_checkpointer_keeps_newest(tmp_path):
    ck = Checkpointer(tmp_path / "ck", keep=2)
    assert ck.load() is None
    for e in range(4):
        ck.save(e, {"epoch": e})
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["epoch-0002.pt", "epoch-0003.pt"]
    assert ck.load()["epoch"] == 3


def test_device_resolution():
    import torch

    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(CrossmodalError, match="CUDA is not available"):
            resolve_device("cuda")


def test_jsonl_tracker(tmp_path):
    with Tracker(tmp_path, "jsonl", config={"a": 1}) as t:
        t.log({"loss": 0.5}, step=3)
        t.summary({"mAP": 0.7})
    recs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert recs[0]["config"] == {"a": 1}
    assert recs[1]["loss"] == 0.5 and recs[1]["step"] == 3
    assert recs[2]["mAP"] == 0.7


def test_wandb_offline_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_wandb_offline_run_writes_its_files(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "")  # empty counts as unset -> offline (no login here)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    with Tracker(tmp_path, "wandb", config={"bits": 16}, name="t") as t:
        t.log({"loss": 1.5}, step=1)
        t.summary({"mAP": 0.4})
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    assert "loss" in (tmp_path / "metrics.jsonl").read_text()
