"""``rig companion URL --token T``: the Live laptop's end of a two-machine rig.

To the device the companion is the rig: it listens on the rig's UDP port (``osc.listen_port``)
and sends to the device's (``osc.host``/``osc.port``), with the same messages. Between the two it
relays over one WebSocket to the host (:mod:`rig.remote.connection`):

- device → host: every valid OSC message, in order; the last ``/rig/hello`` is said again after
  each reconnection, so a host that restarted sends the folder and every slot back;
- host → device: ``/rig/load`` (and ``/rig/clip``) is held until its take is downloaded into the
  companion's own take folder (:mod:`rig.remote.download`) and then forwarded with the path
  rewritten there. Repeats of a request the host sends while it waits for the device's answer
  start no second download; a newer load for the same slot wins over one still downloading. A
  take that cannot be fetched is answered ``/rig/error`` so the host reports it. ``/rig/folder``
  names the companion's folder; everything else passes unchanged.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from rig.config import OscConfig
from rig.link import bind_rig_port, encode
from rig.lograte import LogLimiter
from rig.osc import OscError, decode
from rig.remote.connection import HostConnection, Reconnect
from rig.remote.download import FetchError, FetchPolicy, FetchReport, fetch_take
from rig.remote.wire import CARRIES_FILE, TAKES_ROUTE, FileArgs, RelayMessage, WireError
from rig.remote.wire import decode as decode_frame

log = logging.getLogger(__name__)
READY_KEPT = 256  # downloaded loads remembered for the host's re-sends


class Companion:
    """The laptop side.

    Args:
        host_url: the host's UI address (``http://127.0.0.1:7861`` through an SSH tunnel).
        token: the host's token.
        osc: the device's host and port, and the rig port the device sends to.
        take_root: the companion's own take folder (the device's).
        say: where status lines go.
    """

    def __init__(
        self,
        host_url: str,
        token: str,
        osc: OscConfig,
        take_root: Path,
        say: Callable[[str], None] = print,
        fetch: FetchPolicy | None = None,
        reconnect: Reconnect | None = None,
    ) -> None:
        self.host_url = host_url.rstrip("/")
        self.osc = osc
        self.take_root = Path(take_root).resolve()
        self.say = say
        self.fetch_policy = fetch or FetchPolicy()
        self.http = httpx.Client(headers={"Authorization": f"Bearer {token}"})
        self.host = HostConnection(host_url, token, self._from_host, self._on_connect, say,
                                   reconnect)  # fmt: skip
        self.reports: dict[int, FetchReport] = {}  # req_id → how its take was fetched
        self._hello: tuple[Any, ...] | None = None
        self._ready: dict[int, tuple[Any, ...]] = {}  # req_id → the rewritten message's args
        self._fetching: set[int] = set()
        self._latest: dict[int, int] = {}  # slot → newest load's req_id
        self._lock = threading.Lock()
        self._downloads = ThreadPoolExecutor(2, thread_name_prefix="rig-companion-fetch")
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._receiver = threading.Thread(target=self._receive_loop, name="rig-companion-udp",
                                          daemon=True)  # fmt: skip
        self._limited = LogLimiter(log)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Companion:
        """Bind the rig's UDP port and start dialling the host.

        Raises:
            OSError: the port is taken (a rig on this laptop already has it).
        """
        self.take_root.mkdir(parents=True, exist_ok=True)
        self._sock = bind_rig_port(self.osc)
        self._receiver.start()
        self.host.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.host.close()
        self._downloads.shutdown(wait=False, cancel_futures=True)
        self._receiver.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
        self.http.close()

    def __enter__(self) -> Companion:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The UDP port the device sends to."""
        if self._sock is None:
            raise RuntimeError("the companion is not started")
        return int(self._sock.getsockname()[1])

    # -- device → host ---------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        while not self._stop.is_set() and self._sock is not None:
            try:
                data, (sender, *_rest) = self._sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            if sender not in self.osc.senders:
                self._limited.warning("sender", "dropped OSC from %s (osc.allow)", sender)
                continue
            try:
                messages = decode(data)
            except OscError as error:
                self._limited.warning("packet", "dropped a malformed OSC packet: %s", error)
                continue
            for message in messages:
                self._to_host(message.address, message.args)

    def _to_host(self, address: str, args: tuple[Any, ...]) -> None:
        if address == "/rig/hello":
            self._hello = args
        if not self.host.send(RelayMessage(address, args).encode()):
            self._limited.warning("offline", "the host is not connected: %s not relayed", address)

    def _on_connect(self) -> None:
        """After a (re)connection: the device's hello again, so the host sends its slots."""
        if self._hello is not None:
            self.host.send(RelayMessage("/rig/hello", self._hello).encode())

    # -- host → device ---------------------------------------------------------------------------
    def _from_host(self, frame: str) -> None:
        try:
            message = decode_frame(frame)
        except WireError as error:
            self._limited.warning("frame", "dropped a frame from the host: %s", error)
            return
        spec = CARRIES_FILE.get(message.address)
        if spec is not None:
            self._load(message, spec)
        elif message.address == "/rig/folder":
            self._to_device("/rig/folder", (str(self.take_root),))
        else:
            self._to_device(message.address, message.args)

    def _load(self, message: RelayMessage, spec: FileArgs) -> None:
        try:
            req_id = int(message.args[spec.req_id])
            slot = int(message.args[spec.slot]) if spec.slot is not None else None
        except (IndexError, TypeError, ValueError):
            self._limited.warning("load", "dropped a malformed %s %.120r", message.address,
                                  message.args)  # fmt: skip
            return
        with self._lock:
            ready = self._ready.get(req_id)
            fetching = req_id in self._fetching
            if ready is None and not fetching:
                if slot is not None:
                    self._latest[slot] = req_id
                self._fetching.add(req_id)
        if ready is not None:  # a re-send: the device answers it again
            self._to_device(message.address, ready)
        elif not fetching:
            self._downloads.submit(self._fetch_and_forward, message, spec, slot, req_id)

    def _fetch_and_forward(
        self, message: RelayMessage, spec: FileArgs, slot: int | None, req_id: int
    ) -> None:
        try:
            args = self._fetch(message, spec, req_id)
        except (FetchError, ValueError) as error:
            self.say(f"companion: {f'slot {slot}' if slot else 'clip'}: {error}")
            self.host.send(RelayMessage("/rig/error", (slot or 0, req_id, str(error))).encode())
            return
        finally:
            with self._lock:
                self._fetching.discard(req_id)
        with self._lock:
            self._ready[req_id] = args
            while len(self._ready) > READY_KEPT:  # the oldest requests are long answered
                del self._ready[next(iter(self._ready))]
            latest = slot is None or self._latest.get(slot) == req_id
        if latest:  # else a newer load for the slot superseded it while downloading
            self._to_device(message.address, args)

    def _fetch(self, message: RelayMessage, spec: FileArgs, req_id: int) -> tuple[Any, ...]:
        """Download the take a message names; its arguments with the local path.

        Raises:
            ValueError: the message carries no file facts, or names a path outside the folder.
            FetchError: the download failed.
        """
        if message.file is None:
            raise ValueError(f"the host's {message.address} carries no file facts (an older rig?)")
        dest = (self.take_root / message.file.path).resolve()
        if not dest.is_relative_to(self.take_root):
            raise ValueError(f"{message.file.path!r} is outside the take folder")
        url = f"{self.host_url}{TAKES_ROUTE}/{message.file.path}"
        report = fetch_take(self.http, url, dest, message.file, self.fetch_policy)
        self.reports[req_id] = report
        args = list(message.args)
        args[spec.path] = str(dest)
        return tuple(args)

    def _to_device(self, address: str, args: tuple[Any, ...]) -> None:
        if self._sock is None:
            return
        data = encode(address, *args)
        for port in self.osc.targets:  # the device and a rear-pair device
            try:
                self._sock.sendto(data, (self.osc.host, port))
            except OSError as error:
                self._limited.warning("send", "cannot send %s to the device: %s", address, error)
