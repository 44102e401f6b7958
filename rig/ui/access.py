"""Who may use the web UI: this computer always; any other only with the token.

An ASGI middleware in front of the pages, their API and their event streams. A client on a
loopback address passes, unless loopback is not trusted (remote mode: a tunnel arrives there).
Any other must present ``ui.token`` as ``?token=`` (which then sets a cookie, so links and the
page's own requests work), the ``rig_token`` cookie, or an ``Authorization: Bearer`` header, else
it gets 401 (a WebSocket is closed). Comparisons are constant-time.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from rig.config import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
COOKIE = "rig_token"


def new_token() -> str:
    """A random token for a UI served beyond this computer."""
    return secrets.token_urlsafe(16)


def client_host(scope: Scope) -> str:
    """The connecting client's address ("" when unknown)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def is_local(host: str) -> bool:
    """A loopback client: this computer."""
    return is_loopback(host)


def gate(app: ASGIApp, host: str, token: str, trust_loopback: bool = True) -> ASGIApp:
    """``app`` as served on ``host``: behind a :class:`TokenGate` when there is a token.

    Raises:
        ValueError: no token, and the app would be served beyond loopback or must not trust it.
    """
    if token:
        return TokenGate(app, token, trust_loopback)
    if not is_loopback(host):
        raise ValueError(
            f"serving on {host} (beyond this computer) needs a token: set ui.token / RIG_TOKEN"
        )
    if not trust_loopback:
        raise ValueError("remote mode needs a token for every client: set ui.token / RIG_TOKEN")
    return app


class TokenGate:
    """The middleware; ``token`` must be non-empty. ``trust_loopback``: let this computer in
    without it."""

    def __init__(self, app: ASGIApp, token: str, trust_loopback: bool = True) -> None:
        if not token:
            raise ValueError("a UI beyond this computer needs a token (ui.token / RIG_TOKEN)")
        self.app = app
        self.token = token
        self.trust_loopback = trust_loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or (
            self.trust_loopback and is_local(client_host(scope))
        ):
            await self.app(scope, receive, send)
            return
        offered, from_query = self._offered(scope)
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            await self._refuse(scope, send)
            return
        if from_query and scope["type"] == "http":
            send = self._with_cookie(send)
        await self.app(scope, receive, send)

    def _offered(self, scope: Scope) -> tuple[str, bool]:
        """The token the request carries, and whether it came in the query string."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], True
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(headers.get("cookie", ""))
        return (cookie[COOKIE].value if COOKIE in cookie else ""), False

    def _with_cookie(self, send: Send) -> Send:
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        return sending

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        body = b"rig: this page needs its token (open the address rig perform printed)\n"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
