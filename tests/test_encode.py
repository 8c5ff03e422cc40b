"""Encoding a feature file into shards (`crossmodal encode`) and indexing them (`crossmodal index`):
the codes equal `hasher.encode_image` on the same rows, sequentially and on Dask; a killed encode
resumes; the manifest vouches for every shard (a missing or damaged one is one line naming it);
nothing is written before the inputs are validated; the index carries the rows as ids and the
model identity."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from crossmodal.cli import main
from crossmodal.errors import DataError
from crossmodal.methods import load_hasher
from crossmodal.retrieval import HammingIndex, open_index
from crossmodal.runs import EncodedCodes, build_index, encode_features, model_identity, train_run

ROOT = Path(__file__).resolve().parents[1]
UGACH_TINY = dict(hidden=32, pretrain_epochs=1, epochs=2, batch_size=64, optimizer="adam", lr_d=1e-3, lr_g=1e-3,
                  weight_decay=1e-4, standardize="zscore", init_std=0.0, progress=False, pool_fraction=0.05)
QUIET = {"log": lambda *a: None}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train_run("ugach", "toy", 16, seed=0, config=UGACH_TINY, dataset_params={"n": 300, "n_query": 50},
                     out=tmp_path_factory.mktemp("runs"), tracker="none", **QUIET)


@pytest.fixture(scope="module")
def hasher(run):
    return load_hasher(run / "model")


@pytest.fixture(scope="module")
def feats(tmp_path_factory, hasher) -> Path:
    rng = np.random.default_rng(0)
    f = tmp_path_factory.mktemp("feats") / "db.npy"
    np.save(f, rng.standard_normal((1000, hasher.dims["image"])).astype(np.float32))
    return f


def shards(out: Path) -> np.ndarray:
    return np.concatenate([codes for _, codes in EncodedCodes(out)])


def test_shards_hold_the_codes_of_encode_image_and_the_manifest_vouches_for_them(run, hasher, feats, tmp_path):
    out = encode_features(run, feats, "image", tmp_path / "enc", chunk_rows=300, **QUIET)
    ref = hasher.encode_image(np.load(feats))
    assert np.array_equal(shards(out), ref)
    m = json.loads((out / "manifest.json").read_text())
    assert (m["rows"], m["bits"], m["bytes_per_code"], m["modality"], m["complete"]) == (1000, 16, 2, "image", True)
    assert m["model"] == model_identity(run / "model") and m["features"]["shape"] == [1000, hasher.dims["image"]]
    assert [(c["start"], c["stop"]) for c in m["chunks"]] == [(0, 300), (300, 600), (600, 900), (900, 1000)]
    for c in m["chunks"]:
        import hashlib

        assert c["sha256"] == hashlib.sha256((out / c["file"]).read_bytes()).hexdigest()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"] + [c["file"] for c in m["chunks"]]
    logs = []
    encode_features(run, feats, "image", out, log=logs.append)  # nothing left to do
    assert logs == [f"{out}: every shard already encoded and checked; nothing to do"]


def test_dask_executor_writes_the_same_shards(run, feats, tmp_path):
    from crossmodal.experiments.executors import DaskExecutor

    pytest.importorskip("distributed")
    a = encode_features(run, feats, "image", tmp_path / "a", chunk_rows=256, **QUIET)
    with DaskExecutor(workers=1, processes=False, log=lambda *a: None) as ex:
        b = encode_features(run, feats, "image", tmp_path / "b", chunk_rows=256, executor=ex, **QUIET)
    from crossmodal.threads import apply_threads

    apply_threads(None)
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert [c["sha256"] for c in ma["chunks"]] == [c["sha256"] for c in mb["chunks"]]


def test_a_killed_encode_resumes_where_it_stopped(run, hasher, tmp_path):
    rng = np.random.default_rng(1)
    f = tmp_path / "big.npy"
    np.save(f, rng.standard_normal((6000, hasher.dims["image"])).astype(np.float32))
    out = tmp_path / "enc"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "crossmodal.cli", "encode", str(run), "--features", str(f),
                             "--modality", "image", "--out", str(out), "--chunk-rows", "30"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = 0
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                done = sum(c["sha256"] is not None for c in json.loads((out / "manifest.json").read_text())["chunks"])
            except (OSError, ValueError):
                done = 0
            if done >= 3:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the encode finished before it could be killed"
    assert (out / ".lock").is_file()  # as a kill leaves it
    logs = []
    encode_features(run, f, "image", out, log=logs.append)
    started = next(line for line in logs if line.startswith("encoding "))
    kept = int(started.split("(")[1].split(" already")[0])
    assert kept >= 3 and f"encoding {6000 - 30 * kept} of 6000 rows in {200 - kept} chunks" in started
    assert np.array_equal(shards(out), hasher.encode_image(np.load(f)))
    assert not (out / ".lock").exists() and not list(out.glob(".*tmp*"))


def test_a_missing_or_damaged_shard_is_one_line_naming_it(run, feats, tmp_path):
    out = encode_features(run, feats, "image", tmp_path / "enc", chunk_rows=300, **QUIET)
    shard = out / "shard-00001.npy"
    good = shard.read_bytes()
    shard.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(DataError, match=r"shard-00001.npy: damaged shard \(its SHA-256 differs"):
        EncodedCodes(out).verify()
    assert main(["index", str(out)]) == 2 and not (out / "index-flat.npz").exists()
    with pytest.raises(DataError, match="shard-00001.npy: damaged shard"):  # encode again refuses too
        encode_features(run, feats, "image", out, **QUIET)
    shard.unlink()
    with pytest.raises(DataError, match=r"shard-00001.npy: missing shard \(rows 300..600\)"):
        EncodedCodes(out).verify()
    logs = []
    encode_features(run, feats, "image", out, log=logs.append)  # a missing shard is encoded again
    assert any("shard-00001.npy: missing, its rows 300..600 are encoded again" in line for line in logs)
    assert shard.read_bytes() == good
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match=r"manifest.json: damaged \(not JSON"):
        EncodedCodes(out)


def test_inputs_are_validated_before_anything_is_written(run, hasher, feats, tmp_path):
    d = hasher.dims["image"]
    bad = {"wide.npy": np.zeros((10, d + 1), np.float32), "ints.npy": np.zeros((10, d), np.int32),
           "nan.npy": np.zeros((700, d), np.float32), "fortran.npy": np.asfortranarray(np.zeros((10, d), np.float32)),
           "flat.npy": np.zeros(d, np.float32)}
    bad["nan.npy"][612, 3] = np.nan
    for name, x in bad.items():
        np.save(tmp_path / name, x)
    cases = [("wide.npy", f"{d + 1} features per row but the model's image side takes {d}"),
             ("ints.npy", "int32 values; features are floats"), ("nan.npy", "row 612 holds a NaN or infinite value"),
             ("fortran.npy", "Fortran"), ("flat.npy", "2-D matrix"), ("none.npy", "file not found")]
    for name, msg in cases:
        with pytest.raises(DataError, match=msg):
            encode_features(run, tmp_path / name, "image", tmp_path / "out", chunk_rows=300, **QUIET)
        assert not (tmp_path / "out").exists(), name
    with pytest.raises(DataError, match="not a run folder"):
        encode_features(tmp_path, feats, "image", tmp_path / "out", **QUIET)
    with pytest.raises(DataError, match="--modality must be image or text"):
        encode_features(run, feats, "audio", tmp_path / "out", **QUIET)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="exists and is not an encode folder"):
        encode_features(run, feats, "image", tmp_path / "mine", **QUIET)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    out = encode_features(run, feats, "image", tmp_path / "enc", chunk_rows=300, **QUIET)
    with pytest.raises(DataError, match="another chunk_rows"):
        encode_features(run, feats, "image", out, chunk_rows=200, **QUIET)
    other = tmp_path / "other.npy"
    np.save(other, np.ones((1000, d), np.float32))
    with pytest.raises(DataError, match="another features"):
        encode_features(run, other, "image", out, **QUIET)
    assert main(["encode", str(run), "--features", str(tmp_path / "wide.npy"), "--modality", "image",
                 "--out", str(tmp_path / "cli")]) == 2 and not (tmp_path / "cli").exists()


def test_index_from_shards_or_a_run(run, hasher, feats, tmp_path):
    out = encode_features(run, feats, "image", tmp_path / "enc", chunk_rows=300, **QUIET)
    x = np.load(feats)
    ref = HammingIndex(16).add(hasher.encode_image(x))
    q = hasher.encode_image(x[[5, 650, 999]])
    assert main(["index", str(out)]) == 0
    flat = open_index(str(out / "index-flat.npz"))
    assert flat.ntotal == 1000 and flat.bits == 16
    assert flat.meta["model"] == model_identity(run / "model") and flat.meta["modality"] == "image"
    D, I = flat.search(q, 10)
    D0, I0 = ref.search(q, 10)
    assert np.array_equal(D, D0) and np.array_equal(I, I0)  # ids = rows of the feature file
    assert main(["index", str(out)]) == 2  # never written over
    for kind in ("ivf", "hnsw"):
        (uri,) = build_index(out, kind=kind, to=f"faiss:{tmp_path / kind}.npz", **QUIET)
        D, I = open_index(uri).search(q, 1)
        assert (D[:, 0] == 0).all() and (I[:, 0] >= 0).all()
    ivf = HammingIndex.load(tmp_path / "ivf.npz")
    assert ivf.kind == "ivf" and ivf.nlist == 32 and np.array_equal(ivf.ids, np.arange(1000))
    milvus = f"milvus-lite:{tmp_path / 'x.db'}"
    if importlib.util.find_spec("pymilvus") is None:
        with pytest.raises(DataError, match=r"pip install crossmodal\[milvus\]"):
            build_index(out, to=milvus, **QUIET)
    else:  # the serve issue's Milvus export reads the same shards: same neighbours as the flat index
        (uri,) = build_index(out, to=milvus, **QUIET)
        with open_index(uri) as m:
            assert m.ntotal == 1000 and m.bits == 16
            Dm, Im = m.search(q, 10)
        D0, _ = ref.search(q, 10)
        assert np.array_equal(Dm, D0) and (Im[:, 0] == [5, 650, 999]).all()
    written = build_index(run, kind="flat", **QUIET)
    assert [Path(w).relative_to(run).as_posix() for w in written] == ["indexes/image-flat.npz", "indexes/text-flat.npz"]
    mine = open_index(written[0])
    theirs = HammingIndex.load(run / "index-image.npz")
    assert mine.ntotal == theirs.ntotal and mine.meta["model"] == theirs.meta["model"]
    assert np.array_equal(mine.index.codes, theirs.codes) and np.array_equal(mine.index.ids, theirs.ids)
    with pytest.raises(DataError, match="with --to give --modality"):
        build_index(run, to=str(tmp_path / "both.npz"), **QUIET)
