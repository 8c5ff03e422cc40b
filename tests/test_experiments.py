"""Configs, sweeps, reports, reruns and wandb (real, offline, read back from its own files)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from crossmodal.cli import main
from crossmodal.data import SOURCES
from crossmodal.errors import ConfigError, CrossmodalError
from crossmodal.methods import available_methods, get_method
from crossmodal.report import write_report
from crossmodal.config import CONFIG_DIR, load_config, preset_path
from crossmodal.runs import rerun, train_run
from crossmodal.tracking import read_wandb_offline
from crossmodal.experiments.sweep import run_sweep

TOY = {"n": 300, "n_query": 50}
UGACH_TINY = dict(hidden=32, pretrain_epochs=1, epochs=3, batch_size=64, optimizer="adamw", lr_d=1e-3, lr_g=1e-3,
                  weight_decay=1e-4, standardize="zscore", init_std=0.0, progress=False, pool_fraction=0.05)


def test_every_method_config_loads_for_every_dataset():
    for f in sorted(CONFIG_DIR.glob("*.yaml")):
        if f.name == "base.yaml":
            continue
        method = yaml.safe_load(f.read_text())["method"]
        assert method in available_methods(), f
        for ds in SOURCES:
            cfg, run = load_config(f, ds)
            get_method(method)(16, **cfg)  # an unknown key would raise here
            assert run["ks"] == [100]


def test_config_base_chain_and_dataset_overrides():
    cfg, _ = load_config(preset_path("ugach", "fast"), "wiki")
    assert cfg["hidden"] == 256 and cfg["optimizer"] == "adamw"  # wiki override over fast over paper
    paper, _ = load_config(preset_path("ugach"), "wiki")
    assert paper["hidden"] == 8192 and paper["optimizer"] == "sgd"
    with pytest.raises(ConfigError, match="no preset 'fastest' for ugach; known: paper, fast"):
        preset_path("ugach", "fastest")


def test_unknown_config_key_names_the_closest(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("base: " + str(CONFIG_DIR / "ugach.yaml") + "\nepoch: 3\n")
    cfg, _ = load_config(f, "toy")
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        get_method("ugach")(16, **cfg)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    sw = {"name": "t", "datasets": [{"name": "toy", "params": TOY}],
          "methods": [{"method": "cca-itq"}, {"method": "lsh"},
                      {"method": "ugach", "label": "broken", "overrides": {"hidden": 0}}],
          "bits": [8, 16], "seeds": [0, 1], "tracker": "jsonl"}
    (d / "t.yaml").write_text(yaml.safe_dump(sw))
    logs = []
    counts = run_sweep(d / "t.yaml", out=d / "runs", log=logs.append)
    return d, counts, logs


def test_sweep_runs_the_grid_and_records_failures(sweep_dir):
    d, counts, logs = sweep_dir
    assert counts == {"done": 8, "failed": 4, "skipped": 0, "stale": 0}
    failed = json.loads((d / "runs" / "broken-toy-8b-s0" / "failed.json").read_text())
    assert "hidden" in failed["error"]
    states = json.loads((d / "runs" / "sweep.json").read_text())["points"]
    assert sum(p["state"] == "done" for p in states) == 8


def test_sweep_skips_finished_runs_on_rerun(sweep_dir):
    d, _, _ = sweep_dir
    logs = []
    counts = run_sweep(d / "t.yaml", out=d / "runs", only=["cca-itq", "lsh"], log=logs.append)
    assert counts == {"done": 0, "failed": 0, "skipped": 8, "stale": 0}


def test_finished_run_with_another_config_is_stale_kept_and_blocks_results(tmp_path, monkeypatch):
    """A preset changed after a sweep ran: rerunning reports the finished runs STALE and keeps
    them byte for byte; reproduce refuses to write results from them."""
    from crossmodal.experiments.reproduce import reproduce
    from crossmodal.experiments.sweep import stale_runs

    sw = {"name": "s", "datasets": [{"name": "toy", "params": TOY}], "tracker": "jsonl",
          "methods": [{"method": "cca-itq", "overrides": {"reg": 1e-3}}], "bits": [8], "seeds": [0]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sw))
    run_sweep(tmp_path / "s.yaml", out=tmp_path / "runs" / "s", log=lambda *_: None)
    assert stale_runs(sw, tmp_path / "runs" / "s") == []
    report = tmp_path / "runs" / "s" / "cca-itq+reg=0.001-toy-8b-s0" / "report.json"
    before = report.read_bytes()
    sw["methods"][0]["overrides"] = {"reg": 1e-2}  # same label below: the folder name stays
    sw["methods"][0]["label"] = "cca-itq+reg=0.001"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sw))
    logs = []
    counts = run_sweep(tmp_path / "s.yaml", out=tmp_path / "runs" / "s", log=logs.append)
    assert counts["stale"] == 1 and counts["done"] == 0 and report.read_bytes() == before
    assert any("STALE" in line and "reg" in line for line in logs)
    assert stale_runs(sw, tmp_path / "runs" / "s") == [("cca-itq+reg=0.001-toy-8b-s0", ["reg"])]
    monkeypatch.setattr("crossmodal.experiments.reproduce.sweep_file", lambda name: tmp_path / "s.yaml")
    with pytest.raises(CrossmodalError, match="1 finished run.*another config.*reg.*results not written"):
        reproduce("s", runs=tmp_path / "runs", results=tmp_path / "results", log=lambda *_: None)
    assert not (tmp_path / "results").exists()


def test_report_table_is_the_mean_and_std_of_the_runs(sweep_dir, tmp_path):
    d, _, _ = sweep_dir
    table, files = write_report([d / "runs"], tmp_path / "rep", formats=("png",))
    vals = [json.loads((d / "runs" / f"cca-itq-toy-16b-s{s}" / "report.json").read_text())["results"]["t2i"]["mAP@all"]
            for s in (0, 1)]
    mean, std, n = table.stat(("toy", "t2i", "cca-itq", 16, "mAP@all"))
    assert n == 2 and mean == pytest.approx(np.mean(vals)) and std == pytest.approx(np.std(vals, ddof=1))
    md = (tmp_path / "rep" / "table.md").read_text()
    assert f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f}" in md and "| **T→I** |" in md
    rows = (tmp_path / "rep" / "table.csv").read_text().splitlines()
    assert rows[0].startswith("dataset,direction,method,bits,metric,mean,std")
    assert any(r.startswith("toy,t2i,cca-itq,16,mAP@all,") for r in rows)
    names = {f.name for f in files}
    assert {"pr-toy-i2t.png", "pr-toy-t2i.png", "map-toy.png", "pk-toy-t2i.png"} <= names
    from PIL import Image

    with Image.open(tmp_path / "rep" / "map-toy.png") as im:
        assert im.size[0] > 500


def test_report_cli(sweep_dir, tmp_path, capsys):
    d, _, _ = sweep_dir
    assert main(["report", str(d / "runs"), "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    assert "### toy: mAP@all" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "empty-nothing"), "--out", str(tmp_path / "r2")]) == 2


def test_killed_sweep_run_resumes_to_the_same_codes(tmp_path, monkeypatch):
    sw = {"name": "k", "datasets": [{"name": "toy", "params": TOY}],
          "methods": [{"method": "ugach", "label": "ugach", "overrides": UGACH_TINY}], "bits": [16], "seeds": [0]}
    (tmp_path / "k.yaml").write_text(yaml.safe_dump(sw))
    ref = run_sweep(tmp_path / "k.yaml", out=tmp_path / "ref", log=lambda *_: None)
    assert ref["done"] == 1
    import crossmodal.tracking as tracking

    orig = tracking.Tracker.log

    def dying(self, rec, step=None):
        if rec.get("epoch") == 2 and "event" not in rec:
            raise KeyboardInterrupt
        return orig(self, rec, step)

    monkeypatch.setattr(tracking.Tracker, "log", dying)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(tmp_path / "k.yaml", out=tmp_path / "b", log=lambda *_: None)
    monkeypatch.setattr(tracking.Tracker, "log", orig)
    logs = []
    run_sweep(tmp_path / "k.yaml", out=tmp_path / "b", log=logs.append)
    assert any("resuming" in m for m in logs)
    a = np.load(tmp_path / "ref" / "ugach-toy-16b-s0" / "index-image.npz")["codes"]
    b = np.load(tmp_path / "b" / "ugach-toy-16b-s0" / "index-image.npz")["codes"]
    assert np.array_equal(a, b)


def test_train_from_run_dir_reproduces_the_codes(tmp_path, capsys):
    first = train_run("ugach", "toy", 16, seed=3, config=UGACH_TINY, dataset_params=TOY, out=tmp_path, tracker="none",
                      log=lambda *_: None)
    assert main(["train", "--from", str(first), "--out", str(tmp_path / "again"), "--tracker", "none"]) == 0
    second = next((tmp_path / "again").iterdir())
    assert second != first
    for m in ("image", "text"):
        assert np.array_equal(np.load(first / f"index-{m}.npz")["codes"], np.load(second / f"index-{m}.npz")["codes"])
    a, b = (json.loads((r / "run.json").read_text()) for r in (first, second))
    assert a["config"] == b["config"] and a["split_hash"] == b["split_hash"] and b["seed"] == 3
    assert main(["train", "lsh", "--from", str(first)]) == 2
    assert "give no method" in capsys.readouterr().err


def test_run_folder_records_what_is_needed_to_rerun(tmp_path):
    run = train_run("lsh", "toy", 8, seed=2, dataset_params=TOY, out=tmp_path, tracker="jsonl", log=lambda *_: None)
    spec = json.loads((run / "run.json").read_text())
    assert spec["seed"] == 2 and spec["split_hash"] and spec["environment"]["torch"] and "commit" in spec["environment"]
    assert spec["dataset"]["params"] == TOY and spec["evaluation"]["directions"] == ["i2t", "t2i"]
    rerun(run, out=tmp_path / "r", tracker="none", log=lambda *_: None)


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    return tmp_path


def test_wandb_run_logs_config_epochs_table_image_and_artifact(offline_wandb):
    run = train_run("ugach", "toy", 16, seed=0, config=UGACH_TINY, dataset_params=TOY, out=offline_wandb / "runs",
                    tracker="wandb", group="g-test", log_artifact=True, log=lambda *_: None)
    w = read_wandb_offline(run)
    assert w["group"] == "g-test" and w["name"] == run.name
    assert w["config"]["method"] == "ugach" and w["config"]["bits"] == 16
    assert w["config"]["hidden"] == 32 and w["config"]["environment"]["torch"]  # hyper-parameters flat
    assert w["config"]["split_hash"] == json.loads((run / "run.json").read_text())["split_hash"]
    epochs = [h for h in w["history"] if "val/i2t/mAP@all" in h]
    assert len(epochs) == 4 and all("loss_d" in h for h in epochs)  # pre-training + 3 adversarial epochs
    report = json.loads((run / "report.json").read_text())
    assert w["summary"]["t2i/mAP@all"] == pytest.approx(report["results"]["t2i"]["mAP@all"])
    logged = set().union(*w["history"])
    assert {"results/_type", "pr_image/_type", "pr_curve_table/_type"} <= logged
    assert any(h.get("results/_type") == "table-file" for h in w["history"])
    assert any(h.get("pr_image/_type") == "image-file" for h in w["history"])
    assert w["charts"]["pr_curve"]["fieldSettings"] == {"x": "recall", "y": "precision", "stroke": "series"}
    assert [a["type"] for a in w["artifacts"]].count("model") == 1


def test_jsonl_and_none_trackers_never_import_wandb(tmp_path):
    code = ("import sys; from crossmodal.runs import train_run; "
            f"train_run('lsh', 'toy', 8, dataset_params={TOY!r}, out={str(tmp_path)!r}, tracker='jsonl', log=lambda *a: None); "
            f"train_run('lsh', 'toy', 8, dataset_params={TOY!r}, out={str(tmp_path)!r}, tracker='none', log=lambda *a: None); "
            "assert 'wandb' not in sys.modules, 'wandb imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert r.returncode == 0, r.stderr[-2000:]
    runs = sorted(tmp_path.iterdir())
    assert (runs[0] / "metrics.jsonl").is_file() and not (runs[1] / "metrics.jsonl").exists()
    assert not list(tmp_path.rglob("wandb"))
