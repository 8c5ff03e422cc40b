"""MilvusIndex on an embedded Milvus Lite file: the distances of FAISS exact search (ids equal up to
a tie at the k-th place), the ids given to add, meta, the modes (nothing written in "r", nothing
overwritten in "w"), one-line errors, no process left behind; and a served run searching its codes
there through :meth:`Searcher.attach`, with the hits of its own FAISS index."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="Milvus indexes need the [milvus] extra (pymilvus)")
pytest.importorskip("milvus_lite", reason="Milvus Lite files need the [milvus] extra (milvus-lite)")

from crossmodal.errors import DataError  # noqa: E402
from crossmodal.retrieval import HammingIndex  # noqa: E402
from crossmodal.retrieval.milvus import MilvusIndex, parse_uri  # noqa: E402
from crossmodal.runs import Searcher  # noqa: E402
from tests.serve_helpers import toy_runs  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # milvus-lite imports pkg_resources


def random_codes(rng, n: int, bits: int) -> np.ndarray:
    bits01 = rng.integers(0, 2, (n, bits), dtype=np.uint8)
    return np.packbits(bits01, axis=1)


def assert_same_search(D, I, D_ref, I_ref) -> None:
    """Equal distances; equal ids except inside the tie at the last distance of each row."""
    np.testing.assert_array_equal(D, D_ref)
    for d, i, i_ref in zip(D, I, I_ref):
        sure = d < d[-1]
        np.testing.assert_array_equal(i[sure], i_ref[sure])
        assert np.all(np.diff(d) >= 0)


def milvus_children() -> list[str]:
    """Command lines of this process' child processes that run Milvus Lite."""
    me = str(os.getpid())
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fields[1] == me and "milvus" in cmd:
            out.append(cmd)
    return out


@pytest.mark.parametrize("bits", [20, 64])
def test_distances_equal_faiss_exact_search(tmp_path, bits):
    rng = np.random.default_rng(bits)
    X, Q = random_codes(rng, 3000, bits), random_codes(rng, 9, bits)
    ids = np.arange(3000, dtype=np.int64) * 7 + 11  # any int64 ids come back as given
    with MilvusIndex(f"milvus-lite:{tmp_path}/codes.db", bits=bits, mode="w") as m:
        m.add(X[:1000], ids[:1000]).add(X[1000:], ids[1000:])
        m.set_meta({"model": "sha256:abc", "modality": "image"})
        assert m.ntotal == 3000 and m.bits == bits
        D, I = m.search(Q, 25)
    ref = HammingIndex(bits, backend="numpy").add(X)
    D_ref, I_ref = ref.search(Q, 25)
    assert D.dtype == np.int32 and I.dtype == np.int64 and D.shape == I.shape == (9, 25)
    assert_same_search(D, I, D_ref, ids[I_ref])
    with MilvusIndex(f"milvus-lite:{tmp_path}/codes.db", mode="r") as m:  # reopened: bits, meta, rows kept
        assert (m.bits, m.ntotal, m.meta) == (bits, 3000, {"model": "sha256:abc", "modality": "image"})
        D2, I2 = m.search(Q[0], 25)  # one query as a row
        np.testing.assert_array_equal(D2, D[:1])
        np.testing.assert_array_equal(I2, I[:1])
    assert milvus_children() == []


def test_k_over_ntotal_pads_like_hamming_index(tmp_path):
    rng = np.random.default_rng(0)
    X = random_codes(rng, 5, 16)
    with MilvusIndex(f"milvus-lite:{tmp_path}/few.db", bits=16, mode="w") as m:
        m.add(X, np.arange(5))
        D, I = m.search(X[:2], 8)
    D_ref, I_ref = HammingIndex(16).add(X).search(X[:2], 8)
    np.testing.assert_array_equal(D, D_ref)
    np.testing.assert_array_equal(I, I_ref)
    assert (I[:, 5:] == -1).all() and (D[:, 5:] == 17).all()


def test_modes_never_overwrite_and_read_writes_nothing(tmp_path):
    missing = tmp_path / "none.db"
    with pytest.raises(DataError, match="no such Milvus Lite file"):
        MilvusIndex(f"milvus-lite:{missing}", mode="r")
    assert not missing.exists() and list(tmp_path.iterdir()) == []
    uri = f"milvus-lite:{tmp_path}/one.db"
    with MilvusIndex(uri, bits=8, mode="w") as m:
        m.add(np.zeros((3, 1), np.uint8), np.arange(3))
    with pytest.raises(DataError, match="never overwrites"):
        MilvusIndex(uri, bits=8, mode="w")
    with MilvusIndex(uri, mode="r") as m:
        with pytest.raises(DataError, match="read-only"):
            m.add(np.zeros((1, 1), np.uint8), [9])
        with pytest.raises(DataError, match="read-only"):
            m.set_meta({})
    with pytest.raises(DataError, match="holds 8-bit codes, not 16"):
        MilvusIndex(uri, bits=16, mode="a")
    with MilvusIndex(uri, mode="a") as m:
        m.add(np.ones((2, 1), np.uint8), [3, 4])
    with MilvusIndex(uri, mode="r") as m:
        assert m.ntotal == 5
    assert milvus_children() == []


@pytest.mark.parametrize("uri,message", [
    ("milvus-lite:codes.sqlite", "named like codes.db"),
    ("milvus-lite:/tmp/a name with spaces.db", "named like codes.db"),
    ("milvus-lite:/no/such/folder/codes.db", "does not exist"),
    ("milvus://host-without-port", "not a Milvus URI"),
    ("milvus://h:19530/bad-name", "must be letters"),
    ("milvus-lite:x.db", "mode must be one of"),
])
def test_bad_uris_and_modes_are_one_line_errors(uri, message):
    with pytest.raises(DataError, match=message) as e:
        MilvusIndex(uri, bits=8, mode="x" if "mode" in message else "w")
    assert "\n" not in str(e.value)


def test_server_uris_parse():
    assert parse_uri("milvus://10.1.2.3:19530") == ("server", "http://10.1.2.3:19530", "crossmodal_codes")
    assert parse_uri("milvus://db.lab:19530/nuswide_64b/") == ("server", "http://db.lab:19530", "nuswide_64b")


def test_bad_codes_and_k(tmp_path):
    with MilvusIndex(f"milvus-lite:{tmp_path}/c.db", bits=16, mode="w") as m:
        with pytest.raises(DataError, match="expected packed uint8 codes"):
            m.add(np.zeros((2, 3), np.uint8), [0, 1])
        with pytest.raises(DataError, match="ids must be"):
            m.add(np.zeros((2, 2), np.uint8), [0])
        with pytest.raises(DataError, match="k must be"):
            m.search(np.zeros((1, 2), np.uint8), 0)


def test_missing_pymilvus_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(DataError, match=r"pip install crossmodal\[milvus\]"):
        MilvusIndex(f"milvus-lite:{tmp_path}/c.db", bits=8, mode="w")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return toy_runs(tmp_path_factory)[0]


def export(searcher: Searcher, uri: str, modality: str, split: bool = True) -> None:
    """The run's database codes of ``modality`` into ``uri``, ids = database positions."""
    db = searcher.ds.part("database")
    codes = searcher.hasher.encode(modality, db.image if modality == "image" else db.text_dense())
    meta = {"model": searcher.identity, "modality": modality}
    if split:
        meta["split_hash"] = searcher.spec.split_hash
    with MilvusIndex(uri, bits=searcher.hasher.bits, mode="w") as m:
        m.add(codes, np.arange(len(codes)))
        m.set_meta(meta)


def test_a_run_searches_its_codes_in_milvus_as_in_its_own_index(run, tmp_path):
    pytest.importorskip("fastapi", reason="the served half needs the [serve] extra")
    from fastapi.testclient import TestClient

    from crossmodal.serve import SearchService
    from crossmodal.serve.app import create_app

    own = Searcher(run)
    uri = f"milvus-lite:{tmp_path}/run.db"
    export(own, uri, "image")
    served = Searcher(run)
    index = MilvusIndex(uri, mode="r")
    try:
        assert served.attach(index, where=uri) == "image"
        for text in ("a red circle", "blue square", "a green cross and a yellow triangle"):
            t1, D1, I1 = own.search(text=text, k=50)
            t2, D2, I2 = served.search(text=text, k=50)
            assert t1 == t2 == "image"
            assert_same_search(D2[None], I2[None], D1[None], I1[None])
        client = TestClient(create_app(SearchService({"run": served})), base_url="http://localhost")
        x = client.get("/api/runs").json()[0]
        assert x["index"] == {"image": "milvus-lite", "text": "run"}
        ans = client.post("/api/search", json={"text": "a red circle", "k": 20}).json()
        t, D, I = own.search(text="a red circle", k=20)
        assert [h["distance"] for h in ans["hits"]] == D.tolist()
        assert all(h["image_url"] and h["labels"] for h in ans["hits"])
    finally:
        index.close()
    assert milvus_children() == []


def test_attach_refuses_another_models_codes_and_describes_other_collections(run, tmp_path):
    s = Searcher(run)
    uri = f"milvus-lite:{tmp_path}/other.db"
    export(s, uri, "text", split=False)  # a collection of its own: ids are not database positions
    with MilvusIndex(uri, mode="r") as index:
        index.meta = dict(index.meta, model="sha256:someone-else")
        with pytest.raises(DataError, match="not this run's"):
            s.attach(index, where=uri)
        index.meta = dict(index.meta, model=s.identity)
        assert s.attach(index, where=uri) == "text"
        item = str(s.ds.data.ids[s.ds.split.query[0]])
        target, D, I, _ = s.search_item("query", item, "image", 5)
        hits = s.hits(target, D, I)
        assert [h.id for h in hits] == [str(i) for i in I] and all(h.row is None and not h.labels for h in hits)
