"""Who is calling (bearer tokens -> owners), where the server may bind, and the request body cap."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "LOCAL_OWNER",
    "BodyLimit",
    "BrowserGuard",
    "TokenAuth",
    "bind_listener",
    "is_loopback",
    "owner_of",
]

#: the owner of every request to a server bound to loopback without tokens (the machine's user)
LOCAL_OWNER = "local"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: addresses only this machine can reach."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket bound before the app starts, so ``--port 0`` can say which port it got."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
        sock.set_inheritable(False)
    except OSError:
        sock.close()
        raise
    return sock


def owner_of(token: str) -> str:
    """A stable, non-secret name for a token's owner (what sessions and history are keyed by)."""
    return "t-" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:24]


class TokenAuth:
    """Bearer tokens: with none configured every caller is :data:`LOCAL_OWNER`; with some, one must match."""

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self.tokens = [t for t in (s.strip() for s in tokens) if t]
        for t in self.tokens:
            if len(t) < 8:
                raise ValueError("a token must be at least 8 characters long")

    @property
    def required(self) -> bool:
        return bool(self.tokens)

    def owner(self, authorization: str | None) -> str | None:
        """The caller's owner name, or None when a token is required and this header has no valid one."""
        if not self.tokens:
            return LOCAL_OWNER
        if not authorization:
            return None
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return None
        given = credential.strip().encode("utf-8")
        match = None
        for token in self.tokens:  # compare against every token: the time taken says nothing
            if hmac.compare_digest(given, token.encode("utf-8")):
                match = token
        return owner_of(match) if match is not None else None


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before the app reads it all."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refuse(send)
                    return
        seen = 0
        refused = False

        async def limited_receive() -> Any:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    raise _TooLarge()
            return message

        started = False

        async def tracking_send(message: Any) -> None:
            # Once the body ran over, whatever the app answers (it may have caught the error
            # and made a 400 of it) is replaced by the 413.
            nonlocal started
            if refused:
                if not started and message["type"] == "http.response.start":
                    started = True
                    await self._refuse(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        await _send_detail(send, 413, f"request body too large (this server accepts up to {self.max_bytes} bytes)")


class _TooLarge(Exception):
    pass


async def _send_detail(send: Any, status: int, detail: str) -> None:
    """Answer with ``status`` and the JSON body ``{"detail": detail}`` (ASGI, the app never sees it)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _host_name(host_header: str) -> str:
    """``127.0.0.1:8765`` -> ``127.0.0.1``; ``[::1]:8765`` -> ``::1``."""
    return (urlsplit("//" + host_header).hostname or "").lower()


class BrowserGuard:
    """ASGI middleware against other web sites reaching a local server through the user's browser.

    - A request whose ``Origin`` is not this server's own (another site's page calling it) is a 403.
    - Without tokens (a loopback server anyone on this machine may use), the ``Host`` header must
      name a loopback address: a DNS-rebinding page (evil.example resolving to 127.0.0.1) is a 403.
    """

    def __init__(self, app: Any, *, check_host: bool) -> None:
        self.app = app
        self.check_host = check_host

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            host = headers.get("host", "")
            why = None
            if self.check_host and not is_loopback(_host_name(host)):
                why = f"this server answers only to a loopback host name, not {host!r} (DNS rebinding guard)"
            origin = headers.get("origin")
            if why is None and origin is not None and origin != "null":
                parts = urlsplit(origin)
                if parts.netloc.lower() != host.lower():
                    why = f"requests from pages of another origin ({origin}) are refused"
            if why is not None:
                await _send_detail(send, 403, why)
                return
        await self.app(scope, receive, send)
