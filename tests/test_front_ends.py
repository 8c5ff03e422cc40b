"""The runs layer and the front ends after the split into packages: one RunSpec for every
run.json (trained and imported), old run folders still used, the CLI's generic demo preset and
preset help, and the thin scripts."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from crossmodal.cli import main
from crossmodal.config import load_config_file, preset_path, presets_of
from crossmodal.errors import DataError
from crossmodal.runs import RunSpec, load_run, train_run

TOY = {"n": 300, "n_query": 50}
QUIET = dict(log=lambda *_: None)
ROOT = Path(__file__).resolve().parents[1]
TRAINED_KEYS = ["method", "label", "bits", "seed", "config", "dataset", "split_hash", "split_protocol",
                "data_fingerprint", "evaluation", "group", "environment"]


@pytest.fixture(scope="module")
def lsh_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return train_run("lsh", "toy", 8, out=out, tracker="none", **QUIET)


def run_json(run: Path) -> dict:
    return json.loads((run / "run.json").read_text(encoding="utf-8"))


def test_run_json_is_written_and_read_by_one_runspec(lsh_run):
    raw = run_json(lsh_run)
    assert list(raw) == TRAINED_KEYS
    assert list(raw["dataset"]) == ["name", "kind", "root", "params", "display_name", "notes"]
    assert raw["evaluation"] == {"ks": [100], "directions": ["i2t", "t2i"], "database_codes": "per-modality"}
    spec = RunSpec.read(lsh_run)
    assert spec.to_dict() == raw and list(spec.to_dict()) == list(raw)
    assert (spec.method, spec.bits, spec.seed, spec.label) == ("lsh", 8, 0, "lsh")
    assert spec.directions == ("i2t", "t2i") and spec.ks == (100,) and spec.database_codes == "per-modality"


def test_run_json_of_an_older_version_still_evaluates_reports_and_reruns(lsh_run, tmp_path, capsys):
    """A run.json without the keys later versions added (dataset kind / display name / notes,
    data fingerprint, group), with a key this version does not know, is still a run."""
    import shutil

    run = tmp_path / "old"
    shutil.copytree(lsh_run, run)
    raw = run_json(run)
    for key in ("data_fingerprint", "group"):
        raw.pop(key)
    for key in ("kind", "display_name", "notes"):
        raw["dataset"].pop(key)
    raw["from_the_future"] = {"x": 1}
    (run / "run.json").write_text(json.dumps(raw, indent=2), encoding="utf-8")
    spec = RunSpec.read(run)
    assert spec.data_fingerprint is None and spec.group is None and spec.extra == {"from_the_future": {"x": 1}}
    assert main(["evaluate", str(run)]) == 0
    assert (run / "evaluations" / "eval-0001" / "report.json").is_file()
    assert main(["report", str(run), "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    assert "| lsh |" in (tmp_path / "rep" / "table.md").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["train", "--from", str(run), "--out", str(tmp_path / "again"), "--tracker", "none"]) == 0
    again = next((tmp_path / "again").iterdir())
    assert run_json(again)["split_hash"] == raw["split_hash"] and run_json(again)["data_fingerprint"]


@pytest.mark.parametrize("broken,message", [
    ({"bits": "8"}, "method, bits, seed, config or dataset missing or of the wrong type"),
    ({"dataset": {"params": {}}}, "method, bits, seed, config or dataset missing or of the wrong type"),
])
def test_runspec_refuses_a_run_json_without_what_every_run_has(lsh_run, tmp_path, broken, message):
    (tmp_path / "run.json").write_text(json.dumps({**run_json(lsh_run), **broken}), encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'run.json'}: damaged ({message})")):
        RunSpec.read(tmp_path)
    (tmp_path / "run.json").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(DataError, match="not UTF-8 text"):
        RunSpec.read(tmp_path)


def test_imported_codes_write_the_run_json_of_a_trained_run(lsh_run, tmp_path, capsys):
    from crossmodal.retrieval.codes import unpack

    _, h, ds = load_run(lsh_run)
    q, db = ds.part("query"), ds.part("database")
    np.save(tmp_path / "qi.npy", unpack(h.encode_image(q.image), 8))
    np.save(tmp_path / "dt.npy", unpack(h.encode_text(db.text_dense()), 8))
    np.save(tmp_path / "short.npy", unpack(h.encode_text(db.text_dense()), 8)[:5])
    argv = ["import-codes", "--dataset", "toy", "--bits", "8", "--name", "ext", "--out", str(tmp_path / "ext"),
            "--query-image", str(tmp_path / "qi.npy")]
    assert main(argv + ["--database-text", str(tmp_path / "short.npy")]) == 2
    assert "has shape (5, 8)" in capsys.readouterr().err and not (tmp_path / "ext").exists()
    assert main(argv + ["--database-text", str(tmp_path / "dt.npy")]) == 0
    capsys.readouterr()
    ext = next((tmp_path / "ext").iterdir())
    raw = run_json(ext)
    assert list(raw) == TRAINED_KEYS[:-1] + ["provenance", "environment"]
    assert raw["method"] == "external" and raw["label"] == "ext" and raw["config"] == {}
    assert raw["dataset"] == {**run_json(lsh_run)["dataset"], "params": {}}
    assert raw["evaluation"]["directions"] == ["i2t"]
    assert raw["data_fingerprint"] == run_json(lsh_run)["data_fingerprint"]
    assert len(raw["provenance"]["imported_codes"]["query_image"]["sha256"]) == 64
    mine = json.loads((lsh_run / "report.json").read_text())["results"]["i2t"]["mAP@all"]
    theirs = json.loads((ext / "report.json").read_text())["results"]["i2t"]["mAP@all"]
    assert theirs == mine
    assert RunSpec.read(ext).to_dict() == raw


def test_demo_takes_a_methods_fast_preset_generically(monkeypatch):
    from crossmodal.cli.demo import demo_config

    assert demo_config("ugach") == load_config_file(preset_path("ugach", "fast"), "toy", "ugach")
    assert demo_config("UGACH")["epochs"] == demo_config("ugach")["epochs"]
    assert "fast" in presets_of("djsrh") and demo_config("djsrh") == load_config_file(
        preset_path("djsrh", "fast"), "toy", "djsrh")
    assert "fast" not in presets_of("lsh") and demo_config("lsh") == {}


def test_preset_help_lists_the_presets_of_the_configs_folder(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "ugach: fast" in text
    for m in ("djsrh", "ucch"):
        assert f"{m}: {', '.join(p for p in presets_of(m) if p != 'paper')}" in text


def test_codes_from_is_an_override_not_a_flag(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:  # a usage error, as every unknown option
        main(["train", "ugach", "--dataset", "toy", "--bits", "8", "--codes-from", "generator", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "unrecognized arguments: --codes-from generator" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_thin_scripts_and_module_entry_point(tmp_path):
    sw = {"name": "t", "datasets": [{"name": "toy", "params": TOY}], "methods": ["lsh"], "bits": [8]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(sw), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "experiments.run", str(tmp_path / "t.yaml"), "--dry-run",
                          "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1 of 1 grid points valid" in out.stdout and not (tmp_path / "o").exists()
    out = subprocess.run([sys.executable, "-m", "crossmodal.cli", "--version"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("crossmodal ")
