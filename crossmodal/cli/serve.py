"""``crossmodal serve``: an HTTP API and a search page over trained runs (extra ``[serve]``)."""

from __future__ import annotations

import importlib.util

from crossmodal.cli.common import add_runtime
from crossmodal.errors import CrossmodalError

NAME = "serve"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="serve trained runs over HTTP: a JSON API and a search page",
        description="Load each run once (model, data, featurizers, index) and answer searches by sentence, image "
                    "or dataset item at /api/search, with a page at / that shows several runs side by side. "
                    "Listens on 127.0.0.1 only unless --host says otherwise, which needs --token.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN", help="run folders to serve (the first is the default)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--index", action="append", default=[], metavar="URI",
                   help="search this index instead of a run's own FAISS file: faiss:PATH, milvus-lite:PATH.db or "
                        "milvus://HOST:PORT[/COLLECTION]; it goes to the run whose model made it (repeatable)")
    p.add_argument("--token", default=None,
                   help="require `Authorization: Bearer TOKEN` on every request (default $CROSSMODAL_SERVE_TOKEN); "
                        "needed for any --host but this machine")
    p.add_argument("--insecure-public", action="store_true",
                   help="listen beyond this machine without a token (anyone who reaches the port can search)")
    p.add_argument("--data-root", default=None,
                   help="the data moved: its new place (the file/folder of a path dataset, else the source's folder)")
    add_runtime(p)
    return p


def run(args) -> int:
    missing = [m for m in ("fastapi", "uvicorn", "python_multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise CrossmodalError(f"serve needs FastAPI, uvicorn and python-multipart ({missing[0]} is missing); "
                              "pip install crossmodal[serve]")
    from crossmodal.serve import serve

    if not 0 <= args.port <= 65535:
        raise CrossmodalError(f"--port {args.port}: must be in 0..65535")
    serve(args.run_dirs, host=args.host, port=args.port, index_uris=args.index, token=args.token,
          insecure_public=args.insecure_public, data_root=args.data_root, threads=getattr(args, "threads", None),
          access_log=bool(getattr(args, "verbose", False)))
    return 0
