"""Running the app: who may be served (:func:`check_bind`), the thread counts a server uses
(:func:`serving_threads`), and :func:`serve`, which loads the runs, binds the socket, prints
``serving on http://HOST:PORT`` and answers until interrupted (uvicorn, one process)."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket

from crossmodal.errors import CrossmodalError
from crossmodal.serve.models import Limits

TOKEN_ENV = "CROSSMODAL_SERVE_TOKEN"
# Measured with benchmarks/bench_serve.py (docs/src/serve.md): one query is one small pass, so
# a second FAISS / torch thread per request only competes with the other requests' threads.
SERVING_THREADS = 1


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, insecure_public: bool) -> None:
    """Refuse to listen beyond this machine without a token, unless ``insecure_public`` says so."""
    if token is not None and len(token) < 16:
        raise CrossmodalError("--token: use at least 16 characters (e.g. `python -c \"import secrets; "
                              "print(secrets.token_urlsafe())\"`)")
    if not is_loopback(host) and token is None and not insecure_public:
        raise CrossmodalError(f"--host {host}: other machines could reach the runs; give --token TOKEN (or "
                              f"${TOKEN_ENV}), or --insecure-public to serve without one")


def serving_threads(setting) -> int:
    """Apply the thread count of a server: ``auto`` -> :data:`SERVING_THREADS` per request for
    torch, the BLAS and FAISS' OpenMP; a number N -> N. Returns the count."""
    from crossmodal.threads import apply_threads, resolve_setting

    s = resolve_setting(setting)
    n = SERVING_THREADS if s == "auto" else int(s)
    apply_threads(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        pass
    return n


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); a one-line error when taken."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # proto IPPROTO_TCP: asyncio turns Nagle off only on sockets that say so (with proto 0, a
    # response's header and body writes wait for the client's delayed ACK: 40 ms a request)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), int(port)))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = exc.strerror or exc
        raise CrossmodalError(f"cannot listen on {host}:{port} ({why}); choose another --port") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(run_dirs, host: str = "127.0.0.1", port: int = 8000, index_uris=(), token: str | None = None,
          insecure_public: bool = False, data_root=None, threads=None, access_log: bool = False,
          limits: Limits = Limits(), ready=None) -> None:
    """Serve ``run_dirs`` until interrupted. Everything is checked before the socket opens: the
    bind policy, every run (model, data, featurizers offline, indexes); then ``ready`` gets the
    line ``serving on http://HOST:PORT``."""
    import uvicorn

    from crossmodal.serve.app import create_app
    from crossmodal.serve.service import SearchService

    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    check_bind(host, token, insecure_public)
    n = serving_threads(threads)
    service = SearchService.open(run_dirs, data_root=data_root, index_uris=index_uris, threads=n)
    try:
        app = create_app(service, token=token, loopback_only=is_loopback(host), limits=limits)
        sock = bind(host, port)
        config = uvicorn.Config(app, log_level=logging.INFO if access_log else logging.WARNING,
                                access_log=access_log, server_header=False, timeout_keep_alive=5)
        (ready or (lambda line: print(line, flush=True)))(f"serving on {url_of(sock)}")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        service.close()
