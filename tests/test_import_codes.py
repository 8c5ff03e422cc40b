"""import-codes with one code per database pair (the unified convention) and with the dataset's
validation fraction."""

import json
from pathlib import Path

import numpy as np

from crossmodal.cli import main
from crossmodal.data import get_dataset
from crossmodal.retrieval.codes import unpack
from crossmodal.runs import load_run


def _latest(folder: Path) -> Path:
    return max(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)


def _report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def test_pair_codes_import_as_unified_and_score_like_the_run(tmp_path, capsys):
    """A CMFH run's codes, written out as 'another repository' would (query codes per modality,
    database codes per pair and per modality), import with --database-pair into a run that reports
    the unified convention with the run's own unified figures; `evaluate --database-codes
    per-modality` of the import gives the run's per-modality figures."""
    out = tmp_path / "runs"
    common = ["--dataset", "toy", "--bits", "16", "--seed", "1", "--validation-fraction", "0"]
    assert main(["train", "cmfh", "iters=5", *common, "--tracker", "none", "--out", str(out)]) == 0
    run = _latest(out)
    assert main(["evaluate", str(run), "--database-codes", "unified"]) == 0
    unified = _report(_latest(run / "evaluations"))
    assert unified["meta"]["database_codes"] == "unified"
    _, h, ds = load_run(run)
    q, db = ds.part("query"), ds.part("database")
    files = {"query-image": h.encode_image(q.image), "query-text": h.encode_text(q.text_dense()),
             "database-image": h.encode_image(db.image), "database-text": h.encode_text(db.text_dense()),
             "database-pair": h.encode_pair(db.image, db.text_dense())}
    argv = ["import-codes", *common, "--name", "cmfh-ext", "--out", str(tmp_path / "ext")]
    for key, packed in files.items():
        np.save(tmp_path / f"{key}.npy", unpack(packed, 16).astype(np.int8) * 2 - 1)
        argv += [f"--{key}", str(tmp_path / f"{key}.npy")]
    capsys.readouterr()
    assert main(argv) == 0
    assert "database codes: unified" in capsys.readouterr().out
    ext = _latest(tmp_path / "ext")
    theirs = _report(ext)
    assert theirs["meta"]["database_codes"] == "unified"
    assert json.loads((ext / "run.json").read_text())["evaluation"]["database_codes"] == "unified"
    assert theirs["meta"]["split_hash"] == _report(run)["meta"]["split_hash"]
    for d in ("i2t", "t2i"):
        assert theirs["results"][d]["mAP@all"] == unified["results"][d]["mAP@all"]
    assert main(["evaluate", str(ext), "--database-codes", "per-modality"]) == 0
    per = _report(_latest(ext / "evaluations"))
    assert per["meta"]["database_codes"] == "per-modality"
    for d in ("i2t", "t2i"):
        assert per["results"][d]["mAP@all"] == _report(run)["results"][d]["mAP@all"]
    # only pair codes: per-modality scoring names the missing file; nothing else changes
    argv = ["import-codes", *common, "--name", "pair-only", "--out", str(tmp_path / "ext2"),
            "--query-image", str(tmp_path / "query-image.npy"), "--query-text", str(tmp_path / "query-text.npy"),
            "--database-pair", str(tmp_path / "database-pair.npy")]
    assert main(argv) == 0
    only = _latest(tmp_path / "ext2")
    assert _report(only)["results"]["t2i"]["mAP@all"] == unified["results"]["t2i"]["mAP@all"]
    capsys.readouterr()
    assert main(["evaluate", str(only), "--database-codes", "per-modality"]) == 2
    assert "--database-text" in capsys.readouterr().err


def test_validation_fraction_changes_the_training_side_only():
    """The codes import-codes reads belong to the query and database parts: with
    validation_fraction=0 only the training side changes, so imported codes of a port trained with
    --validation-fraction 0 score on the same items."""
    for seed in (0, 1):
        default = get_dataset("toy", seed=seed)
        every = get_dataset("toy", seed=seed, validation_fraction=0)
        np.testing.assert_array_equal(default.split.query, every.split.query)
        np.testing.assert_array_equal(default.split.database, every.split.database)
        assert len(every.split.validation) == 0 < len(default.split.validation)
        assert len(every.split.train) == len(default.split.train) + len(default.split.validation)


def test_benchmark_splits_do_not_depend_on_the_seed_without_validation(wiki_dir, uci_mat):
    """Wiki and the UCI pair with validation_fraction=0: one split for every seed, so one export
    of the data serves every seed of benchmarks/official."""
    for name, root in (("wiki", str(wiki_dir)), (str(uci_mat), None)):
        a, b = (get_dataset(name, root=root, seed=s, validation_fraction=0).split for s in (0, 2))
        assert a.hash == b.hash and len(a.validation) == 0
        np.testing.assert_array_equal(a.train, b.train)
