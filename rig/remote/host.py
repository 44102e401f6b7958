"""The GPU host's end of a two-machine rig (``rig perform --remote``).

Two routes on the UI's own server, so one port (one SSH tunnel) carries everything:

- ``GET /rig/takes/<session>/<file>.wav`` (and ``HEAD``): the take folder's WAVs and sidecars,
  read-only, with range requests (Starlette's ``FileResponse``), nothing outside the folder;
- ``/rig/relay``: a WebSocket to each companion. The link's messages to the device go out on it
  (a ``/rig/load`` with the take's relative path, size and SHA-256), the device's messages come
  back on it into the link, in order, on a thread of the relay's own (like the link's UDP
  receiver).

Why a WebSocket: it is one TCP connection that the companion dials out on (NAT and cloud
notebooks allow that direction), reliable and ordered, carried by any HTTP tunnel or HTTPS proxy
next to the UI, and authenticated by the same token header. The server's token gate guards both
routes; in remote mode it asks loopback clients too, because a tunnel arrives on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

from rig.link import RetryPolicy
from rig.lograte import LogLimiter
from rig.remote.wire import (
    CARRIES_FILE,
    RELAY_ROUTE,
    TAKES_ROUTE,
    Digests,
    RelayMessage,
    TakeFile,
    WireError,
    decode,
    safe_relative,
)

log = logging.getLogger(__name__)
# The link's re-sends through a companion, which downloads the take before the device can answer:
# 0.25 s doubling to 2 s, 20 sends (about 36 s, longer than the companion's own fetch attempts).
REMOTE_RETRY = RetryPolicy(attempts=20)
QUEUE_LIMIT = 1000  # frames waiting for one companion; beyond it the oldest are dropped
Deliver = Callable[[str, tuple[Any, ...]], None]


@dataclass
class _Companion:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[str]
    peer: str


class Relay:
    """Companions connected to this host; the link's outlet.

    Args:
        take_root: the take folder (files are served and named relative to it).
        say: where "a companion connected / left" goes (``rig perform`` prints it).
    """

    def __init__(self, take_root: Path, say: Callable[[str], None] = log.info) -> None:
        self.take_root = Path(take_root).resolve()
        self.say = say
        self._deliver: Deliver | None = None
        self._companions: list[_Companion] = []
        self._lock = threading.Lock()
        self._digests = Digests()
        self._inbound = ThreadPoolExecutor(1, thread_name_prefix="rig-relay-in")
        self._limited = LogLimiter(log)

    def attach(self, deliver: Deliver) -> None:
        """Where the companions' messages go: the link's ``handle_message``."""
        self._deliver = deliver

    @property
    def companions(self) -> int:
        """Companions connected now."""
        with self._lock:
            return len(self._companions)

    def close(self) -> None:
        """Stop delivering (the server closes the sockets)."""
        self._inbound.shutdown(wait=False, cancel_futures=True)

    # -- to the companions --------------------------------------------------------------------
    def send(self, address: str, args: tuple[Any, ...]) -> None:
        """Send one device message to every companion (the link's outlet; any thread; never
        raises). A ``/rig/load`` or ``/rig/clip`` whose file cannot be read is dropped with a
        log line (the link re-sends, then reports the request failed)."""
        spec = CARRIES_FILE.get(address)
        try:
            file = self.take_file(Path(args[spec.path])) if spec is not None else None
        except (OSError, ValueError) as error:
            self._limited.warning("file", "cannot relay %s: %s", address, error)
            return
        frame = RelayMessage(address, tuple(args), file).encode()
        with self._lock:
            companions = list(self._companions)
        if not companions:
            self._limited.warning("none", "no companion connected: %s not delivered", address)
        for companion in companions:
            with contextlib.suppress(RuntimeError):  # its loop closed: it is leaving
                companion.loop.call_soon_threadsafe(_put, companion.queue, frame)

    def take_file(self, path: Path) -> TakeFile:
        """``path``'s facts for the wire, its name relative to the take folder.

        Raises:
            ValueError: the file is outside the take folder.
            OSError: it cannot be read.
        """
        resolved = path.resolve()
        if not resolved.is_relative_to(self.take_root):
            raise ValueError(f"{resolved} is outside the take folder {self.take_root}")
        facts = self._digests.of(resolved)
        return TakeFile(resolved.relative_to(self.take_root).as_posix(), facts.size, facts.sha256)

    # -- the routes ----------------------------------------------------------------------------
    def mount(self, app: FastAPI) -> None:
        """Add the take route and the relay WebSocket to ``app``."""
        app.add_api_route(
            TAKES_ROUTE + "/{path:path}",
            self._serve_take,
            methods=["GET", "HEAD"],
            include_in_schema=False,
        )
        app.add_api_websocket_route(RELAY_ROUTE, self._serve_companion)

    async def _serve_take(self, path: str) -> FileResponse:
        full = (self.take_root / path).resolve() if safe_relative(path) else None
        if full is None or not full.is_relative_to(self.take_root) or not full.is_file():
            raise HTTPException(404, f"no take file {path!r} in the take folder")
        media = "audio/wav" if full.suffix == ".wav" else "application/json"
        return FileResponse(full, media_type=media)

    async def _serve_companion(self, websocket: WebSocket) -> None:
        await websocket.accept()
        client = websocket.client
        peer = f"{client.host}:{client.port}" if client else "?"
        companion = _Companion(asyncio.get_running_loop(), asyncio.Queue(), peer)
        with self._lock:
            self._companions.append(companion)
        self.say(f"companion {peer} connected")
        writer = asyncio.create_task(_write(websocket, companion.queue))
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await websocket.receive_text()
                await loop.run_in_executor(self._inbound, self._receive, frame, peer)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            with self._lock:
                self._companions.remove(companion)
            writer.cancel()
            self.say(f"companion {peer} left")

    def _receive(self, frame: str, peer: str) -> None:
        try:
            message = decode(frame)
        except WireError as error:
            self._limited.warning("frame", "dropped a frame from companion %s: %s", peer, error)
            return
        if self._deliver is not None:
            self._deliver(message.address, message.args)


def _put(queue: asyncio.Queue[str], frame: str) -> None:
    if queue.qsize() >= QUEUE_LIMIT:
        queue.get_nowait()  # a companion that stopped reading: keep the newest
    queue.put_nowait(frame)


async def _write(websocket: WebSocket, queue: asyncio.Queue[str]) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            await websocket.send_text(await queue.get())
