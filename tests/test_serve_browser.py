"""The search page in a real browser: Debian's chromium, driven by Playwright, against a server on
a free 127.0.0.1 port. A typed sentence shows ``crossmodal query``'s hits in its order, a dropped
picture too, a click on a hit searches with it, and two ticked runs stand side by side. The last
test saves the screenshot that docs/src/serve.md shows.

Skipped, with the reason, only where playwright or chromium cannot be imported or launched
(`.ci/run` installs both)."""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="crossmodal serve needs the [serve] extra (fastapi)")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (pip install "
                                                             "playwright)")

from crossmodal.serve import SearchService  # noqa: E402
from crossmodal.serve.app import create_app  # noqa: E402
from tests.serve_helpers import folder_hashes, query_command, running_server, toy_runs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "src" / "img" / "serve.png"
CHROMIUM = os.environ.get("CROSSMODAL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
K = 12


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return toy_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def server(runs):
    service = SearchService.open(runs)
    with running_server(create_app(service)) as url:
        yield url
    service.close()


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium"),
                                  args=ARGS)
        except sync_api.Error as exc:
            pytest.skip(f"chromium does not launch here: {str(exc).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture
def web(chromium, server):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
    outside = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
                  else (outside.append(route.request.url), route.abort()))
    pg = context.new_page()
    pg.goto("/")
    pg.wait_for_selector("#runs input")
    yield pg
    context.close()
    assert not outside, f"the page reached beyond its server: {outside}"


def until(pg, js: str, arg=None, timeout: float = 30.0) -> None:
    """Poll ``js`` (a function of ``arg``) in the page until it is true. Through ``evaluate``, which
    the page's Content-Security-Policy allows (``wait_for_function`` evaluates a string: refused)."""
    deadline = time.monotonic() + timeout
    while not pg.evaluate(js, arg):
        assert time.monotonic() < deadline, f"the page never got to: {js}"
        pg.wait_for_timeout(50)


def wait_columns(pg, n: int = 1) -> None:
    until(pg, "(n) => document.querySelectorAll('#columns .column .hits, #columns .column .error').length >= n", n)


def column_hits(pg, run: str) -> list[tuple[str, int]]:
    cards = pg.locator(f'.column[data-run="{run}"] .hit')
    return [(cards.nth(i).get_attribute("data-id"), int(cards.nth(i).get_attribute("data-distance")))
            for i in range(cards.count())]


def type_query(pg, text: str) -> None:
    pg.fill("#k", str(K))
    pg.fill("#text", text)
    pg.press("#text", "Enter")
    wait_columns(pg)


def test_typed_sentence_shows_the_query_commands_hits(web, runs):
    type_query(web, "a red circle")
    assert column_hits(web, runs[0].name) == query_command(runs[0], "--text", "a red circle", "-k", str(K))
    img = web.locator(f'.column[data-run="{runs[0].name}"] .hit img').first
    img.wait_for()
    until(web, "(img) => img.complete && img.naturalWidth === 32", img.element_handle())
    # every thumbnail at the top of its card, whatever the length of the captions below it
    offsets = web.locator(f'.column[data-run="{runs[0].name}"] .hit').evaluate_all(
        "cards => cards.map(c => c.querySelector('img').getBoundingClientRect().top - c.getBoundingClientRect().top)")
    assert len(offsets) == K and max(offsets) - min(offsets) < 0.5, offsets
    assert "sentence" in web.inner_text("#query") and "a red circle" in web.inner_text("#query")


def test_dropped_image_shows_the_query_commands_hits(web, runs, tmp_path):
    from PIL import Image

    from crossmodal.data.sources.toy import make_toy

    ds = make_toy()
    png = tmp_path / "drop.png"
    Image.fromarray(ds.extras["pixels"][ds.split.query[11]]).save(png)
    data = base64.b64encode(png.read_bytes()).decode()
    web.fill("#k", str(K))
    web.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "drop.png", {type: "image/png"}));
        const zone = document.querySelector("#drop");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", data)
    wait_columns(web)
    assert "your image" in web.inner_text("#query")
    assert column_hits(web, runs[0].name) == query_command(runs[0], "--image", str(png), "-k", str(K))
    assert web.locator(".hits.texts .snippet").count() == K  # image -> text: snippets, not thumbnails


def test_clicking_a_hit_searches_with_it(web, runs, server):
    import httpx

    type_query(web, "a blue square")
    first = web.locator(f'.column[data-run="{runs[0].name}"] .hit').first
    item = first.get_attribute("data-id")
    first.click()
    until(web, "(id) => document.querySelector('#query').innerText.includes(id) && "
                "document.querySelectorAll('#columns .hits.texts').length >= 1", item)
    want = httpx.post(f"{server}/api/search", json={"item": item, "part": "database", "modality": "image", "k": K,
                                                    "run": runs[0].name}).json()
    assert column_hits(web, runs[0].name) == [(h["id"], h["distance"]) for h in want["hits"]]
    assert f"P@{K}" in web.inner_text(f'.column[data-run="{runs[0].name}"] .status')
    marked = web.locator(f'.column[data-run="{runs[0].name}"] .hit.relevant').count()
    assert marked == sum(h["relevant"] for h in want["hits"])


def test_two_runs_side_by_side_and_the_screenshot(web, runs):
    before = [folder_hashes(r) for r in runs]
    web.check(f'#runs input[value="{runs[1].name}"]')
    type_query(web, "a red circle")
    wait_columns(web, 2)
    names = web.locator(".column").evaluate_all("cols => cols.map(c => c.dataset.run)")
    assert names == [runs[0].name, runs[1].name]
    for run in runs:
        assert column_hits(web, run.name) == query_command(run, "--text", "a red circle", "-k", str(K))
    boxes = [web.locator(f'.column[data-run="{r.name}"]').bounding_box() for r in runs]
    assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"]  # columns, left to right
    until(web, "() => [...document.images].every(i => i.complete)")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    tmp = SCREENSHOT.with_suffix(".tmp.png")
    web.screenshot(path=str(tmp), full_page=False)
    if same_picture(tmp, SCREENSHOT):
        tmp.unlink()  # a few anti-aliased pixels apart: the committed picture stays as it is
    else:
        os.replace(tmp, SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000
    assert [folder_hashes(r) for r in runs] == before


def same_picture(a: Path, b: Path, tolerance: float = 0.001) -> bool:
    """Both PNGs exist, have one size and differ in at most ``tolerance`` of their pixels."""
    import numpy as np
    from PIL import Image

    if not b.is_file():
        return False
    x, y = (np.asarray(Image.open(f).convert("RGB"), dtype=np.int16) for f in (a, b))
    return x.shape == y.shape and float(np.any(x != y, axis=-1).mean()) <= tolerance
