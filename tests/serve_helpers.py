"""What the serve tests share: two toy runs trained once per session, the hits ``crossmodal
query`` prints, a folder's content hashes, and a real server on a free loopback port."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path

from crossmodal.cli import main

RUNS = (("cca-itq", 16), ("lsh", 16))  # two methods on the same toy data: columns side by side
_LINE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\S+)\s")


def toy_runs(tmp_path_factory) -> list[Path]:
    """Two finished toy runs (folders ``cca-itq-toy-16b`` and ``lsh-toy-16b``), trained once per
    test session under the session's base temp."""
    from crossmodal.runs import finished, train_run

    out = tmp_path_factory.getbasetemp() / "serve-runs"
    runs = []
    for method, bits in RUNS:
        run = out / f"{method}-toy-{bits}b"
        if not finished(run):
            train_run(method, "toy", bits, out=out, run_dir=run, tracker="none", log=lambda *_: None)
        runs.append(run)
    return runs


def query_command(run: Path, *args: str) -> list[tuple[str, int]]:
    """``[(id, hamming distance)]`` in the order ``crossmodal query RUN ARGS`` prints them."""
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["query", str(run), *args]) == 0
    hits = []
    for line in buf.getvalue().splitlines()[1:]:
        m = _LINE.match(line)
        if m:
            hits.append((m.group(3), int(m.group(2))))
    return hits


def folder_hashes(folder: Path) -> dict:
    """``{relative path: sha256}`` of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def running_server(app):
    """Serve ``app`` with uvicorn on 127.0.0.1 on a free port in a thread; yields its base URL."""
    import uvicorn

    from crossmodal.serve.server import bind, url_of

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
