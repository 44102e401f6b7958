"""A stand-in for the Max for Live device, speaking max4live/PROTOCOL.md over real UDP.

Used by ``rig bench`` (OSC round trip) and by the tests; it is not a player. Like Max's
``udpsend``, it answers to a fixed host and port (the rig's listen port), not to the sender.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pythonosc.osc_packet import OscPacket, ParseError

from rig.link import encode


@dataclass
class StandInDevice:
    """Receives rig messages, records them, and acknowledges loads like the device.

    Args:
        rig_port: the rig's listen port, where answers go.
        rig_host: the rig's host.
        ignore_loads: this many ``/rig/load`` messages are dropped unanswered (retry tests).
        refuse_outside: answer ``/rig/error`` for paths outside this folder (like the device).
    """

    rig_port: int
    rig_host: str = "127.0.0.1"
    ignore_loads: int = 0
    refuse_outside: Path | None = None
    received: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # time.monotonic() of each received
    slots: dict[int, str] = field(default_factory=dict)  # slot -> loaded path
    clips: dict[int, dict[int, str]] = field(default_factory=dict)  # track -> scene -> path

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="standin-device", daemon=True)

    @property
    def port(self) -> int:
        """The UDP port the stand-in listens on (the rig's ``osc.port``)."""
        return int(self._sock.getsockname()[1])

    def start(self) -> StandInDevice:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> StandInDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the device sends on its own ------------------------------------------------------
    def send(self, address: str, *args: Any) -> None:
        """Send one message to the rig."""
        self.send_raw(encode(address, *args))

    def send_raw(self, data: bytes) -> None:
        """Send raw bytes to the rig (malformed-packet tests)."""
        self._sock.sendto(data, (self.rig_host, self.rig_port))

    def wait_for(self, address: str, count: int = 1, timeout: float = 5.0) -> list[tuple[Any, ...]]:
        """Block until ``count`` messages to ``address`` arrived; returns their arguments.

        Raises:
            TimeoutError: fewer arrived within ``timeout`` seconds.
        """
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.messages(address)) >= count, timeout)
            if not ok:
                raise TimeoutError(
                    f"{len(self.messages(address))} of {count} {address} messages in {timeout} s"
                )
            return self.messages(address)

    def messages(self, address: str) -> list[tuple[Any, ...]]:
        """Arguments of every received message to ``address``, in order."""
        return [args for addr, args in list(self.received) if addr == address]

    # -- receiving -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self._sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            try:
                messages = [m.message for m in OscPacket(data).messages]
            except ParseError:
                continue
            for message in messages:
                args = tuple(message.params)
                with self._cond:
                    self.received.append((message.address, args))
                    self.arrived.append(time.monotonic())
                    self._cond.notify_all()
                self._answer(message.address, args)

    def _answer(self, address: str, args: tuple[Any, ...]) -> None:
        if address == "/rig/ping":
            self.send("/rig/pong", args[0])
        elif address == "/rig/clear":
            self.slots.pop(int(args[0]), None)
            self.send("/rig/loaded", int(args[0]), "", int(args[1]))
        elif address == "/rig/load":
            self._answer_load(*args)
        elif address == "/rig/clip":
            self._answer_clip(*args)

    def _answer_clip(self, track: int, scene: int, path: str, *rest: Any) -> None:
        """Like Live's Session View with empty audio tracks: the first empty scene, or the
        asked one; a path outside the folder or an unreadable file is refused like a load."""
        req_id = rest[-1]
        if self.refuse_outside is not None and not Path(path).is_relative_to(self.refuse_outside):
            self.send("/rig/error", 0, req_id, f"path outside the take folder: {path}")
            return
        taken = self.clips.setdefault(track, {})
        scene = scene or next(n for n in range(1, 10_000) if n not in taken)
        taken[scene] = path
        self.send("/rig/clipped", track, scene, req_id)

    def _answer_load(
        self,
        slot: int,
        path: str,
        bpm: float,
        bars: int,
        beats: int,
        take_id: str,
        req_id: int,
        channels: int = 2,
    ) -> None:
        if self.ignore_loads > 0:
            self.ignore_loads -= 1
            return
        if self.refuse_outside is not None and not Path(path).is_relative_to(self.refuse_outside):
            self.send("/rig/error", slot, req_id, f"path outside the take folder: {path}")
        elif not Path(path).is_file():
            self.send("/rig/error", slot, req_id, f"cannot read {path}")
        else:
            self.slots[slot] = path
            self.send("/rig/loaded", slot, take_id, req_id)
