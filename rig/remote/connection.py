"""The companion's WebSocket to the host: dial out, stay connected, reconnect.

A thread of its own connects to ``<host URL>/rig/relay`` with the token as a bearer header,
hands every frame to ``on_frame`` (on that thread) and, after each (re)connection, calls
``on_connect``. When the host goes away (closed, unreachable, no answer to pings within
``ping_s``) it says so and dials again, waiting ``first_s``, doubling up to ``max_s``. A refused
token stops it: no retry will change that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from rig.remote.wire import MAX_FRAME, RELAY_ROUTE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconnect:
    """Waits between attempts to reach the host."""

    first_s: float = 0.25
    max_s: float = 5.0
    ping_s: float = 5.0  # ping interval; no pong within it ends the connection


def relay_url(host_url: str) -> str:
    """``http(s)://host:port[/prefix]`` → ``ws(s)://host:port[/prefix]/rig/relay``.

    Raises:
        ValueError: not an http:// or https:// URL.
    """
    base = host_url.rstrip("/")
    for scheme, ws in (("http://", "ws://"), ("https://", "wss://")):
        if base.startswith(scheme):
            return ws + base[len(scheme) :] + RELAY_ROUTE
    raise ValueError(f"the host URL {host_url!r} must start with http:// or https://")


class HostConnection:
    """One WebSocket to the host, kept open.

    Args:
        host_url: the host's UI address (``http://gpu-box:7860``).
        token: the host's token.
        on_frame: called with each text frame from the host.
        on_connect: called after each (re)connection, before frames are read.
        say: where status lines go (the companion prints them).
    """

    def __init__(
        self,
        host_url: str,
        token: str,
        on_frame: Callable[[str], None],
        on_connect: Callable[[], None],
        say: Callable[[str], None],
        reconnect: Reconnect | None = None,
    ) -> None:
        self.url = relay_url(host_url)
        self.token = token
        self.on_frame, self.on_connect, self.say = on_frame, on_connect, say
        self.reconnect = reconnect or Reconnect()
        self.connected = threading.Event()
        self.refused: str | None = None  # why the host refused us, once it did
        self.connections = 0  # successful connections so far
        self._ws: ClientConnection | None = None
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rig-companion-ws", daemon=True)

    def start(self) -> HostConnection:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            ws.close()
        self._thread.join(timeout=5)

    def send(self, frame: str) -> bool:
        """Send a frame now; False when there is no connection (the frame is dropped)."""
        ws = self._ws
        if ws is None:
            return False
        try:
            with self._send_lock:
                ws.send(frame)
        except (ConnectionClosed, OSError):
            return False
        return True

    def _run(self) -> None:
        wait = self.reconnect.first_s
        while not self._stop.is_set():
            if self._session():
                wait = self.reconnect.first_s
            if self.refused or self._stop.wait(wait):
                return
            wait = min(self.reconnect.max_s, wait * 2)

    def _session(self) -> bool:
        """Connect once and read until the connection ends; True when it had connected."""
        try:
            with connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                open_timeout=self.reconnect.ping_s,
                ping_interval=self.reconnect.ping_s,
                ping_timeout=self.reconnect.ping_s,
                max_size=MAX_FRAME,
            ) as ws:
                self._serve(ws)
        except InvalidStatus as error:
            status = error.response.status_code
            if status in (401, 403):
                self.refused = f"the host refused the token (HTTP {status})"
                self.say(f"companion: {self.refused}: use the one `rig perform --remote` printed")
            else:
                self.say(f"companion: the host answered HTTP {status}; trying again")
            return False
        except (OSError, InvalidHandshake, TimeoutError) as error:
            log.debug("cannot reach %s: %s", self.url, error)
            return False
        if not self._stop.is_set():
            self.say("companion: lost the host; the device keeps its loops; reconnecting")
        return True

    def _serve(self, ws: ClientConnection) -> None:
        """Read frames until the connection ends."""
        self.connections += 1
        self._ws = ws
        self.connected.set()
        self.say(f"companion: connected to {self.url}")
        try:
            self.on_connect()
            for frame in ws:
                self.on_frame(frame if isinstance(frame, str) else frame.decode("utf-8", "replace"))
        except (ConnectionClosed, OSError):
            pass
        finally:
            self._ws = None
            self.connected.clear()
