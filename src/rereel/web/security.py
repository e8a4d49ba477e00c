"""What keeps a local media server local: loopback by default, a token elsewhere, no path escapes,
capped uploads.

- Bound to loopback, the server still checks the Host header: a web page elsewhere can point a
  DNS name at 127.0.0.1 (DNS rebinding) and would otherwise read the archive through it.
- Bound to any other interface, every request needs the token (as ?token=, which then sets a
  cookie, or as `Authorization: Bearer`).
- WebSockets are not covered by the browser's same-origin rule, so their Origin is checked too.
"""

from __future__ import annotations

import hmac
import ipaddress
import shutil
from pathlib import Path

from fastapi import HTTPException, UploadFile
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "rereel_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1'; '[::1]:8000' -> '[::1]'."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: Host, token and WebSocket Origin checks before any route runs."""

    def __init__(self, app: ASGIApp, token: str | None, loopback_only: bool, max_body: int,
                 extra_hosts: tuple[str, ...] = ()):
        self.app = app
        self.max_body = max_body
        self.token = token
        self.loopback_only = loopback_only
        self.extra_hosts = set(extra_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        host = host_name(conn.headers.get("host", ""))
        problem = None
        if self.loopback_only and not (is_loopback(host) or host in self.extra_hosts):
            problem = (400, f"host {host!r} refused: this server answers only on loopback names")
        elif scope["type"] == "websocket" and not self._same_origin(conn):
            problem = (403, "WebSocket from another origin refused")
        elif self.token and not self._has_token(conn):
            problem = (401, "a token is required: open the URL the server printed (it carries ?token=...)")
        elif scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            # A page on another site can post forms to 127.0.0.1 (no CORS preflight for those):
            # writes are taken only from our own pages, or from clients that send no Origin.
            length = conn.headers.get("content-length", "")
            if not self._same_origin(conn) or conn.headers.get("sec-fetch-site") == "cross-site":
                problem = (403, "request from another site refused")
            # Refused before the body is read: Starlette would otherwise spool all of it to disk
            # first. Without a length (chunked) the size is unknown until read, so it is refused too.
            # With neither a length nor a transfer encoding there is no body (HTTP/1.1): `curl -X POST`.
            elif not length and "transfer-encoding" not in conn.headers:
                pass
            elif not length.isdigit():
                problem = (411, "requests with a body need a Content-Length")
            elif int(length) > self.max_body:
                problem = (413, f"request of {int(length) / 1e6:.1f} MB is over the {self.max_body / 1e6:g} MB upload cap")
        if problem is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": problem[1][:120]})
                return
            return await JSONResponse({"detail": problem[1]}, status_code=problem[0])(scope, receive, send)
        query_token = conn.query_params.get("token")
        if self.token and query_token and scope["type"] == "http":
            # First visit through the printed URL: remember the token in a cookie for the pages' requests.
            async def send_with_cookie(message):
                if message["type"] == "http.response.start":
                    cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)

            return await self.app(scope, receive, send_with_cookie)
        await self.app(scope, receive, send)

    def _has_token(self, conn: HTTPConnection) -> bool:
        given = conn.query_params.get("token") or conn.cookies.get(COOKIE) or ""
        auth = conn.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), self.token.encode())

    @staticmethod
    def _same_origin(conn: HTTPConnection) -> bool:
        origin = conn.headers.get("origin")
        if origin is None:  # not a browser (scripts, tests): the token and Host checks apply
            return True
        return origin.split("://", 1)[-1] == conn.headers.get("host", "")


def inside(path: Path, roots: list[Path]) -> bool:
    """True if `path`, with links resolved, lies inside one of `roots` (no '..' escapes)."""
    real = path.resolve()
    return any(real.is_relative_to(r.resolve()) for r in roots)


def refuse(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


def printable(name: str) -> str:
    """A name as an error line shows it: quoted when it holds a newline or another control character,
    so that a client's file name cannot break the message's one line."""
    return name if name.isprintable() else repr(name)


def save_upload(upload: UploadFile, dest: Path, max_bytes: int, allowed_suffixes: frozenset[str]) -> Path:
    """Copy an upload to `dest` (its suffix taken from the upload's name), refusing a wrong type or
    more than `max_bytes`; nothing is left behind on refusal."""
    name = Path(upload.filename or "")
    shown = printable(name.name or "upload")
    suffix = name.suffix.lower()
    if suffix not in allowed_suffixes:
        raise refuse(415, f"{shown}: type {printable(suffix) if suffix else '(none)'} not accepted; "
                          f"send one of {' '.join(sorted(allowed_suffixes))}")
    dest = dest.with_suffix(suffix)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    written = 0
    try:
        with open(tmp, "wb") as f:
            while chunk := upload.file.read(1 << 20):
                written += len(chunk)
                if written > max_bytes:
                    raise refuse(413, f"{shown}: larger than the {max_bytes / 1e6:g} MB upload cap")
                f.write(chunk)
        if written == 0:
            raise refuse(400, f"{shown}: empty file")
        shutil.move(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest

