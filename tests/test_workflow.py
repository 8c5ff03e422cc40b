"""The researcher's workflow: any paired file in one command, protocols under control,
paper-ready tables and figures, wandb as teams use it, sweeps validated before they train."""

import json
import shutil

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import yaml

from crossmodal.cli import main
from crossmodal.data import get_dataset, load_dataset, save_dataset
from crossmodal.data import load_paired_path
from crossmodal.errors import CrossmodalError, DataError
from crossmodal.report import ResultTable, config_label, find_runs, write_report
from crossmodal.runs import load_run, train_run
from crossmodal.experiments.sweep import run_sweep

TOY = {"n": 300, "n_query": 50}
QUIET = dict(log=lambda *_: None)


def paired_arrays(n=240, classes=4, seed=0):
    """Two noisy views of ``classes`` clusters: (image (n, 12), text (n, 7), class numbers 1..C)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    onehot = np.eye(classes)[y]
    image = onehot @ rng.normal(size=(classes, 12)) * 3 + rng.normal(size=(n, 12))
    text = onehot @ rng.normal(size=(classes, 7)) * 3 + rng.normal(size=(n, 7))
    return image, text, y + 1


def run_json(run):
    return json.loads((run / "run.json").read_text())


def report_json(run):
    return json.loads((run / "report.json").read_text())


# ---------------------------------------------------------------------------------- any paired data


def test_train_cca_itq_on_the_uci_mat_file(uci_mat, tmp_path, capsys):
    assert main(["train", "cca-itq", "--dataset", str(uci_mat), "--bits", "32", "--out", str(tmp_path),
                 "--tracker", "none"]) == 0
    out = capsys.readouterr().out
    assert "P_te, P_tr not used" in out  # the third view is named, not silently dropped
    run = next(tmp_path.iterdir())
    spec, rep = run_json(run), report_json(run)
    assert spec["dataset"]["kind"] == "path" and spec["dataset"]["name"] == str(uci_mat.resolve())
    assert rep["meta"]["n_query"] == 500 and rep["meta"]["n_database"] == 1500 and rep["meta"]["n_train"] == 1350
    assert spec["split_protocol"] == "blocks"
    # two views of the same digits: far above chance (0.1 for 10 balanced classes)
    assert rep["results"]["i2t"]["mAP@all"] > 0.4 and rep["results"]["t2i"]["mAP@all"] > 0.4


def test_uci_validation_fraction_zero_trains_on_every_pair(uci_mat):
    ds = get_dataset(str(uci_mat), validation_fraction=0)
    assert len(ds.split.train) == 1500 and len(ds.split.validation) == 0
    assert np.array_equal(ds.split.train, ds.split.database) and np.array_equal(ds.split.query, np.arange(1500, 2000))
    assert ds.data.labels.shape == (2000, 10) and (ds.data.labels.sum(0) == 200).all()
    assert ds.data.meta["unused_variables"] == ["P_te", "P_tr"]


@pytest.mark.parametrize("layout", ["named", "blocks", "npz-archive", "sparse-text"])
def test_npy_folder_trains_end_to_end(tmp_path, layout):
    image, text, y = paired_arrays()
    folder = tmp_path / "feats"
    folder.mkdir()
    if layout == "blocks":
        for k, v in {"I_tr": image[:200], "T_tr": text[:200], "L_tr": y[:200], "I_te": image[200:], "T_te": text[200:],
                     "L_te": y[200:]}.items():
            np.save(folder / f"{k}.npy", v)
    elif layout == "npz-archive":
        np.savez(folder / "all.npz", XAll=image, YAll=text.T, LAll=y)  # text stored items-last
    else:
        np.save(folder / "image.npy", image)
        if layout == "sparse-text":
            sp.save_npz(folder / "text.npz", sp.csr_matrix(np.maximum(text, 0)))
        else:
            np.save(folder / "text.npy", text)
        np.save(folder / "labels.npy", y)
    run = train_run("cca-itq", str(folder), 16, seed=1, out=tmp_path / "runs", tracker="none", **QUIET)
    rep = report_json(run)
    n_query = 40 if layout == "blocks" else 24  # the test block, or 10% drawn with the seed
    assert rep["meta"]["n_query"] == n_query and rep["meta"]["n_database"] == 240 - n_query
    assert rep["results"]["i2t"]["mAP@all"] > 0.6  # 4 well separated clusters; chance is about 0.25
    if layout == "sparse-text":
        assert sp.issparse(get_dataset(str(folder)).data.text)


def test_mat_file_v73_with_random_protocol_and_extra_variable(tmp_path):
    h5py = pytest.importorskip("h5py")
    image, text, y = paired_arrays(n=100)
    with h5py.File(tmp_path / "f.mat", "w") as f:
        for k, v in {"XAll": image, "YAll": text, "LAll": y[:, None].astype(float), "extra": np.ones((100, 2))}.items():
            f.create_dataset(k, data=np.asarray(v).T)  # MATLAB v7.3 stores column-major
    ds = get_dataset(str(tmp_path / "f.mat"), seed=4, n_query=20, validation_fraction=0.25)
    assert np.allclose(ds.data.image, image) and len(ds.split.query) == 20
    assert len(ds.split.validation) == 20 and len(ds.split.train) == 60  # 25% of the 80 database items
    assert any("extra" in n for n in ds.notes)
    with pytest.raises(DataError, match="protocol 'blocks' needs train/test blocks"):
        get_dataset(str(tmp_path / "f.mat"), protocol="blocks")  # no blocks in this file, and says so
    with pytest.raises(DataError, match="unknown protocol 'fancy'.*blocks, random"):
        get_dataset(str(tmp_path / "f.mat"), protocol="fancy")


def test_prepare_mat_writes_the_canonical_folder(tmp_path, capsys):
    image, text, y = paired_arrays(n=120)
    scipy.io.savemat(tmp_path / "p.mat", {"I_tr": image[:90], "T_tr": text[:90], "L_tr": y[:90], "I_te": image[90:],
                                          "T_te": text[90:], "L_te": y[90:], "P_tr": np.ones((90, 3))})
    assert main(["datasets", "prepare", "mat", "--root", str(tmp_path / "p.mat"), "--out", str(tmp_path / "ds"),
                 "--validation-fraction", "0"]) == 0
    assert "P_tr not used" in capsys.readouterr().out
    back = load_dataset(tmp_path / "ds")
    direct = load_paired_path(tmp_path / "p.mat", validation_fraction=0)
    assert back.split.hash == direct.split.hash and len(back.split.train) == 90
    assert np.allclose(back.data.text, text.astype(np.float32)) and back.data.meta["unused_variables"] == ["P_tr"]
    assert main(["datasets", "prepare", "mat", "--root", str(tmp_path / "p.mat"), "--out", str(tmp_path / "ds")]) == 2
    with pytest.raises(DataError, match="n_query does nothing under protocol 'blocks'"):
        get_dataset(str(tmp_path / "p.mat"), n_query=10)


def test_error_messages_list_every_route(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "empty", tmp_path / "missing-thing"):
        with pytest.raises(DataError) as e:
            get_dataset(str(bad))
        assert "prepare" in str(e.value) and ".mat" in str(e.value) and ".npy" in str(e.value)
    with pytest.raises(DataError, match="no meta.json.*prepare NAME\\|mat\\|imagelist"):
        load_dataset(tmp_path / "empty")
    assert main(["datasets", "prepare", "nope", "--root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "mirflickr25k" in err and "imagelist" in err and "mat" in err


# ---------------------------------------------------------------------------------- protocols


def test_validation_fraction_is_a_key_of_every_source_and_unknown_keys_fail():
    ds = get_dataset("toy", validation_fraction=0, **TOY)
    assert len(ds.split.validation) == 0 and np.array_equal(ds.split.train, ds.split.database)
    ds = get_dataset("toy", validation_fraction=0.2, **TOY)
    assert len(ds.split.validation) == 50 and len(ds.split.train) == 200 and ds.split.protocol == "toy+vf0.2"
    ds = get_dataset("digits", validation_fraction=0)
    assert len(ds.split.validation) == 0 and len(ds.split.train) == 1797 - 500
    with pytest.raises(DataError, match="unknown dataset parameter 'n_quer'; did you mean 'n_query'"):
        get_dataset("toy", n_quer=10)
    with pytest.raises(DataError, match="validation_fraction must be in \\[0, 1\\)"):
        get_dataset("toy", validation_fraction=1.0, **TOY)


def test_wiki_validation_fraction_zero_and_a_key_it_does_not_read(wiki_dir):
    ds = get_dataset("wiki", root=wiki_dir, validation_fraction=0)
    assert len(ds.split.train) == 2173 and len(ds.split.validation) == 0
    assert get_dataset("wiki", root=wiki_dir, validation_fraction=0.1).split.train.tolist() == \
        get_dataset("wiki", root=wiki_dir).split.train.tolist()  # the same draw as the standard protocol
    with pytest.raises(DataError, match="dataset wiki: unknown dataset parameter 'n_query'"):
        get_dataset("wiki", root=wiki_dir, n_query=100)


def test_folder_with_a_fixed_split_says_so_for_another_seed(tmp_path):
    save_dataset(get_dataset("toy", **TOY), tmp_path / "ds")
    assert get_dataset(str(tmp_path / "ds"), seed=0).notes == []
    ds = get_dataset(str(tmp_path / "ds"), seed=5)
    assert ds.split.seed == 0 and "fixed split" in ds.notes[0] and "--seed 5 seeds the model only" in ds.notes[0]
    redrawn = get_dataset(str(tmp_path / "ds"), seed=5, validation_fraction=0.3)
    assert len(redrawn.split.validation) == 75 and redrawn.split.seed == 5
    with pytest.raises(DataError, match="unknown dataset parameter 'n_query'"):
        get_dataset(str(tmp_path / "ds"), n_query=3)


def test_train_with_validation_fraction_zero_says_how_the_model_was_selected(tmp_path):
    run = train_run("lsh", "toy", 8, dataset_params={**TOY, "validation_fraction": 0}, out=tmp_path, tracker="none", **QUIET)
    rep = report_json(run)
    assert rep["meta"]["n_train"] == 250
    assert rep["meta"]["model_selection"].startswith("none (closed-form or fixed iterations); no validation split")
    assert "model selection: none" in (run / "report.md").read_text()
    other = train_run("lsh", "toy", 8, dataset_params=TOY, out=tmp_path, tracker="none", **QUIET)
    assert "validation split: 25 labelled items held out" in report_json(other)["meta"]["model_selection"]


def test_run_json_is_self_contained_and_data_root_points_at_a_moved_copy(tmp_path, monkeypatch, capsys):
    image, text, y = paired_arrays(n=120)
    folder = tmp_path / "feats"
    folder.mkdir()
    for k, v in (("image", image), ("text", text), ("labels", y)):
        np.save(folder / f"{k}.npy", v)
    monkeypatch.chdir(tmp_path)
    run = train_run("cca-itq", "feats", 16, out=tmp_path / "runs", tracker="none", **QUIET)  # a relative path
    assert run_json(run)["dataset"]["name"] == str(folder.resolve())
    folder.rename(tmp_path / "moved")
    assert main(["evaluate", str(run)]) == 2
    assert "point --data-root at its new place" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data-root", str(tmp_path / "moved")]) == 0
    assert "on **feats**" in capsys.readouterr().out  # the moved copy keeps the dataset's name
    _, _, ds = load_run(run, data_root=tmp_path / "moved")
    assert ds.split.hash == run_json(run)["split_hash"]


def test_dataset_found_through_the_environment_is_recorded_resolved(wiki_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSMODAL_WIKI", str(wiki_dir))
    run = train_run("lsh", "wiki", 8, out=tmp_path, tracker="none", **QUIET)
    assert run_json(run)["dataset"]["root"] == str(wiki_dir.resolve())
    monkeypatch.delenv("CROSSMODAL_WIKI")
    spec, _, ds = load_run(run)  # found again without the environment
    assert ds.split.hash == spec.split_hash


# ---------------------------------------------------------------------------------- labels and reports


@pytest.fixture(scope="module")
def two_labels_one_seed(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    for method in ("cca-itq", "lsh"):
        assert main(["train", method, "--dataset", "toy", "--bits", "16", "--out", str(d / "runs"), "--tracker",
                     "none", "--dataset-param", "n=300", "--dataset-param", "n_query=50"]) == 0
    return d


def test_default_labels_carry_preset_and_overrides():
    assert config_label("ugach") == "ugach" and config_label("ugach", "paper") == "ugach"
    assert config_label("ugach", "fast", None, {"lr": 0.01, "epochs": 5}) == "ugach-fast+epochs=5+lr=0.01"
    assert config_label("dmuh", None, "cfg/mine.yaml", {"uncertainty": False}) == "dmuh+mine+uncertainty=false"


def test_report_of_two_labels_and_one_seed_renders_latex_without_pm(two_labels_one_seed, tmp_path):
    d = two_labels_one_seed
    table, files = write_report([d / "runs"], tmp_path / "r", methods_order=["lsh", "cca-itq"], kinds=("pk", "map"))
    tex = (tmp_path / "r" / "table.tex").read_text()
    md = (tmp_path / "r" / "table.md").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "\\begin{tabular}{lc}" in tex
    assert "\\pm" not in tex and "±" not in md and "±" not in tex
    body = tex[tex.index("I$\\to$T"):tex.index("T$\\to$I")]
    assert body.index("lsh") < body.index("cca-itq")  # the order given, not alphabetical
    assert "Database codes: per-modality" in md and "per-modality" in tex and "Model selection: none (closed-form or fixed iterations); validation split" in md
    runs = {r.label: r for r in find_runs([d / "runs"])}
    want = runs["cca-itq"].results["t2i"]["mAP@all"]
    assert f"{want:.3f}" in tex and table.stat(("toy", "t2i", "cca-itq", 16, "mAP@all"))[:3] == (want, 0.0, 1)
    names = {f.name for f in files}
    for stem in ("pk-toy-i2t", "pk-toy-t2i", "map-toy"):
        assert {f"{stem}.png", f"{stem}.pdf", f"{stem}.svg"} <= names
    assert not any(n.startswith("pr-") for n in names)  # kinds= limits the figures
    assert (tmp_path / "r" / "pk-toy-i2t.pdf").read_bytes()[:5] == b"%PDF-"


def test_report_draws_every_curve_kind(two_labels_one_seed, tmp_path):
    _, files = write_report([two_labels_one_seed / "runs"], tmp_path / "r", formats=("png",))
    assert {f.name for f in files if f.suffix == ".png"} == {f"{k}-toy-{d}.png" for k in ("pr", "pk", "ndcg", "recall")
                                                             for d in ("i2t", "t2i")} | {"map-toy.png"}


def test_pm_appears_with_two_seeds(two_labels_one_seed, tmp_path):
    d = tmp_path / "runs"
    shutil.copytree(two_labels_one_seed / "runs", d)
    train_run("lsh", "toy", 16, seed=1, dataset_params=TOY, out=d, tracker="none", label="lsh", **QUIET)
    _, files = write_report([d], tmp_path / "r", plots=False)
    md = (tmp_path / "r" / "table.md").read_text()
    vals = [report_json(r)["results"]["i2t"]["mAP@all"] for r in d.iterdir() if run_json(r)["method"] == "lsh"]
    assert f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f}" in md
    one_seed_row = md.split("| cca-itq |")[1].split("\n")[0]
    assert "±" not in one_seed_row and "(n=1)" in one_seed_row


def test_report_refuses_two_configurations_under_one_label(two_labels_one_seed, tmp_path):
    d = tmp_path / "runs"
    shutil.copytree(two_labels_one_seed / "runs", d)
    train_run("cca-itq", "toy", 16, seed=1, config={"reg": 0.5}, dataset_params=TOY, out=d, tracker="none",
              label="cca-itq", **QUIET)
    with pytest.raises(CrossmodalError, match="both carry the label 'cca-itq' but differ \\(reg: 0.0001 vs 0.5\\)"):
        write_report([d], tmp_path / "r")
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_report_counts_a_key_a_run_predates_with_its_default(two_labels_one_seed, tmp_path):
    """A run made before its method declared a key (its run.json lacks it) is the configuration
    of a newer run with that key at its default: one row, as a resume and a sweep count it."""
    d = tmp_path / "runs"
    shutil.copytree(two_labels_one_seed / "runs", d)
    old = next(r for r in d.iterdir() if run_json(r)["method"] == "cca-itq")
    spec = run_json(old)
    assert spec["config"].pop("reg") == 0.0001  # the declared default
    (old / "run.json").write_text(json.dumps(spec))
    train_run("cca-itq", "toy", 16, seed=1, dataset_params=TOY, out=d, tracker="none", label="cca-itq", **QUIET)
    write_report([d], tmp_path / "r", plots=False)
    assert "(n=1)" not in (tmp_path / "r" / "table.md").read_text().split("| cca-itq |")[1].split("\n")[0]
    train_run("cca-itq", "toy", 16, seed=2, config={"reg": 0.5}, dataset_params=TOY, out=d, tracker="none",
              label="cca-itq", **QUIET)
    with pytest.raises(CrossmodalError, match="differ \\(reg: 0.0001 vs 0.5\\)"):
        write_report([d], tmp_path / "r2")


def test_report_unknown_metric_is_an_error(two_labels_one_seed, tmp_path, capsys):
    assert main(["report", str(two_labels_one_seed / "runs"), "--out", str(tmp_path / "r"), "--metric", "mAP@50"]) == 2
    assert "unknown metric 'mAP@50'" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_mixed_database_codes_are_refused_or_marked(two_labels_one_seed, tmp_path):
    d = tmp_path / "runs"
    shutil.copytree(two_labels_one_seed / "runs", d)
    lsh = next(r for r in d.iterdir() if run_json(r)["method"] == "lsh")
    rep = report_json(lsh)
    rep["meta"]["database_codes"] = "unified"
    (lsh / "report.json").write_text(json.dumps(rep))
    with pytest.raises(CrossmodalError, match="mix database-coding conventions \\(unified: lsh"):
        write_report([d], tmp_path / "r")
    table = ResultTable(find_runs([d]), allow_mixed_codes=True)
    md, tex = table.to_markdown(), table.to_latex()
    assert "| lsh † |" in md and "† lsh: database codes unified" in md and "lsh$^\\dagger$" in tex


# ---------------------------------------------------------------------------------- wandb


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    return tmp_path


def test_wandb_run_as_teams_use_it(offline_wandb, monkeypatch, tmp_path):
    from crossmodal.tracking import read_wandb_offline

    monkeypatch.setenv("WANDB_PROJECT", "team-hashing")
    save_dataset(get_dataset("toy", **TOY), tmp_path / "toyds")
    assert main(["train", "cca-itq", "reg=0.001", "--dataset", str(tmp_path / "toyds"), "--bits", "16", "--out",
                 str(tmp_path / "runs"), "--tracker", "wandb", "--wandb-tags", "paper,ablation", "--wandb-notes",
                 "first try", "--log-artifact"]) == 0
    run = next((tmp_path / "runs").iterdir())
    w = read_wandb_offline(run)
    assert w["project"] == "team-hashing" and w["tags"] == ["paper", "ablation"] and w["notes"] == "first try"
    cfg = w["config"]
    assert cfg["reg"] == 0.001 and cfg["itq_iters"] == 50 and "config" not in cfg  # flat hyper-parameters
    assert cfg["method"] == "cca-itq" and cfg["bits"] == 16 and cfg["label"] == "cca-itq+reg=0.001"
    assert cfg["environment"]["torch"] and "torch" not in cfg and cfg["dataset"] == str((tmp_path / "toyds").resolve())
    charts = w["charts"]
    assert {"pr_curve", "pk_curve", "ndcg_curve", "recall_curve"} <= set(charts)
    assert charts["pr_curve"]["panelDefId"] == "wandb/line/v0" and charts["pk_curve"]["fieldSettings"]["x"] == "k"
    logged = set().union(*w["history"])
    assert {"pr_curve_table/_type", "pk_curve_table/_type", "pr_image/_type"} <= logged
    assert {a["type"] for a in w["artifacts"]} >= {"model", "dataset"}
    report = report_json(run)
    assert w["summary"]["i2t/mAP@all"] == pytest.approx(report["results"]["i2t"]["mAP@all"])


def test_wandb_entity_and_project_flags_override_the_environment(offline_wandb, monkeypatch):
    from crossmodal.tracking import Tracker, read_wandb_offline

    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    with Tracker(offline_wandb / "a", "wandb", config={"bits": 8}, name="a"):
        pass
    with Tracker(offline_wandb / "b", "wandb", config={"bits": 8}, name="b", project="flag", entity="team"):
        pass
    assert read_wandb_offline(offline_wandb / "a")["project"] == "from-env"
    b = read_wandb_offline(offline_wandb / "b")
    assert b["project"] == "flag" and b["entity"] == "team" and b["charts"] == {}


# ---------------------------------------------------------------------------------- sweeps


def test_sweep_dry_run_validates_every_point_and_failures_do_not_stop_it(tmp_path, capsys):
    sw = {"name": "v", "datasets": [{"name": "toy", "params": TOY}],
          "methods": [{"method": "lsh"}, {"method": "no-such-method"}, {"method": "cca-itq", "overrides": {"regg": 1}},
                      {"method": "lsh", "label": "lsh-missing-data"}],
          "bits": [8], "seeds": [0]}
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(sw))
    logs = []
    counts = run_sweep(tmp_path / "v.yaml", out=tmp_path / "out", dry_run=True, log=logs.append)
    assert counts == {"valid": 2, "invalid": 2}
    assert any("no-such-method" in m and "INVALID" in m for m in logs)
    assert any("regg" in m and "INVALID" in m for m in logs) and not (tmp_path / "out").exists()
    sw["datasets"].append({"name": str(tmp_path / "nothing-here.mat")})
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(sw))
    logs.clear()
    counts = run_sweep(tmp_path / "v.yaml", out=tmp_path / "out", dry_run=True, log=logs.append)
    assert counts == {"valid": 2, "invalid": 6}  # every point of the missing dataset is invalid
    assert main(["sweep", str(tmp_path / "v.yaml"), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    # a real run: the failing points are recorded and the others train
    sw["datasets"] = sw["datasets"][:1]
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(sw))
    counts = run_sweep(tmp_path / "v.yaml", out=tmp_path / "out", **QUIET)
    assert counts == {"done": 2, "failed": 2, "skipped": 0, "stale": 0}
    failed = json.loads((tmp_path / "out" / "no-such-method-toy-8b-s0" / "failed.json").read_text())
    assert failed["stage"] == "config" and "no-such-method" in failed["error"]
    states = {p["folder"]: p["state"] for p in json.loads((tmp_path / "out" / "sweep.json").read_text())["points"]}
    assert states == {"lsh-toy-8b-s0": "done", "no-such-method-toy-8b-s0": "failed", "cca-itq+regg=1-toy-8b-s0": "failed",
                      "lsh-missing-data-toy-8b-s0": "done"}


def test_sweep_refuses_two_entries_with_one_label(tmp_path):
    sw = {"name": "d", "datasets": ["toy"], "methods": [{"method": "lsh"}, {"method": "lsh"}], "bits": [8]}
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(sw))
    with pytest.raises(CrossmodalError, match="share the label 'lsh'"):
        run_sweep(tmp_path / "d.yaml", out=tmp_path / "o", **QUIET)


def test_sweep_report_is_logged_to_the_sweep_group(two_labels_one_seed, offline_wandb, tmp_path):
    from crossmodal.experiments.sweep import log_sweep_report
    from crossmodal.tracking import read_wandb_offline

    d = tmp_path / "runs"
    shutil.copytree(two_labels_one_seed / "runs", d)
    rep = log_sweep_report(d, {"name": "grid", "methods": [{"method": "lsh"}, {"method": "cca-itq"}]}, **QUIET)
    assert (rep / "table.tex").is_file() and (rep / "map-toy.png").is_file()
    w = read_wandb_offline(rep)
    assert w["group"] == "grid" and w["job_type"] == "report" and w["name"] == "grid-report"
    logged = set().union(*w["history"])
    assert {"sweep_results/_type", "figures/map-toy/_type", "figures/pr-toy-i2t/_type"} <= logged


def test_ndcg_and_recall_curves_match_a_brute_force_reference():
    from crossmodal.retrieval.codes import pack
    from crossmodal.retrieval.metrics import evaluate_codes

    rng = np.random.default_rng(7)
    bits, nq, ndb = 8, 9, 40
    qb, db = rng.integers(0, 2, (nq, bits)), rng.integers(0, 2, (ndb, bits))
    ql, dl = (rng.random((nq, 3)) < 0.4).astype(np.uint8), (rng.random((ndb, 3)) < 0.4).astype(np.uint8)
    res = evaluate_codes(pack(qb), pack(db), ql, dl, bits, curve_ks=(1, 5, 10, 40, 100), graded_curves=True)
    assert "ndcg_curve" not in evaluate_codes(pack(qb), pack(db), ql, dl, bits)  # a second pass, on request
    ks = res["ndcg_curve"]["k"]
    assert ks == [1, 5, 10, 40] and res["recall_curve"]["k"] == ks
    ndcg, rec, n_rel = np.zeros(len(ks)), np.zeros(len(ks)), 0
    for i in range(nq):
        dist = (qb[i] != db).sum(1)
        order = sorted(range(ndb), key=lambda j: (dist[j], j))  # ties by database index
        grade = (ql[i] & dl).sum(1)
        ideal = sorted(grade, reverse=True)
        for t, k in enumerate(ks):
            dcg = sum((2.0 ** grade[order[r]] - 1) / np.log2(r + 2) for r in range(k))
            idcg = sum((2.0 ** ideal[r] - 1) / np.log2(r + 2) for r in range(k))
            ndcg[t] += dcg / idcg if idcg > 0 else 0.0
            if (grade > 0).sum():
                rec[t] += sum(grade[order[r]] > 0 for r in range(k)) / (grade > 0).sum()
        n_rel += int((grade > 0).sum() > 0)
    assert np.allclose(res["ndcg_curve"]["ndcg"], ndcg / nq)
    assert np.allclose(res["recall_curve"]["recall"], rec / n_rel)
    assert res["recall_curve"]["recall"][-1] == pytest.approx(1.0)  # the whole database retrieves everything
    part = evaluate_codes(pack(qb), pack(db), ql, dl, bits, curve_ks=(1, 5, 10), graded_curves=True)  # top 10 of 40
    assert np.allclose(part["ndcg_curve"]["ndcg"], (ndcg / nq)[:3])
    assert np.allclose(part["recall_curve"]["recall"], (rec / n_rel)[:3])


def test_report_cli_order_and_label_filter(two_labels_one_seed, tmp_path, capsys):
    runs = str(two_labels_one_seed / "runs")
    assert main(["report", runs, "--out", str(tmp_path / "a"), "--order", "lsh,cca-itq", "--no-plots"]) == 0
    md = (tmp_path / "a" / "table.md").read_text()
    assert md.index("| lsh |") < md.index("| cca-itq |")
    assert main(["report", runs, "--out", str(tmp_path / "b"), "--label", "cca-itq", "--no-plots"]) == 0
    assert "| lsh |" not in (tmp_path / "b" / "table.md").read_text()
    assert main(["report", runs, "--out", str(tmp_path / "c"), "--label", "ugach"]) == 2
    assert "no runs labelled 'ugach'" in capsys.readouterr().err
