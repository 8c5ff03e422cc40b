"""The open method registry (three routes), declared parameters, imported codes, and the
published-conventions table."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from crossmodal.cli import main
from crossmodal.errors import ConfigError
from crossmodal.methods import get_method
from crossmodal.methods.params import Choice, Param, Range

README = Path(__file__).resolve().parents[1] / "README.md"
TRAIN = ["--dataset", "toy", "--bits", "16", "--tracker", "none"]

def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Methods and adding your own.*?```python\n(.*?)```", text, re.S)
    assert block, "README lost its 'Add a method' example"
    return block.group(1)


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """The README's example as three user modules: one with the decorator, two without (for
    the module:Class and entry-point routes), plus an installed-package entry point."""
    code = readme_example()
    plain = code.replace("@register_method\n", "")
    (tmp_path / "cm_user_dec.py").write_text(code)
    (tmp_path / "cm_user_plain.py").write_text(plain)
    (tmp_path / "cm_user_ep.py").write_text(plain)
    dist = tmp_path / "cm_user_ep-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cm-user-ep\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[crossmodal.methods]\ncca-ep = cm_user_ep:CCARR\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for m in ("cm_user_dec", "cm_user_plain", "cm_user_ep"):
        sys.modules.pop(m, None)
    from crossmodal.methods import _registry

    _registry._REGISTRY.pop("cca-rr", None)
    _registry._ALLOWED_MODULES.difference_update({"cm_user_dec", "cm_user_plain", "cm_user_ep"})


def _train(prefix: list, method: str, out: Path) -> Path:
    assert main([*prefix, "train", method, *TRAIN, "--out", str(out)]) == 0
    return max(out.iterdir(), key=lambda p: p.stat().st_mtime_ns)


@pytest.mark.parametrize("route", ["decorator", "module", "entry_point"])
def test_user_method_through_each_route_trains_evaluates_reports(user_modules, tmp_path, capsys, route):
    out = tmp_path / f"runs-{route}"
    prefix, method, key = {
        "decorator": (["--import", "cm_user_dec"], "cca-rr", "cca-rr"),
        "module": ([], "cm_user_plain:CCARR", "cm_user_plain:CCARR"),
        "entry_point": ([], "cca-ep", "cca-ep"),
    }[route]
    run = _train(prefix, method, out)
    spec = json.loads((run / "run.json").read_text())
    assert spec["method"] == key
    assert json.loads((run / "model" / "hasher.json").read_text())["method"] == key
    first = json.loads((run / "report.json").read_text())["results"]
    assert first["i2t"]["mAP@all"] > 0.3  # CCA + random rotation is far above chance on toy
    if route == "module":  # a saved run never imports the user's module by itself
        from crossmodal.methods import _registry

        _registry._ALLOWED_MODULES.discard("cm_user_plain")
        capsys.readouterr()
        assert main(["evaluate", str(run)]) == 2
        assert "--import cm_user_plain" in capsys.readouterr().err
        prefix = ["--import", "cm_user_plain"]
    assert main([*prefix, "evaluate", str(run)]) == 0
    assert main(["report", str(out), "--out", str(tmp_path / f"table-{route}"), "--no-plots"]) == 0
    table = (tmp_path / f"table-{route}" / "table.md").read_text()
    assert spec["label"] in table


def test_a_name_registered_twice_names_both_classes():
    from crossmodal.methods import register_method
    from crossmodal.methods.baselines import LinearHasher

    class Other(LinearHasher):
        name = "cca-itq"

    with pytest.raises(ConfigError, match="registered twice.*baselines:CCAITQ.*Other"):
        register_method(Other)


def test_unknown_method_and_bad_module_class_are_one_line_errors():
    with pytest.raises(ConfigError, match="did you mean 'ugach'"):
        get_method("ugac")
    with pytest.raises(ConfigError, match="cannot import"):
        get_method("no_such_module_xyz:Thing")
    with pytest.raises(ConfigError, match="not a subclass"):
        get_method("numpy:ndarray")


def test_defaults_are_the_declared_values(tmp_path, toy_small):
    """Defaults written out by hand (the paper constants the params declare), as a hasher built
    without config and its saved hasher.json carry them; help, checks and defaults of every key
    of every method: test_contract.py."""
    from crossmodal.methods import Hasher, load_hasher

    assert get_method("cca-itq").defaults == {"reg": 1e-4, "itq_iters": 50, "corr_power": 1.0}
    djsrh = get_method("djsrh").defaults  # zs-zhong/DJSRH settings.py: BETA, ETA, MU, LAMBDA1, LAMBDA2
    assert {k: djsrh[k] for k in ("beta", "eta", "mu", "intra_image_weight", "intra_text_weight")} == \
        {"beta": 0.9, "eta": 0.4, "mu": 1.5, "intra_image_weight": 0.1, "intra_text_weight": 0.1}
    assert get_method("lsh").defaults == {} and get_method("lsh").params == ()
    h = get_method("cvh")(16).fit(toy_small.part("train"))
    assert h.config == {"graph": "identity", "n_neighbours": 5, "reg": 1e-4, "eigenproblem": "paper"}
    h.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "hasher.json").read_text())["config"] == h.config
    assert load_hasher(tmp_path / "m").config == h.config

    class Declared(Hasher):  # params declared: defaults follow them, in order
        params = (Param("a", 3, int, Range(0, None), "a count"), Param("b", "x", str, Choice("x", "y"), "a choice"))

    class Plain(Hasher):  # a plain defaults dict: params inferred from it, types from the values
        defaults = {"k": 2, "rate": 0.5, "on": True, "name": "s", "dims": [1, 2], "opt": None}

    assert Declared.defaults == {"a": 3, "b": "x"} and Declared(8).config == {"a": 3, "b": "x"}
    assert [(p.name, p.type) for p in Plain.params] == [("k", int), ("rate", float), ("on", bool), ("name", str),
                                                        ("dims", list), ("opt", str)]
    assert Plain(8, k="7", on="no", opt=None).config == {"k": 7, "rate": 0.5, "on": False, "name": "s",
                                                         "dims": [1, 2], "opt": None}
    with pytest.raises(ConfigError, match="k=.* is not a valid int"):
        Plain(8, k="many")


def test_param_conversion_and_checks():
    p = Param("lr", 0.1, float, Range(0, None, low_open=True), "learning rate")
    assert p.convert("0.5") == 0.5 and p.convert(2) == 2.0
    for bad, msg in ((0, r"must be in \(0, inf\)"), ("nan", "not a finite number"), (True, "not a valid float"),
                     ("x", "not a valid float")):
        with pytest.raises(ConfigError, match=msg):
            p.convert(bad, "m")
    n = Param("epochs", 5, int, Range(0, None), "epochs")
    assert n.convert("3") == 3 and n.convert(4.0) == 4
    with pytest.raises(ConfigError, match="not a valid int"):
        n.convert(2.5)
    with pytest.raises(ConfigError, match=r"must be in \[0, inf\)"):
        n.convert(-1)
    c = Param("opt", "sgd", str, Choice("sgd", "adam"), "optimiser")
    with pytest.raises(ConfigError, match="did you mean 'adam'"):
        c.convert("adan")
    b = Param("amp", False, bool, None, "mixed precision")
    assert b.convert("yes") is True and b.convert(0) is False
    with pytest.raises(ConfigError):
        b.convert("maybe")
    lst = Param("shape", [], list, Range(1, None), "shape", item=int)
    assert lst.convert("3, 8, 8") == [3, 8, 8]
    with pytest.raises(ConfigError, match="every item"):
        lst.convert([3, 0])


def test_repr_shows_only_changed_keys():
    h = get_method("cca-itq")(16, reg=0.5)
    assert repr(h) == "CCAITQ(bits=16, reg=0.5)"


def test_config_file_keys_checked_per_layer_with_file_and_path(tmp_path, capsys):
    cfg = tmp_path / "my.yaml"
    cfg.write_text("base: base.yaml\nmethod: cca-itq\nreg: 0.01\ndatasets:\n  toy: {itq_iter: 3}\n")
    assert main(["train", "cca-itq", *TRAIN, "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "my.yaml: datasets.toy.itq_iter: unknown key; did you mean 'itq_iters'?" in capsys.readouterr().err
    cfg.write_text("base: base.yaml\nmethod: lsh\nreg: 0.01\n")
    assert main(["train", "cca-itq", *TRAIN, "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "method: lsh, but the method being trained is cca-itq" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_presets_split_on_the_registered_name(tmp_path, monkeypatch):
    from crossmodal import config

    for stem in ("cca-itq", "cca-itq-fast", "ugach-fast"):
        (tmp_path / f"{stem}.yaml").write_text("base: base.yaml\n")
    monkeypatch.setattr(config, "CONFIG_DIR", tmp_path)
    assert config.presets_of("cca-itq") == ["paper", "fast"]
    assert config.split_preset("cca-itq-fast") == ("cca-itq", "fast")
    with pytest.raises(ConfigError, match="known: paper, fast"):
        config.preset_path("cca-itq", "slow")


def test_methods_command_lists_keys(capsys):
    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    assert "ugach" in listing and "cca-itq" in listing
    assert main(["methods", "cca-itq"]) == 0
    detail = capsys.readouterr().out
    assert re.search(r"itq_iters\s+int\s+50\s+\[0, inf\)\s+ITQ rotation iterations", detail)


def test_import_codes_scores_external_codes_like_a_run(tmp_path, toy_small, monkeypatch, capsys):
    """Codes written by 'another repository' (here: a trained cca-itq, as ±1 .npy and 0/1 .mat)
    give the same report as the run that made them."""
    import scipy.io

    from crossmodal.retrieval.codes import unpack

    out = tmp_path / "runs"
    run = _train([], "cca-itq", out)
    from crossmodal.runs import load_run

    spec, h, ds = load_run(run)
    q, db = ds.part("query"), ds.part("database")
    pm = lambda c: unpack(c, 16).astype(np.int8) * 2 - 1  # noqa: E731  (±1)
    np.save(tmp_path / "qi.npy", pm(h.encode_image(q.image)))
    np.save(tmp_path / "qt.npy", pm(h.encode_text(q.text_dense())))
    scipy.io.savemat(tmp_path / "db.mat", {"B_img": unpack(h.encode_image(db.image), 16).astype(np.uint8),
                                           "B_txt": unpack(h.encode_text(db.text_dense()), 16).T.astype(np.uint8)})
    argv = ["import-codes", "--dataset", "toy", "--bits", "16", "--name", "ext", "--out", str(tmp_path / "ext"),
            "--query-image", str(tmp_path / "qi.npy"), "--query-text", str(tmp_path / "qt.npy"),
            "--database-image", f"{tmp_path / 'db.mat'}:B_img", "--database-text", f"{tmp_path / 'db.mat'}:B_txt"]
    assert main(argv) == 0
    ext = next((tmp_path / "ext").iterdir())
    mine = json.loads((run / "report.json").read_text())["results"]
    theirs = json.loads((ext / "report.json").read_text())["results"]
    for d in ("i2t", "t2i"):
        assert theirs[d]["mAP@all"] == mine[d]["mAP@all"]
    prov = json.loads((ext / "run.json").read_text())["provenance"]["imported_codes"]
    assert len(prov["query_image"]["sha256"]) == 64
    assert main(["evaluate", str(ext)]) == 0
    # bad input: wrong row count, non-binary values; nothing written
    np.save(tmp_path / "bad.npy", np.full((5, 16), 1))
    np.save(tmp_path / "odd.npy", np.full((len(q.image), 16), 3))
    for f, msg in (("bad.npy", "shape (5, 16)"), ("odd.npy", "must be ±1 or 0/1")):
        capsys.readouterr()
        assert main(argv[:7] + ["--out", str(tmp_path / "ext2"), "--query-image", str(tmp_path / f),
                                "--database-text", f"{tmp_path / 'db.mat'}:B_txt"]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "ext2").exists()


def test_published_conventions_equal_hand_computed_values():
    """4 queries, 3 database items, 2 bits; query 3 has no relevant item."""
    from types import SimpleNamespace

    from crossmodal.retrieval.codes import pack
    from crossmodal.retrieval.evaluate import published_conventions

    class Fixed:
        name, bits, seed, modalities, unified_codes = "fixed", 2, 0, ("image", "text"), False

        def encode_image(self, X):
            return pack(np.asarray(X) > 0)

        encode_text = encode_image

    # Hamming distances query->db: q0: [0, 1, 2]; q1: [2, 1, 0]; q2: [1, 0, 1]; q3 anything.
    qx = np.array([[1, 1], [0, 0], [1, 0], [1, 1]], np.float32)
    dbx = np.array([[1, 1], [1, 0], [0, 0]], np.float32)
    ql = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.uint8)
    dl = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], np.uint8)
    part = {"query": SimpleNamespace(image=qx, labels=ql, n=4, text_dense=lambda: qx),
            "database": SimpleNamespace(image=dbx, labels=dl, n=3, text_dense=lambda: dbx)}
    ds = SimpleNamespace(name="hand", part=part.__getitem__, data=SimpleNamespace(labels=ql),
                         split=SimpleNamespace(hash="h", protocol="p"))
    # AP: q0 relevant at ranks 1, 3 -> (1 + 2/3)/2 = 5/6; q1 relevant (db0, db2) ranked db2, db1, db0
    # -> ranks 1, 3 -> 5/6; q2 relevant db1 at rank 1 -> 1; q3 none -> 0.
    ap_all = (5 / 6 + 5 / 6 + 1 + 0) / 4
    table = published_conventions(Fixed(), ds, directions=("i2t",))
    rows = {name: vals["i2t"] for name, conv, vals in table["rows"]}
    assert rows["mAP@all"] == pytest.approx(ap_all, abs=1e-12)
    assert rows["mAP@all, no-relevant queries left out"] == pytest.approx(ap_all * 4 / 3, abs=1e-12)
    # k=50 > database: both normalisations equal AP@all here
    assert rows["mAP@50 ÷ min(R, 50)"] == pytest.approx(ap_all, abs=1e-12)
    assert rows["mAP@50 ÷ relevant in top 50, no-relevant left out"] == pytest.approx(ap_all * 4 / 3, abs=1e-12)
    assert table["n_query_relevant"] == 3
    assert {conv for _, conv, _ in table["rows"]} == {"per-modality"}


def test_unified_database_codes_need_a_unified_method(tmp_path, capsys):
    assert main(["train", "cca-itq", *TRAIN, "--database-codes", "unified", "--out", str(tmp_path / "r")]) == 2
    assert "cannot code a pair from both modalities" in capsys.readouterr().err
