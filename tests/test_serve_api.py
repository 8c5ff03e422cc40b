"""``crossmodal serve``'s API through FastAPI's TestClient: the hits of ``crossmodal query`` in its
order, item queries with relevance and P@k, thumbnails, runs, the token, hosts and caps, a fuzz
of bad requests (each a one-line JSON 4xx, the server still answering, no file changed), and the
command itself in a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="crossmodal serve needs the [serve] extra (fastapi)")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")

from fastapi.testclient import TestClient  # noqa: E402

from crossmodal.cli import main  # noqa: E402
from crossmodal.errors import CrossmodalError, DataError  # noqa: E402
from crossmodal.retrieval.labels import relevance  # noqa: E402
from crossmodal.runs import Searcher, query_run  # noqa: E402
from crossmodal.serve import Limits, SearchService, check_bind  # noqa: E402
from crossmodal.serve.app import create_app  # noqa: E402
from tests.serve_helpers import folder_hashes, query_command, toy_runs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "a-test-token-of-some-length"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return toy_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def service(runs):
    s = SearchService.open(runs)
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(service):
    return TestClient(create_app(service), base_url="http://localhost")


@pytest.fixture(scope="module")
def query_png(tmp_path_factory):
    """A query picture: a toy query item's pixels as a PNG file."""
    from PIL import Image

    from crossmodal.data.sources.toy import make_toy

    ds = make_toy()
    path = tmp_path_factory.mktemp("png") / "query.png"
    Image.fromarray(ds.extras["pixels"][ds.split.query[3]]).save(path)
    return path


def hits_of(answer: dict) -> list[tuple[str, int]]:
    return [(h["id"], h["distance"]) for h in answer["hits"]]


def test_searcher_answers_as_query_run_does(runs, query_png):
    s = Searcher(runs[0])
    for text, image in (("a red circle", None), (None, str(query_png))):
        got = s.search(text=text, image=image, k=25)
        want = query_run(runs[0], text=text, image=image, k=25)[:3]
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], want[2])


@pytest.mark.parametrize("text", ["a red circle", "blue square and yellow triangle", "green"])
def test_text_hits_are_the_query_commands_in_its_order(client, runs, text):
    for i, run in enumerate(runs):
        r = client.post("/api/search", json={"text": text, "k": 40, "run": run.name})
        assert r.status_code == 200, r.text
        ans = r.json()
        assert ans["run"] == run.name and ans["query"]["direction"] == "t2i"
        assert hits_of(ans) == query_command(run, "--text", text, "-k", "40")
        assert all(h["image_url"].startswith("/api/items/database/") for h in ans["hits"])


def test_uploaded_image_hits_are_the_query_commands(client, runs, query_png):
    r = client.post("/api/search", files={"image": ("q.png", query_png.read_bytes(), "image/png")},
                    data={"k": "15", "run": runs[1].name})
    assert r.status_code == 200, r.text
    ans = r.json()
    assert ans["query"]["kind"] == "image" and ans["query"]["direction"] == "i2t"
    assert hits_of(ans) == query_command(runs[1], "--image", str(query_png), "-k", "15")
    assert all(isinstance(h["text"], str) and h["text"] for h in ans["hits"])  # text hits carry their caption


def test_item_query_marks_relevance_and_precision(client, service, runs):
    s = service.searchers[runs[0].name]
    ds = s.ds
    row = int(ds.split.query[7])
    item = str(ds.data.ids[row])
    r = client.post("/api/search", json={"item": item, "part": "query", "modality": "image", "k": 30})
    assert r.status_code == 200, r.text
    ans = r.json()
    q = ans["query"]
    assert q["kind"] == "item" and q["direction"] == "i2t" and q["target"] == "text"
    rows = [int(np.flatnonzero(ds.data.ids == h["id"])[0]) for h in ans["hits"]]
    marks = relevance(ds.data.labels[[row]], ds.data.labels[rows])[0]
    assert [h["relevant"] for h in ans["hits"]] == marks.tolist()
    assert q["precision"] == pytest.approx(marks.sum() / 30) and 0 < q["precision"] <= 1
    names = ds.data.meta["label_names"]
    assert q["labels"] == [names[j] for j in np.flatnonzero(ds.data.labels[row])]
    # the same search by hand: the item's stored image features, coded and searched in the text index
    codes = s.hasher.encode_image(np.asarray(ds.data.image[[row]]))
    D, I = s.index("text").search(codes, 30)
    assert [h["index"] for h in ans["hits"]] == I[0].tolist()
    assert [h["distance"] for h in ans["hits"]] == D[0].tolist()


def test_directions_and_item_modality(client, runs):
    r = client.post("/api/search", json={"text": "a red circle", "direction": "t2t", "k": 5})
    assert r.status_code == 200 and r.json()["query"]["target"] == "text"
    assert all("text" in h for h in r.json()["hits"])
    r = client.post("/api/search", json={"text": "a red circle", "direction": "i2t"})
    assert r.status_code == 400 and "starts from image" in r.json()["error"]
    r = client.post("/api/search", json={"item": "toy-00001", "part": "database"})
    assert r.status_code == 400 and "needs its modality" in r.json()["error"]
    r = client.post("/api/search", json={"item": "toy-00001", "part": "database", "direction": "t2i", "k": 3})
    assert r.status_code == 200 and r.json()["query"]["modality"] == "text"


def test_runs_describe_method_bits_dataset_conventions_and_map(client, runs):
    r = client.get("/api/runs")
    assert r.status_code == 200
    got = {x["name"]: x for x in r.json()}
    assert list(got) == [run.name for run in runs]
    for run in runs:
        report = json.loads((run / "report.json").read_text())
        x = got[run.name]
        assert (x["method"], x["bits"], x["dataset"]) == (report["meta"]["method"], 16, "toy")
        assert x["mAP"] == {d: report["results"][d]["mAP@all"] for d in ("i2t", "t2i")}
        assert x["conventions"] == report["conventions"] and x["database_codes"] == "per-modality"
        assert x["pixels"] and x["queryable"] == ["image", "text"] and x["index"] == {"image": "run", "text": "run"}
        assert str(run.parent) not in json.dumps(x)  # names, never the server's paths


def test_items_are_thumbnails_or_text(client, service, runs):
    from PIL import Image
    import io

    ds = service.searchers[runs[0].name].ds
    row = int(ds.split.database[5])
    item = str(ds.data.ids[row])
    r = client.get(f"/api/items/database/{item}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(r.content))), ds.extras["pixels"][row])
    r = client.get(f"/api/items/database/{item}", params={"modality": "text", "run": runs[1].name})
    assert r.status_code == 200 and r.json()["text"] == str(ds.extras["captions"][row])
    r = client.get(f"/api/items/query/{item}")  # a database item is not in the query part
    assert r.status_code == 404 and "no query item" in r.json()["error"]


def test_healthz_page_and_offline_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert asset.startswith("/static/") and client.get(asset).status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "http" not in re.sub(r"https?://(localhost|127\.0\.0\.1)", "", docs.text)
    spec = client.get("/openapi.json").json()
    assert {"/api/search", "/api/runs", "/api/items/{part}/{item_id}", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/api/search"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/SearchRequest"
    fields = spec["components"]["schemas"]["SearchRequest"]["properties"]
    assert {"text", "item", "k", "run", "direction"} <= set(fields)


def test_token_on_every_request(service):
    c = TestClient(create_app(service, token=TOKEN), base_url="http://localhost")
    for path in ("/healthz", "/api/runs", "/", "/docs"):
        r = c.get(path)
        assert r.status_code == 401 and "token" in r.json()["error"]
    assert c.get("/api/runs", headers={"Authorization": "Bearer wrong-token-of-length"}).status_code == 401
    assert c.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    page = c.get("/", params={"token": TOKEN})  # the page opened once with the token: a cookie for the rest
    assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
    assert c.post("/api/search", json={"text": "a red circle"}).status_code == 200


def test_host_header_guard_and_bind_policy(client):
    r = client.get("/api/runs", headers={"host": "attacker.example:8000"})
    assert r.status_code == 400 and "localhost" in r.json()["error"]
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.5"):
        check_bind(host, None, False)
    with pytest.raises(CrossmodalError, match="--token"):
        check_bind("0.0.0.0", None, False)
    with pytest.raises(CrossmodalError, match="16 characters"):
        check_bind("0.0.0.0", "short", False)
    check_bind("0.0.0.0", TOKEN, False)
    check_bind("0.0.0.0", None, True)


def test_caps_on_body_text_and_k(service):
    c = TestClient(create_app(service, limits=Limits(max_body=4096, max_json=1024)), base_url="http://localhost")
    r = c.post("/api/search", content=b"x" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 413

    def chunks():  # no Content-Length: the cap counts the bytes as they come
        for _ in range(10):
            yield b"y" * 1000

    r = c.post("/api/search", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]
    r = c.post("/api/search", json={"text": "red " * 400})
    assert r.status_code == 413


def test_unexpected_failure_is_a_4xx_without_traceback(service, monkeypatch):
    c = TestClient(create_app(service), base_url="http://localhost")

    def broken(*a, **k):
        raise RuntimeError("internal detail\nTraceback")

    monkeypatch.setattr(service, "search", broken)
    r = c.post("/api/search", json={"text": "a red circle"})
    assert r.status_code == 400 and r.json() == {
        "error": "the request could not be answered (RuntimeError); the server's log has the details"}


def _png(size=(8, 8)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


FUZZ = [
    ("post", {"content": b"{", "headers": {"content-type": "application/json"}}),
    ("post", {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}}),
    ("post", {"content": b"[1, 2]", "headers": {"content-type": "application/json"}}),
    ("post", {"content": b"null", "headers": {"content-type": "application/json"}}),
    ("post", {"json": {}}),
    ("post", {"json": {"text": 5}}),
    ("post", {"json": {"text": ["a", "list"]}}),
    ("post", {"json": {"text": "red", "k": "10"}}),
    ("post", {"json": {"text": "red", "k": 2.5}}),
    ("post", {"json": {"text": "red", "k": True}}),
    ("post", {"json": {"text": "red", "k": 10 ** 12}}),
    ("post", {"json": {"text": "red", "k": 1001}}),
    ("post", {"json": {"text": "red", "k": -1}}),
    ("post", {"json": {"text": "red", "k": 0}}),
    ("post", {"json": {"text": "x" * 2_000_000}}),
    ("post", {"json": {"text": "   "}}),
    ("post", {"json": {"text": "zebra"}}),
    ("post", {"json": {"text": "red", "item": "toy-00001"}}),
    ("post", {"json": {"text": "red", "path": "/etc/passwd"}}),
    ("post", {"json": {"text": "red", "run": "../../etc"}}),
    ("post", {"json": {"text": "red", "run": "nope"}}),
    ("post", {"json": {"text": "red", "direction": "x2y"}}),
    ("post", {"json": {"item": "../../etc/passwd", "modality": "image"}}),
    ("post", {"json": {"item": "/etc/passwd", "part": "train", "modality": "image"}}),
    ("post", {"json": {"item": "toy-00001", "modality": "audio"}}),
    ("post", {"content": b"text=red", "headers": {"content-type": "application/x-www-form-urlencoded"}}),
    ("post", {"content": b"red circle", "headers": {"content-type": "text/plain"}}),
    ("post", {"content": b"red circle"}),
    ("post", {"content": b"<xml/>", "headers": {"content-type": "application/xml"}}),
    ("post", {"files": {"image": ("q.png", _png()[:40], "image/png")}}),
    ("post", {"files": {"image": ("q.png", b"GIF89a" + b"\x00" * 20, "image/gif")}}),
    ("post", {"files": {"image": ("q.txt", b"not an image at all", "text/plain")}}),
    ("post", {"files": {"image": ("q.png", _png(), "image/png")}, "data": {"k": "many"}}),
    ("post", {"files": {"image": ("q.png", _png(), "image/png")}, "data": {"k": "5000"}}),
    ("post", {"files": {"image": ("q.png", _png(), "image/png")}, "data": {"path": "/etc/passwd"}}),
    ("post", {"files": {"image": ("q.png", _png(), "image/png")}, "data": {"direction": "t2i"}}),
    ("post", {"files": {"other": ("q.png", _png(), "image/png")}}),
    ("post", {"data": {"k": "3"}, "files": {"image": ("a.png", _png(), "image/png"),
                                             "image2": ("b.png", _png(), "image/png")}}),
    ("post", {"content": b"--xyz\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=xyz"}}),
    ("get", {"url": "/api/items/database/..%2F..%2F..%2Fetc%2Fpasswd"}),
    ("get", {"url": "/api/items/database/%2Fetc%2Fpasswd"}),
    ("get", {"url": "/api/items/train/toy-00001"}),
    ("get", {"url": "/api/items/database/toy-00001?run=../x"}),
    ("get", {"url": "/api/items/database/toy-00001?modality=audio"}),
    ("get", {"url": "/static/../../setup.cfg"}),
    ("get", {"url": "/static/..%2F..%2Fsetup.cfg"}),
    ("get", {"url": "/etc/passwd"}),
    ("get", {"url": "/api/search"}),
    ("delete", {"url": "/api/runs"}),
    ("put", {"url": "/api/search", "json": {"text": "red"}}),
]


@pytest.mark.parametrize("method,kw", FUZZ, ids=[f"{i}" for i in range(len(FUZZ))])
def test_fuzz_every_bad_request_is_a_one_line_json_4xx(client, runs, method, kw):
    before = [folder_hashes(r) for r in runs]
    kw = dict(kw)
    url = kw.pop("url", "/api/search")
    r = getattr(client, method)(url, **kw)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error"} and body["error"] and "\n" not in body["error"]
    assert "Traceback" not in body["error"] and "/tmp/" not in body["error"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert [folder_hashes(r) for r in runs] == before


def test_a_featurizer_that_cannot_load_offline_is_refused_at_start(runs, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(runs[0], run)
    feats = json.loads((run / "model" / "featurizers.json").read_text())
    feats["text"] = {"kind": "hf-text", "model": "nobody/no-such-model"}
    (run / "model" / "featurizers.json").write_text(json.dumps(feats))
    with pytest.raises(DataError, match="cannot load"):
        SearchService.open([run])
    assert main(["serve", str(run), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "cannot load" in err and len(err.strip().splitlines()) == 1 and "serving on" not in err


def test_serve_refuses_a_public_host_without_token(runs, capsys):
    assert main(["serve", str(runs[0]), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--token" in err and len(err.strip().splitlines()) == 1


def test_the_command_serves_until_stopped(runs):
    import httpx

    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline")
    p = subprocess.Popen([sys.executable, "-m", "crossmodal.cli", "serve", str(runs[0]), str(runs[1]), "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline().strip()
        m = re.fullmatch(r"serving on (http://127\.0\.0\.1:\d+)", line)
        assert m, (line, p.stderr.read() if p.poll() is not None else "")
        url = m.group(1)
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{url}/healthz", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        r = httpx.post(f"{url}/api/search", json={"text": "a blue square", "k": 12, "run": runs[1].name}, timeout=30)
        assert hits_of(r.json()) == query_command(runs[1], "--text", "a blue square", "-k", "12")
    finally:
        p.terminate()
        p.wait(timeout=30)


def test_the_demo_ends_with_the_serve_command_for_its_run(tmp_path, capsys):
    assert main(["demo", "--method", "lsh", "--bits", "16", "--out", str(tmp_path), "--tracker", "none"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    m = re.search(r"crossmodal serve (\S+)$", last)
    assert m and Path(m.group(1)).parent == tmp_path and (Path(m.group(1)) / "report.json").is_file()


def test_an_index_uri_answers_as_the_runs_own_index(client, runs, tmp_path):
    """``serve --index URI``: the run's image codes exported by ``crossmodal index`` into another
    FAISS file give the hits of the run's own index; an index of another model is refused."""
    from crossmodal.runs import build_index

    (uri,) = build_index(runs[0], modality="image", to=f"faiss:{tmp_path / 'image.npz'}", log=lambda *a: None)
    other = SearchService.open([runs[0]], index_uris=[uri])
    try:
        got = TestClient(create_app(other), base_url="http://localhost").post(
            "/api/search", json={"text": "a red circle", "k": 30})
    finally:
        other.close()
    want = client.post("/api/search", json={"text": "a red circle", "k": 30, "run": runs[0].name})
    assert got.status_code == want.status_code == 200, got.text
    assert hits_of(got.json()) == hits_of(want.json()) and len(hits_of(want.json())) == 30
    (foreign,) = build_index(runs[1], modality="image", to=f"faiss:{tmp_path / 'b.npz'}", log=lambda *a: None)
    with pytest.raises(DataError, match="no served run has"):
        SearchService.open([runs[0]], index_uris=[foreign])
