"""benchmarks/official deep adapters: patches applied exactly (and refused on another version),
the codes' sign convention, the shared results file, the table, and a missing checkout as one line.
The released code itself is not run here (hours of CPU); its checkouts are optional."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

OFFICIAL = Path(__file__).resolve().parents[1] / "benchmarks" / "official"
sys.path.insert(0, str(OFFICIAL))

import deep_adapter  # noqa: E402
import deep_table  # noqa: E402
from common import OfficialError  # noqa: E402
from deep_adapter import Patch, SharedResults, prepare_checkout, write_codes  # noqa: E402

CHECKOUTS = {"djsrh_official": "DJSRH", "jdsh_official": "JDSH", "dgcpn_official": "DGCPN", "ucch_official": "UCCH",
             "ugach_official": "UGACH_AAAI2018"}


def _checkout(tmp_path, text="a = 1\nb = a.cuda()\nc = a.cuda()\n"):
    code = tmp_path / "code"
    code.mkdir()
    (code / "m.py").write_text(text)
    subprocess.run(["git", "init", "-q", str(code)], check=True)
    return code


def test_prepare_checkout_applies_each_patch_to_a_copy(tmp_path):
    code = _checkout(tmp_path)
    done = prepare_checkout(code, tmp_path / "work", [Patch("m.py", ".cuda()", ".cpu()", "CPU", count=0),
                                                      Patch("m.py", "a = 1\n", "a = 2\n", "value")])
    assert (tmp_path / "work" / "m.py").read_text() == "a = 2\nb = a.cpu()\nc = a.cpu()\n"
    assert (code / "m.py").read_text() == "a = 1\nb = a.cuda()\nc = a.cuda()\n"  # the checkout is untouched
    assert not (tmp_path / "work" / ".git").exists()
    assert [(d["file"], d["occurrences"], d["why"]) for d in done] == [("m.py", 2, "CPU"), ("m.py", 1, "value")]


def test_a_copy_with_the_same_files_is_shared_and_a_changed_one_replaced(tmp_path):
    """Runs side by side prepare the same copy: the second keeps the first's folder as it is."""
    code = _checkout(tmp_path)
    work = tmp_path / "work"
    patch = [Patch("m.py", "a = 1\n", "a = 2\n", "value")]
    prepare_checkout(code, work, patch)
    (work / "run.log").write_text("written by the running code")
    inode = work.stat().st_ino
    prepare_checkout(code, work, patch)
    assert work.stat().st_ino == inode and (work / "run.log").exists()  # kept, not rebuilt
    prepare_checkout(code, work, [Patch("m.py", "a = 1\n", "a = 5\n", "value")])
    assert (work / "m.py").read_text().startswith("a = 5\n") and not (work / "run.log").exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["code", "work"]  # no temporary left


@pytest.mark.parametrize("patch", [Patch("m.py", "a = 3\n", "", "absent"), Patch("m.py", ".cuda()", "", "twice")])
def test_a_patch_that_does_not_match_the_released_text_is_refused(tmp_path, patch):
    with pytest.raises(OfficialError, match="expected"):
        prepare_checkout(_checkout(tmp_path), tmp_path / "work", [patch])


def test_not_a_checkout_is_refused(tmp_path):
    with pytest.raises(OfficialError, match="not a git checkout"):
        prepare_checkout(tmp_path, tmp_path / "work", [])


@pytest.mark.parametrize("module", sorted(CHECKOUTS))
def test_every_patch_matches_the_released_checkout(module, tmp_path):
    """Against the checkouts the tables were made with (under /tmp/official when present)."""
    code = Path("/tmp/official") / CHECKOUTS[module]
    if not (code / ".git").exists():
        pytest.skip(f"no checkout at {code}")
    mod = __import__(module)
    patches = mod.PATCHES if hasattr(mod, "PATCHES") else mod.SPEC.patches
    assert len(prepare_checkout(code, tmp_path / "work", patches)) == len(patches)
    if module != "ugach_official":  # the patched Python of the PyTorch code bases compiles
        for f in {p.path for p in patches}:
            compile((tmp_path / "work" / f).read_text(), f, "exec")


def test_codes_are_the_sign_with_zero_as_one(tmp_path):
    paths = write_codes(tmp_path, {"query_image": np.array([[-0.5, 0.0, 2.0]]), "last__query_text": -np.ones((2, 3))})
    assert np.load(paths["query_image"]).tolist() == [[0, 1, 1]]
    assert paths["last__query_text"].name == "last__query_text.npy"
    with pytest.raises(OfficialError, match="non-finite"):
        write_codes(tmp_path, {"x": np.array([[np.nan]])})


def test_shared_results_keep_every_writer_s_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(deep_adapter, "WORK", tmp_path / "work")
    path = tmp_path / "deep.json"
    a, b = SharedResults(path), SharedResults(path)
    a.data["about"]["code"] = {"djsrh": {"commit": "x"}}
    a.save()
    b.data["about"]["code"] = {"jdsh": {"commit": "y"}}
    b.save()
    key = dict(method="m", dataset="toy", bits=32, variant="port")
    a.put({**key, "seed": 0, "v": 1})
    b.put({**key, "seed": 1})
    a.put({**key, "seed": 0, "v": 2})
    data = json.loads(path.read_text())
    assert data["about"]["code"] == {"djsrh": {"commit": "x"}, "jdsh": {"commit": "y"}}
    assert sorted((e["seed"], e.get("v")) for e in data["entries"]) == [(0, 2), (1, None)]


def test_results_files_made_in_parallel_merge(tmp_path):
    from common import Results

    a, b = Results(tmp_path / "a.json"), Results(tmp_path / "b.json")
    key = dict(method="m", dataset="toy", bits=32, variant="port")
    a.data["about"] = {"datasets": {"toy": {"h1": {"n_train": 10}}}, "code": {"m": {"commit": "x"}}}
    a.put({**key, "seed": 0, "v": 1})
    a.put({**key, "seed": 1, "v": 1})
    b.data["about"] = {"datasets": {"uci": {"h2": {"n_train": 20}}}}
    b.put({**key, "seed": 1, "v": 2})
    b.put({**key, "dataset": "uci", "seed": 0, "v": 2})
    assert a.merge(Results(tmp_path / "b.json")) == 2
    data = json.loads((tmp_path / "a.json").read_text())
    assert sorted((e["dataset"], e["seed"], e["v"]) for e in data["entries"]) == [
        ("toy", 0, 1), ("toy", 1, 2), ("uci", 0, 2)]
    assert set(data["about"]["datasets"]) == {"toy", "uci"} and data["about"]["code"] == {"m": {"commit": "x"}}
    with pytest.raises(SystemExit) as exit_:  # a missing file to merge: one usage line, nothing written
        deep_table.main([str(tmp_path / "a.json"), "--merge", str(tmp_path / "missing.json")])
    assert exit_.value.code == 2 and not (tmp_path / "a.md").exists()


def _entry(method, variant, seed, i2t, t2i, seconds=10.0):
    figs = {"i2t": {"mAP@all": i2t}, "t2i": {"mAP@all": t2i}}
    return {"method": method, "dataset": "toy", "bits": 32, "seed": seed, "variant": variant, "seconds": seconds,
            "figures": {"per-modality": figs}}


def test_table_rows_gaps_and_changes():
    data = {"about": {"datasets": {"toy": {"h1": {"n_train": 1800, "n_query": 200, "n_database": 1800,
                                                  "split_hash": "h1"}}},
                      "code": {"djsrh": {"repo": "zs-zhong/DJSRH", "commit": "abc", "notes": ["a note"],
                                         "changes": [{"file": "train.py", "occurrences": 9, "why": "CPU"}]}}},
            "entries": [_entry("djsrh", "official", 0, 0.30, 0.40), _entry("djsrh", "official", 1, 0.32, 0.40),
                        _entry("djsrh", "port", 0, 0.33, 0.405, 20.0), _entry("djsrh", "port", 1, 0.33, 0.405, 20.0)]}
    for e in data["entries"]:
        e.update({"settings": {"NUM_EPOCH": 5}} if e["variant"] == "official" else {"overrides": {"epochs": 5}})
    md = deep_table.markdown(data)
    assert "### toy, 32 bits: 1800 training pairs, 200 queries, 1800 database items (split h1); mAP@all" in md
    assert "| djsrh | I→T | 0.3100 ± 0.0141 | 0.3300 ± 0.0000 | **+0.0200** | — | 2 / 2 | 5 / 5 | — / — | 10 / 20 |" in md
    assert "| djsrh | T→I | 0.4000 ± 0.0000 | 0.4050 ± 0.0000 | +0.0050 | — | 2 / 2 | 5 / 5 | — / — | 10 / 20 |" in md
    data["entries"][2]["overrides"] = data["entries"][3]["overrides"] = {}
    data["entries"][0]["collapse"] = {}
    data["entries"][2]["collapse"] = {"constant_bits": {"query image": 3, "database text": 5}}
    assert "| +0.0050 | — | 2 / 2 | 5 | 0 / 5 | 10 / 20 |" in deep_table.markdown(data)
    assert "**djsrh**: `zs-zhong/DJSRH` at commit `abc`" in md and "- `train.py` (9×): CPU" in md and "- a note" in md


def test_a_missing_checkout_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(OFFICIAL / "djsrh_official.py"), "--code", str(tmp_path / "none"),
                           "--datasets", "toy", "--results", str(tmp_path / "r.json"), "--work", str(tmp_path / "w")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "give --code" in proc.stderr


def test_ugach_reuses_only_stages_an_earlier_run_finished(tmp_path):
    """``--reuse-stages``: the graph and pre-training stages count as finished only from their
    ``exit 0`` lines, the pre-training only with the asked number of epochs."""
    import ugach_official

    log = tmp_path / "official.log"
    assert ugach_official.finished_stages(log, 2) == {}
    log.write_text("[adapter] KNN/knn_mir_cross5.py: exit 0, 90 s\nd_epoch: 0\nd_epoch: 1\n"
                   "[adapter] unsuper-pretrain-mir-D-beta/train_32.py: exit 0, 1484 s\n")
    assert ugach_official.finished_stages(log, 2) == {"knn": 90.0, "pretrain": 1484.0}
    assert ugach_official.finished_stages(log, 50) == {"knn": 90.0}
    log.write_text("[adapter] KNN/knn_mir_cross5.py: exit 1, 3 s\n")
    assert ugach_official.finished_stages(log, 2) == {}


def test_an_entry_gets_the_collapse_its_run_stated(tmp_path, monkeypatch):
    monkeypatch.setattr(deep_adapter, "WORK", tmp_path / "work")
    run = tmp_path / "run"
    run.mkdir()
    col = {"bits": 8, "constant_bits": {"query image": 8}, "statement": "collapsed: ..."}
    (run / "report.json").write_text(json.dumps({"meta": {"collapse": col}}))
    res = SharedResults(tmp_path / "deep.json")
    res.put({"method": "m", "dataset": "d", "bits": 8, "seed": 0, "variant": "official", "run": str(run)})
    res.put({"method": "m", "dataset": "d", "bits": 8, "seed": 1, "variant": "official", "run": str(tmp_path / "gone")})
    assert [e["collapse"] for e in SharedResults(tmp_path / "deep.json").data["entries"]] == [col, None]


def test_paper_settings_table_states_epochs_and_collapse():
    import paper_settings

    def entry(variant, seed, i2t, collapse, epochs):
        return {"method": paper_settings.RUNS[variant][0], "dataset": "toy", "bits": 32, "seed": seed,
                "variant": variant, "epochs": epochs, "collapse": collapse,
                "figures": {"i2t": {"mAP@all": i2t}, "t2i": {"mAP@all": 0.2}},
                "validation": {"scores": [0.2, 0.1], "best_epoch": 1}}

    dead = {"bits": 32, "constant_bits": {"query image": 32, "query text": 30}, "validation": {"best": 0.18},
            "statement": "collapsed: every item gets the same code ..."}
    some = {"bits": 32, "constant_bits": {"database text": 3}, "statement": "degenerate codes: ..."}
    data = {"entries": [entry("dgcpn paper, k = 2000 (before the fix)", 0, 0.19, dead, 5),
                        entry("dgcpn paper, k = 2000 (before the fix)", 1, 0.21, None, 5),
                        entry("dgcpn paper", 0, 0.33, some, 5)]}
    md = paper_settings.table(data)
    assert ("| dgcpn paper, k = 2000 (before the fix) | 32 | 5 | 0.200 ± 0.014 | 0.200 ± 0.000 | 1, 1 | "
            "collapsed: 32 of 32 bits constant, validation at chance; none | 2 |") in md
    assert "| dgcpn paper | 32 | 5 | 0.330 ± 0.000 | 0.200 ± 0.000 | 1 | 3 of 32 bits constant | 1 |" in md
    assert md.index("| dgcpn paper |") < md.index("| dgcpn paper, k = 2000")
    assert paper_settings.label("djsrh paper, beta 0.1 (fast's beta)") == "djsrh-paper-beta-0.1-fast-s-beta"


def test_released_ugach_models_load_as_arrays_and_nothing_else(tmp_path):
    """``ugach_stages.read_model`` reads a pickled list of 8 NumPy arrays (the released DIS / GEN
    files) and refuses a pickle that would call anything else."""
    import pickle

    import ugach_stages

    arrays = [np.full((2, 3), i, np.float32) for i in range(8)]
    good = tmp_path / "dis.model"
    good.write_bytes(pickle.dumps(arrays))
    assert [a.tolist() for a in ugach_stages.read_model(good)] == [a.tolist() for a in arrays]

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    bad = tmp_path / "evil.model"
    bad.write_bytes(pickle.dumps([Evil()] + arrays[1:]))
    with pytest.raises(OfficialError, match="refusing to load builtins.print"):
        ugach_stages.read_model(bad)


def test_released_ugach_params_round_trip_through_the_port_towers():
    """The released params list (``x @ W + b``, TF layout) and the port's towers (``Linear``)
    are the same network: the released coding rule on ``port_state`` gives the port's bits, and
    ``load_state`` of one network's params makes another give the same logits."""
    import torch
    import ugach_lockstep
    import ugach_stages

    from crossmodal.nets import CrossModalNet

    torch.manual_seed(0)
    a, b = CrossModalNet(6, 4, 16, 8, 0.5), CrossModalNet(6, 4, 16, 8, 0.5)
    X = {"image": np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32),
         "text": np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)}
    params = ugach_lockstep.port_state(a)
    assert [p.shape for p in params] == [(6, 16), (16, 8), (16,), (8,), (4, 16), (16, 8), (16,), (8,)]
    for m in ("image", "text"):
        logits = a.logits(m, torch.from_numpy(X[m])).detach().numpy()
        bits = ugach_stages.released_bits(params, m, X[m])
        assert np.array_equal(bits, (logits >= 0).astype(np.uint8)) and 0 < bits.mean() < 1
    ugach_lockstep.load_state(b, params)
    for m in ("image", "text"):
        assert torch.equal(b.logits(m, torch.from_numpy(X[m])), a.logits(m, torch.from_numpy(X[m])))


def test_ugach_stages_table_lists_each_stage_and_the_lockstep(tmp_path):
    import ugach_stages

    def entry(seed, variant, i2t, t2i, **extra):
        figs = {"per-modality": {"i2t": {"mAP@all": i2t}, "t2i": {"mAP@all": t2i}}}
        return {"method": "ugach", "dataset": "wiki", "bits": 32, "seed": seed, "variant": variant, "figures": figs,
                **extra}

    stages = tmp_path / "ugach-stages.json"
    stages.write_text(json.dumps({"entries": [
        entry(0, "official-pretrained", 0.15, 0.12), entry(0, "port-pretrained", 0.16, 0.13),
        entry(0, "port-from-official-d", 0.151, 0.121),
        {"method": "ugach", "dataset": "wiki", "bits": 32, "seed": 0, "variant": "graph",
         "graph": {"rows": 10, "rows_equal": 9}}]}))
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps({"entries": [entry(0, "official", 0.152, 0.122), entry(0, "port", 0.17, 0.13),
                                            entry(0, "port-exact", 0.9, 0.9)]}))
    lock = tmp_path / "ugach-lockstep.json"
    lock.write_text(json.dumps({"entries": [
        {"seed": 0, "epochs": 50, "init": "released", "order": o, "mAP": {"released": [r, 0.1], "port": [r, 0.1]},
         "equal_bits": 1.0, "largest_weight_difference": 7.8e-8, "distinct_codes": {"qi": 1, "qt": 7, "di": 2,
                                                                                   "dt": 12}}
        for o, r in (("fixed", 0.1653), ("reshuffle", 0.17))]}))
    md = ugach_stages.write_table(stages, deep, lock).read_text()
    assert ("| 0 | 9 of 10 | 0.1500 / 0.1200 | 0.1600 / 0.1300 | 0.1520 / 0.1220 | 0.1510 / 0.1210 | "
            "0.1700 / 0.1300 |") in md
    assert "| mean |  | 0.1500 / 0.1200 |" in md and "0.9000" not in md
    assert "| 0 | fixed | 50 | 7.8e-08 | 1.0000 | 1 / 7 / 2 / 12 | 0.1653 / 0.1000 | 0.1653 / 0.1000 |" in md
    assert "| mean of 1 | reshuffle | | | | | | 0.1700 / 0.1000 |" in md


@pytest.mark.parametrize("script", ["ugach_stages.py", "ugach_lockstep.py", "ugach_official.py"])
def test_ugach_scripts_without_wiki_say_so_in_one_line(script, tmp_path):
    extra = ["--code", str(tmp_path), "--python", sys.executable] if script != "ugach_stages.py" else []
    proc = subprocess.run([sys.executable, str(OFFICIAL / script), "--wiki-root", str(tmp_path / "none"), *extra],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no raw_features.mat (--wiki-root)" in proc.stderr


def test_deep_lockstep_table_sets_each_run_beside_its_own_stream_runs(tmp_path):
    import deep_lockstep

    runs = tmp_path / "deep-lockstep.jsonl"
    run = {"method": "djsrh", "seed": 3, "bits": 16, "epochs": 80, "data": "uci-5515dd4c44ec.mat",
           "start_difference": 0.0, "end_difference": 2.4e-7, "equal_bits": 1.0,
           "mAP": {"released": [0.3188, 0.1394], "port": [0.3188, 0.1394]}}
    runs.write_text(json.dumps(run) + "\n" + json.dumps({**run, "seed": 4}) + "\n")
    own = tmp_path / "deep.json"
    uci16 = {"dataset": "uci", "bits": 16}
    own.write_text(json.dumps({"entries": [  # the released runs at 80 epochs and the port at its preset's count
        _entry("djsrh", "official", 3, 0.386, 0.192) | uci16 | {"settings": {"NUM_EPOCH": 80}},
        _entry("djsrh", "port", 3, 0.319, 0.139) | uci16,
        _entry("djsrh", "official", 3, 0.9, 0.9) | {"dataset": "uci", "settings": {"NUM_EPOCH": 80}}]}))
    cut = tmp_path / "cut.json"  # the same seed at 30 epochs, both sides: never beside an 80-epoch lock-step
    cut.write_text(json.dumps({"entries": [
        _entry("djsrh", "official", 3, 0.8, 0.8) | uci16 | {"settings": {"NUM_EPOCH": 30}},
        _entry("djsrh", "port", 3, 0.7, 0.7) | uci16 | {"overrides": {"epochs": 30}}]}))
    md = deep_lockstep.write_table(runs, [own, cut]).read_text()
    assert ("| djsrh | uci | 3 | 16 | 80 | 0 / 2e-07 | 1.0000 | 0.3188 / 0.1394 | 0.3188 / 0.1394 | "
            "0.3860 / 0.1920 | 0.3190 / 0.1390 |") in md
    assert "| djsrh | uci | 4 | 16 | 80 | 0 / 2e-07 | 1.0000 | 0.3188 / 0.1394 | 0.3188 / 0.1394 | — | — |" in md
    assert ("| djsrh | uci | *mean (2)* | 16 | 80 | | 1.0000 | 0.3188 / 0.1394 | 0.3188 / 0.1394 | — | — |"
            in md)  # seed 4 has no own-stream run: no mean of those columns


def test_deep_lockstep_table_groups_by_dataset_and_orders_by_seed(tmp_path):
    """Toy's export moves with the seed: rows of one group come from files of other names."""
    import deep_lockstep

    runs = tmp_path / "deep-lockstep.jsonl"
    run = {"method": "jdsh", "bits": 16, "epochs": 30, "start_difference": 0.0, "end_difference": 0.04}
    runs.write_text("\n".join(json.dumps({**run, **r}) for r in [
        {"seed": 1, "data": "toy-aaa.mat", "equal_bits": 0.8, "mAP": {"released": [0.4, 0.4], "port": [0.4, 0.3]}},
        {"seed": 0, "data": "toy-bbb.mat", "equal_bits": 1.0, "mAP": {"released": [0.3, 0.3], "port": [0.3, 0.3]}},
    ]) + "\n")
    own = tmp_path / "deep.json"
    toy16 = {"dataset": "toy", "bits": 16}
    own.write_text(json.dumps({"entries": [
        _entry("jdsh", v, s, x, x) | toy16 | {"settings": {"NUM_EPOCH": 30}, "overrides": {"epochs": 30}}
        for v, s, x in [("official", 0, 0.2), ("official", 1, 0.4), ("port", 0, 0.3), ("port", 1, 0.5)]]}))
    lines = [ln for ln in deep_lockstep.write_table(runs, [own]).read_text().splitlines() if ln.startswith("| jdsh")]
    assert [ln.split(" | ")[2] for ln in lines] == ["0", "1", "*mean (2)*"]
    assert lines[2].endswith("| 0.9000 | 0.3500 / 0.3500 | 0.3500 / 0.3000 | 0.3000 / 0.3000 | 0.4000 / 0.4000 |")
