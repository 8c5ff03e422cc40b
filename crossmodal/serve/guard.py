"""The outer wall of the app (an ASGI middleware, :class:`Guard`), in the order it checks:

1. the ``Host`` header is one the server answers to (on a loopback address: localhost,
   127.0.0.1, [::1] only, so a web page elsewhere cannot reach it through DNS rebinding);
2. the bearer token, where the server has one: ``Authorization: Bearer TOKEN`` on every request,
   or the cookie the page gets when opened once as ``/?token=TOKEN`` (HttpOnly, SameSite=Strict);
3. the body cap (a ``Content-Length`` over it, or a body that grows past it: 413);
4. anything the app raised that no handler turned into an answer becomes a JSON 400 with one
   line (the traceback goes to the server's log, never to the client).

Every refusal is ``{"error": "..."}`` with a 4xx status.
"""

from __future__ import annotations

import hmac
import json
import logging
from urllib.parse import parse_qs

log = logging.getLogger("crossmodal.serve")

COOKIE = "crossmodal_token"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer")]


class BodyTooLarge(Exception):
    pass


async def send_error(send, status: int, message: str, extra_headers=()) -> None:
    """Answer ``{"error": message}`` with ``status``."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *SECURITY_HEADERS, *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _host_name(host: str) -> str:
    """``localhost:8000`` -> ``localhost``; ``[::1]:8000`` -> ``[::1]``."""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cookie(headers: dict, name: str) -> str | None:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class Guard:
    """ASGI middleware: allowed hosts, bearer token, body cap, last-resort error answer."""

    def __init__(self, app, token: str | None = None, loopback_only: bool = True, max_body: int = 16 << 20):
        self.app, self.token, self.loopback_only, self.max_body = app, token, loopback_only, int(max_body)

    def _token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if self.loopback_only and _host_name(host) not in LOOPBACK_HOSTS:
            await send_error(send, 400, f"host {host!r} is not served here (the server answers to localhost only)")
            return
        set_cookie = ()
        if self.token is not None:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            bearer = auth[7:] if auth.lower().startswith("bearer ") else None
            from_url = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
            if self._token_ok(from_url):
                set_cookie = ((b"set-cookie", f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()),)
            elif not (self._token_ok(bearer) or self._token_ok(_cookie(headers, COOKIE))):
                await send_error(send, 401, "this server needs its token: send `Authorization: Bearer TOKEN`, "
                                 "or open the page once as /?token=TOKEN", ((b"www-authenticate", b"Bearer"),))
                return
        try:
            length = int(headers.get(b"content-length", b"0"))
        except ValueError:
            await send_error(send, 400, "Content-Length is not a number")
            return
        if length > self.max_body:
            await send_error(send, 413, f"request body of {length:,} bytes is over the {self.max_body:,}-byte limit")
            return
        await self._answer(scope, receive, send, set_cookie)

    async def _answer(self, scope, receive, send, set_cookie) -> None:
        started = False
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge()
            return message

        async def guarded_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS, *set_cookie]
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await send_error(send, 413, f"request body is over the {self.max_body:,}-byte limit")
        except Exception as exc:  # the last line of defence: never a 5xx, never a traceback to the client
            log.exception("unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_error(send, 400, f"the request could not be answered ({type(exc).__name__}); "
                                 "the server's log has the details")
