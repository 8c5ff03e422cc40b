import json

import pytest

from crossmodal.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "cca-itq", "--dataset", "toy", "--bits", "16", "--out", str(out)]) == 0
    return next(out.iterdir())


def test_train_writes_a_complete_run(toy_run):
    for f in ("run.json", "report.json", "report.md", "pr.png", "metrics.jsonl", "model/hasher.json",
              "model/featurizers.json", "index-image.npz", "index-text.npz"):
        assert (toy_run / f).is_file(), f
    rep = json.loads((toy_run / "report.json").read_text())
    assert rep["meta"]["bits"] == 16 and rep["meta"]["split_hash"] and "conventions" in rep
    assert rep["results"]["t2i"]["mAP@all"] > 0.35


def test_query_by_text_and_image(toy_run, capsys, tmp_path):
    code, out, _ = _run(capsys, "query", str(toy_run), "--text", "a red circle", "-k", "5", "--sheet", str(tmp_path / "s.png"))
    assert code == 0 and out.count("red circle") >= 3 and (tmp_path / "s.png").is_file()
    from PIL import Image

    from crossmodal.data.sources.toy import make_toy

    ds = make_toy()
    Image.fromarray(ds.extras["pixels"][ds.split.query[0]]).save(tmp_path / "q.png")
    code, out, _ = _run(capsys, "query", str(toy_run), "--image", str(tmp_path / "q.png"), "-k", "3")
    assert code == 0 and len(out.strip().splitlines()) == 4


def test_evaluate_run(toy_run, capsys):
    code, out, _ = _run(capsys, "evaluate", str(toy_run), "-k", "50", "--all-directions")
    assert code == 0 and "mAP@50" in out and "I→I" in out


def test_datasets_commands(capsys, wiki_dir):
    code, out, _ = _run(capsys, "datasets", "list")
    assert code == 0 and "toy" in out and "wiki" in out
    code, out, _ = _run(capsys, "datasets", "info", "wiki", "--data-root", str(wiki_dir))
    assert code == 0 and json.loads(out)["split"]["query"] == 693


@pytest.mark.parametrize("argv,message", [
    (["train", "cca-itq", "--dataset", "nope", "--bits", "16"], "unknown dataset 'nope'"),
    (["train", "ccaitq", "--dataset", "toy", "--bits", "16"], "unknown method"),
    (["train", "cca-itq", "--dataset", "toy", "--bits", "16", "regg=1"], "did you mean 'reg'"),
    (["train", "cca-itq", "--dataset", "toy", "--bits", "0"], "bits must be in 1..1024"),
    (["train", "cca-itq", "--dataset", "toy", "--bits", "2048"], "bits must be in 1..1024"),
    (["train", "cca-itq", "--dataset", "toy", "--bits", "16", "oops"], "not key=value"),
    (["train", "cca-itq", "--dataset", "toy", "--bits", "16", "--config", "missing.yaml"], "config file not found"),
    (["train", "cca-itq", "--dataset", "wiki", "--bits", "16", "--data-root", "/nonexistent"], "no raw_features.mat"),
])
def test_bad_training_input_is_one_line_and_writes_nothing(capsys, tmp_path, argv, message):
    code, out, err = _run(capsys, *argv, "--out", str(tmp_path / "runs"))
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_query_input(capsys, toy_run, tmp_path):
    code, _, err = _run(capsys, "query", str(toy_run), "--text", "zebra", "-k", "3")
    assert code == 2 and "none of its words is in the vocabulary" in err
    code, _, err = _run(capsys, "query", str(toy_run), "--text", "red", "-k", "0")
    assert code == 2 and "k must be" in err
    code, _, err = _run(capsys, "query", str(toy_run), "--image", str(tmp_path / "none.png"))
    assert code == 2 and "not found" in err
    (tmp_path / "bad.png").write_bytes(b"garbage")
    code, _, err = _run(capsys, "query", str(toy_run), "--image", str(tmp_path / "bad.png"))
    assert code == 2 and "not a readable image" in err
    code, _, err = _run(capsys, "query", str(tmp_path), "--text", "red")
    assert code == 2 and "not a run folder" in err


def test_help_texts(capsys):
    for cmd in ("demo", "train", "evaluate", "query", "datasets"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "usage: crossmodal " + cmd in capsys.readouterr().out


def test_train_ugach_codes_from_generator_and_resume(capsys, tmp_path):
    args = ["train", "ugach", "--dataset", "toy", "--bits", "8", "--out", str(tmp_path), "codes_from=generator",
            "hidden=16", "epochs=1", "pretrain_epochs=1", "batch_size=256", "progress=false", "--tracker", "none"]
    assert main(args) == 0
    run = next(tmp_path.iterdir())
    spec = json.loads((run / "run.json").read_text())
    assert spec["config"]["codes_from"] == "generator" and spec["config"]["hidden"] == 16
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0000.pt", "epoch-0001.pt"]
    # resuming a finished run changes nothing (a finished run is immutable) and adds no folder
    assert main(args + ["--resume", str(run)]) == 0
    assert len(list(tmp_path.iterdir())) == 1
    code, _, err = _run(capsys, "train", "lsh", "--dataset", "toy", "--bits", "8", "--resume", str(run))
    assert code == 2 and "that run trained ugach" in err
