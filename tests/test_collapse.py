"""Collapse detection: constant bits and validation at chance, from the helpers to a forced
collapse through ``train_run`` (log, report.json meta, report.md line) and an imported code file."""

import json
import logging

import numpy as np
import pytest
import scipy.io

from crossmodal.retrieval.codes import pack
from crossmodal.retrieval.collapse import (CHANCE_MARGIN, at_chance, chance_map, code_collapse, collapse_statement,
                                           constant_bits)


def test_constant_bits_counts_bits_equal_over_every_row():
    bits = np.array([[1, 0, 1, 0, 1, 1, 0, 0, 1, 1], [1, 1, 1, 0, 0, 1, 0, 1, 1, 1], [1, 0, 1, 0, 1, 1, 1, 0, 1, 0]])
    # columns 0, 2, 3, 5, 8 are constant; 10 bits span two bytes (padding bits are not counted)
    assert constant_bits(pack(bits), 10) == 5
    assert constant_bits(pack(bits[:1]), 10) == 0  # one row: nothing to compare
    assert constant_bits(pack(np.ones((4, 16), np.uint8)), 16) == 16


def test_chance_map_is_the_expected_ap_of_a_random_order():
    rng = np.random.default_rng(0)
    labels = np.eye(3)[rng.integers(0, 3, 40)]
    q = np.vstack([labels[:6], np.zeros((1, 3))])  # the last query has no relevant item: AP 0
    aps = []
    for _ in range(20000):
        rel = (q @ labels[rng.permutation(40)].T) > 0
        prec = np.cumsum(rel, axis=1) / np.arange(1, 41)
        aps.append(np.where(rel.any(1), (prec * rel).sum(1) / np.maximum(rel.sum(1), 1), 0).mean())
    assert chance_map(q, labels) == pytest.approx(np.mean(aps), abs=2e-3)
    # every item relevant: AP 1; large N: about the share of relevant items
    assert chance_map(np.ones((2, 1)), np.ones((9, 1))) == pytest.approx(1.0)
    big = np.eye(4)[np.arange(20000) % 4]
    assert chance_map(big[:4], big) == pytest.approx(0.25, abs=2e-3)


def test_at_chance_and_statement():
    assert at_chance([0.30, 0.305], 0.30) and not at_chance([0.30, 0.30 + CHANCE_MARGIN], 0.30)
    assert not at_chance([], 0.3)
    assert code_collapse({"query image": pack(np.eye(4, 8, dtype=np.uint8))}, 8) == {
        "constant_bits": {"query image": 4}, "bits": 8}
    assert code_collapse({"query image": pack(np.eye(8, dtype=np.uint8))}, 8) is None
    whole = {"constant_bits": {"database image": 8, "database text": 3}, "bits": 8,
             "validation": {"best": 0.186, "chance": 0.184, "epochs": 5}}
    assert collapse_statement(whole) == (
        "collapsed: every item gets the same code in the database image codes (all 8 bits constant); constant bits: "
        "3 of 8 in the database text codes; validation mAP at chance for the whole run (best 0.186 over 5 epochs, "
        "chance 0.184)")
    assert collapse_statement({"constant_bits": {"query text": 2}, "bits": 8}).startswith("degenerate codes: ")


def _constant_dataset(path, n_train=300, n_test=60, seed=0):
    """A paired .mat whose items all have the same image and the same text features: nothing
    tells them apart, so any trained hasher gives every item the same code."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = np.eye(3)[rng.integers(0, 3, n)]
    image = np.tile(rng.random((1, 12)), (n, 1))
    text = np.tile(rng.random((1, 5)), (n, 1))
    scipy.io.savemat(path, {"I_tr": image[:n_train], "T_tr": text[:n_train], "L_tr": labels[:n_train],
                            "I_te": image[n_train:], "T_te": text[n_train:], "L_te": labels[n_train:]})
    return path


def test_forced_collapse_warns_in_the_log_and_states_it_in_the_report(tmp_path, crossmodal_records):
    from crossmodal.runs import train_run

    data = _constant_dataset(tmp_path / "constant.mat")
    lines = []
    cfg = dict(hidden=[16], hidden_text=[16], epochs=3, batch_size=64, optimizer="adam", lr=1e-3, progress=False)
    with crossmodal_records.at_level(logging.WARNING, logger="crossmodal"):
        run = train_run("djsrh", str(data), 16, seed=0, config=cfg, out=tmp_path / "runs", tracker="jsonl",
                        log=lines.append)
    meta = json.loads((run / "report.json").read_text())["meta"]
    col = meta["collapse"]
    assert col["bits"] == 16
    assert col["constant_bits"] == {"query image": 16, "database text": 16, "query text": 16, "database image": 16}
    val = col["validation"]
    assert val["epochs"] == 3 and val["best"] < val["chance"] + CHANCE_MARGIN
    assert col["statement"].startswith("collapsed: every item gets the same code")
    assert f"**Warning: {col['statement']}.**" in (run / "report.md").read_text()
    assert any(line.startswith("warning: djsrh on constant: collapsed:") for line in lines)
    assert any("validation mAP at chance for the whole run" in r.getMessage() for r in crossmodal_records.records)
    events = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epochs"] for e in events if e.get("event") == "collapse"] == [3]


def test_a_healthy_run_states_no_collapse(tmp_path, toy_small):
    from crossmodal.methods import get_method
    from crossmodal.retrieval.evaluate import evaluate
    from crossmodal.runs import validation_set

    h = get_method("djsrh")(16, seed=0, hidden=[32], hidden_text=[32], epochs=2, batch_size=64, optimizer="adam",
                            lr=1e-3, progress=False, standardize="zscore", beta=0.1)
    h.fit(toy_small.part("train"), valid=validation_set(toy_small))
    assert h.collapse is None
    report = evaluate(h, toy_small)
    assert "collapse" not in report.meta and "Warning" not in report.to_markdown()


def test_imported_constant_codes_are_flagged(tmp_path):
    from crossmodal.data import get_dataset
    from crossmodal.runs import import_codes

    ds = get_dataset("toy", seed=0)
    nq, ndb = len(ds.split.query), len(ds.split.database)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "qi.npy", rng.integers(0, 2, (nq, 8)))
    np.save(tmp_path / "dt.npy", np.ones((ndb, 8), np.int8))
    run = import_codes({("query", "image"): tmp_path / "qi.npy", ("database", "text"): tmp_path / "dt.npy"},
                       "toy", 8, "constant", out=tmp_path / "runs", log=lambda *_: None)
    meta = json.loads((run / "report.json").read_text())["meta"]
    assert meta["collapse"]["constant_bits"] == {"database text": 8}
    assert "validation" not in meta["collapse"]
