"""Serving speed: a served model whose database is padded to 1,000,000 codes, text queries through
the HTTP API from 1, 8 and 32 concurrent loopback clients, FAISS and Milvus Lite side by side.

    python benchmarks/bench_serve.py [--codes 1000000] [--bits 64] [--requests 1600] [--no-milvus]

A toy model (cca-itq, or --run RUN) is trained into a temporary folder; its database codes are
padded with random codes to --codes rows, searched as one more collection (hits are row ids).
Each server is a child process (this script with --child: ``crossmodal.serve`` on 127.0.0.1, a
free port); the clients are threads here, each with one keep-alive connection, sending a fixed
number of requests, so the run stops by itself. Nothing but 127.0.0.1 is contacted.

FAISS runs twice at 8 clients, with 1 and 2 threads per request (FAISS' OpenMP, torch, BLAS):
``crossmodal serve`` uses the faster count by default (``SERVING_THREADS``). Milvus Lite's own
process uses its own threads.

Writes ``benchmarks/results/serve.json`` and ``serve.md`` (the table docs/src/serve.md shows).
Last line: ``serve: N codes, 8 clients: p50 X ms, p99 Y ms, Z q/s`` (FAISS, default threads).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
COLOURS = ("red", "green", "blue", "yellow", "purple")
SHAPES = ("circle", "square", "triangle", "cross")


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        parts = [f"a {rng.choice(COLOURS)} {rng.choice(SHAPES)}" for _ in range(int(rng.integers(1, 3)))]
        out.append(" and ".join(parts))
    return out


# -- the server (child process) ------------------------------------------------------------
def child(args) -> None:
    import uvicorn

    from crossmodal.retrieval import HammingIndex
    from crossmodal.runs import Searcher
    from crossmodal.serve import SearchService
    from crossmodal.serve.app import create_app
    from crossmodal.serve.server import bind, serving_threads, url_of

    threads = serving_threads(args.threads)
    s = Searcher(args.run)
    if args.child == "faiss":
        index = HammingIndex(s.hasher.bits).add(np.load(args.codes_file))
        index.meta = {"model": s.identity, "modality": "image"}
        where = "faiss (padded)"
    else:
        from crossmodal.retrieval.milvus import MilvusIndex

        where = f"milvus-lite:{args.milvus_file}"
        index = MilvusIndex(where, mode="r")
    s.attach(index, where=where)
    service = SearchService({"bench": s.load_all()}, threads=threads)
    sock = bind("127.0.0.1", 0)
    print(f"serving on {url_of(sock)}", flush=True)
    uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning", access_log=False)).run(sockets=[sock])


def start_server(args, backend: str, threads: int, run: Path, codes_file: Path, milvus_file: Path):
    cmd = [sys.executable, __file__, "--child", backend, "--run", str(run), "--codes-file", str(codes_file),
           "--milvus-file", str(milvus_file), "--threads", str(threads)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=dict(os.environ, WANDB_MODE="offline"))
    line = p.stdout.readline().strip()
    if not line.startswith("serving on http://127.0.0.1:"):
        p.kill()
        raise SystemExit(f"the {backend} server did not start: {line!r}")
    return p, int(line.rsplit(":", 1)[1])


# -- the clients ---------------------------------------------------------------------------
def connect(port: int) -> http.client.HTTPConnection:
    """A keep-alive connection to 127.0.0.1:port with Nagle off (http.client sends the headers and
    the body in two writes: with Nagle on, the body waits for the server's delayed ACK, 40 ms)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def post(conn: http.client.HTTPConnection, body: bytes) -> dict:
    conn.request("POST", "/api/search", body=body, headers={"content-type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"status {r.status}: {data[:200]!r}")
    return json.loads(data)


def load(port: int, clients: int, requests: int, k: int) -> dict:
    """``requests`` searches split over ``clients`` threads; latency percentiles and throughput."""
    texts = sentences(requests, seed=clients)
    per = [texts[i::clients] for i in range(clients)]
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []

    def worker(i: int) -> None:
        conn = connect(port)
        try:
            for text in per[i]:
                body = json.dumps({"text": text, "k": k}).encode()
                t = time.perf_counter()
                post(conn, body)
                lat[i].append(time.perf_counter() - t)
        except Exception as exc:  # reported, and the run fails below
            errors.append(str(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} client(s) failed: {errors[0]}")
    ms = np.concatenate([np.asarray(x) for x in lat]) * 1000
    return {"clients": clients, "requests": int(ms.size), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "qps": ms.size / wall}


def hits(port: int, text: str, k: int) -> list[tuple[int, int]]:
    conn = connect(port)
    try:
        return [(h["distance"], h["index"]) for h in post(conn, json.dumps({"text": text, "k": k}).encode())["hits"]]
    finally:
        conn.close()


# -- the benchmark -------------------------------------------------------------------------
def prepare(args, tmp: Path):
    """The run (trained here unless --run), its padded database codes (a .npy), the Milvus file."""
    from crossmodal.runs import Searcher, train_run

    run = Path(args.run) if args.run else train_run("cca-itq", "toy", args.bits, out=tmp, tracker="none",
                                                    run_dir=tmp / "cca-itq-toy", log=lambda *_: None)
    s = Searcher(run)
    db = s.ds.part("database")
    own = s.hasher.encode_image(db.image)
    rng = np.random.default_rng(0)
    pad = rng.integers(0, 256, size=(args.codes - len(own), own.shape[1]), dtype=np.uint8)
    codes = np.concatenate([own, pad])
    codes_file = tmp / "codes.npy"
    np.save(codes_file, codes)
    milvus_file = tmp / "bench.db"
    insert_s = None
    if not args.no_milvus:
        from crossmodal.retrieval.milvus import MilvusIndex

        t = time.perf_counter()
        with MilvusIndex(f"milvus-lite:{milvus_file}", bits=s.hasher.bits, mode="w") as m:
            m.add(codes, np.arange(len(codes)))
            m.set_meta({"model": s.identity, "modality": "image"})
        insert_s = time.perf_counter() - t
    return run, s.hasher.bits, codes_file, milvus_file, insert_s


def measure(args, backend: str, threads: int, client_counts, files) -> list[dict]:
    run, codes_file, milvus_file = files
    p, port = start_server(args, backend, threads, run, codes_file, milvus_file)
    try:
        load(port, 4, 80, args.k)  # warm-up
        rows = []
        for c in client_counts:
            n = args.requests if c > 1 else max(1, args.requests // 4)
            r = {"backend": backend, "threads": threads, **load(port, c, n, args.k)}
            print(f"{backend:12s} {threads} thr {c:3d} clients: p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                  f"{r['qps']:7.1f} q/s  ({r['requests']} requests)", flush=True)
            rows.append(r)
        check = [hits(port, t, 100) for t in sentences(5, seed=99)]
        return rows, check
    finally:
        p.terminate()
        p.wait(timeout=30)


def markdown(result: dict) -> str:
    lines = [f"{result['codes']:,} codes of {result['bits']} bits; {result['machine']}, load average "
             f"{result['load_average'][0]} before and {result['load_average'][1]} after; "
             f"k = {result['k']}; Milvus Lite insert of the codes: "
             + (f"{result['milvus_insert_s']:.0f} s" if result["milvus_insert_s"] else "not run"),
             "", "| index | threads / request | clients | requests | p50 ms | p99 ms | q/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['backend']} | {r['threads']} | {r['clients']} | {r['requests']} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {r['qps']:.0f} |")
    if result.get("same_distances") is not None:
        lines += ["", f"Milvus Lite's hits have FAISS' distances (top 100 of 5 queries): {result['same_distances']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codes", type=int, default=1_000_000)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--requests", type=int, default=1600, help="requests per load level (a quarter for 1 client)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--run", default=None, help="serve this run instead of training a toy one")
    ap.add_argument("--no-milvus", action="store_true", help="FAISS only")
    ap.add_argument("--out", default=str(RESULTS), help="folder of serve.json / serve.md")
    ap.add_argument("--child", choices=("faiss", "milvus"), help=argparse.SUPPRESS)
    ap.add_argument("--codes-file", help=argparse.SUPPRESS)
    ap.add_argument("--milvus-file", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    from crossmodal.serve.server import SERVING_THREADS

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="crossmodal-bench-serve-"))
    try:
        run, bits, codes_file, milvus_file, insert_s = prepare(args, tmp)
        print(f"{args.codes:,} codes x {bits} bits; Milvus Lite insert: "
              f"{'%.1f s' % insert_s if insert_s else 'skipped'}", flush=True)
        files = (run, codes_file, milvus_file)
        rows, faiss_hits = measure(args, "faiss", SERVING_THREADS, (1, 8, 32), files)
        other = 2 if SERVING_THREADS == 1 else 1
        rows += measure(args, "faiss", other, (8,), files)[0]
        same = None
        if not args.no_milvus:
            milvus_rows, milvus_hits = measure(args, "milvus", 1, (1, 8, 32), files)
            rows += milvus_rows
            same = all([d for d, _ in a] == [d for d, _ in b] for a, b in zip(faiss_hits, milvus_hits))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"codes": args.codes, "bits": bits, "k": args.k, "milvus_insert_s": insert_s, "rows": rows,
              "same_distances": same, "serving_threads": SERVING_THREADS,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("serve.json", json.dumps(result, indent=2)), ("serve.md", markdown(result))):
        tmp_file = out / f".{name}.tmp"
        tmp_file.write_text(text + ("\n" if name.endswith("json") else ""), encoding="utf-8")
        os.replace(tmp_file, out / name)
    print(f"results: {out / 'serve.json'}, {out / 'serve.md'}")
    if same is not None:
        print(f"Milvus Lite distances equal FAISS: {same}")
    r8 = next(r for r in rows if r["backend"] == "faiss" and r["threads"] == SERVING_THREADS and r["clients"] == 8)
    print(f"serve: {args.codes} codes, 8 clients: p50 {r8['p50_ms']:.1f} ms, p99 {r8['p99_ms']:.1f} ms, "
          f"{r8['qps']:.0f} q/s")


if __name__ == "__main__":
    main()
