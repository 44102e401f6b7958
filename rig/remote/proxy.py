"""The host's performer page and stage view, served on the laptop (``rig companion``).

Every HTTP request to the companion's UI port is sent on to the host with the token added as a
bearer header and the answer streamed back as it arrives (the pages' event streams included).
Gradio builds its links from ``X-Forwarded-Host``, so the pages point at the laptop's address,
not the host's. A projector can then hang off the laptop. The proxy serves loopback only unless
it has a token itself (the same rule as the UI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

# Headers that describe one hop, not the message (RFC 9110 §7.6.1), and the browser's own
# credentials for the laptop, which the host must not see.
HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host", "authorization", "cookie", "content-length"}
)  # fmt: skip
MAX_BODY = 1024 * 1024  # bytes: the pages upload nothing bigger (the UI's own limit)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def proxy_app(host_url: str, token: str) -> Starlette:
    """An ASGI app forwarding every request to ``host_url`` with ``token``."""
    base = host_url.rstrip("/")

    async def forward(request: Request) -> Response:
        client: httpx.AsyncClient = request.app.state.client
        url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS]
        headers += [
            ("authorization", f"Bearer {token}"),
            ("x-forwarded-host", request.headers.get("host", "127.0.0.1")),
            ("x-forwarded-proto", request.url.scheme),
        ]
        body = await request.body()
        outgoing = client.build_request(request.method, url, headers=headers, content=body)
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.TransportError as error:
            return PlainTextResponse(
                f"rig companion: the host at {base} does not answer ({error}); the device keeps "
                "its loops\n",
                status_code=502,
            )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
        kept.pop("content-encoding", None)  # aiter_bytes below decodes it
        return StreamingResponse(
            answer.aiter_bytes(),
            status_code=answer.status_code,
            headers=kept,
            background=BackgroundTask(answer.aclose),
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None)) as client:
            app.state.client = client  # streams (the pages' events) have no read timeout
            yield

    routes = [Route("/{path:path}", forward, methods=METHODS)]
    return Starlette(routes=routes, lifespan=lifespan, max_body_size=MAX_BODY)
