"""The OSC link to the Max for Live device (python-osc over UDP). Contract: max4live/PROTOCOL.md.

One UDP socket bound to the rig's listen port both sends to the device and receives from it. A
receiver thread decodes packets (:mod:`rig.osc`: size and nesting limits, never stalls) and
updates the link's state; a retry thread re-sends loads that the device has not acknowledged, with
exponential backoff, until ``/rig/loaded`` or ``/rig/error`` arrives or the attempts run out, and
restarts the receiver if it ever dies. The socket listens on 127.0.0.1 unless the device is on
another host; datagrams from hosts other than loopback, the device's and ``osc.allow`` are dropped.
Malformed, unknown or out-of-range messages are dropped with a rate-limited log line.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pythonosc.osc_message_builder import OscMessageBuilder

from rig.config import OscConfig
from rig.lograte import LogLimiter
from rig.osc import OscError, decode
from rig.takes import Take

log = logging.getLogger(__name__)
PROTOCOL_VERSION = 2
INT_LIMIT = 2**31 - 1  # every integer field: slots, ids, seeds, CCs
CLIP_SLOT = 0  # the "slot" of a clip request and of its /rig/error


class LinkError(ValueError):
    """A request the link refuses to send (path outside the take folder, bad slot)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Re-sending of unacknowledged loads: first_s, first_s × factor, ... capped at max_s."""

    first_s: float = 0.25  # wait before the first re-send
    factor: float = 2.0  # backoff multiplier
    max_s: float = 2.0  # longest wait between sends
    attempts: int = 6  # sends in all (the first one included)

    def delay(self, sent: int) -> float:
        """Seconds to wait after the ``sent``-th send (1-based)."""
        return min(self.max_s, self.first_s * self.factor ** (sent - 1))


SlotStatus = Literal["empty", "pending", "loaded", "failed"]
EventKind = Literal[
    "hello",
    "loaded",
    "error",
    "tempo",
    "timesig",
    "playing",
    "pong",
    "load_failed",
    "cc",
    "action",
    "position",
    "evolve",
    "clipped",
]


@dataclass
class SlotState:
    """What the rig believes one device slot holds."""

    take_id: str | None = None
    path: str | None = None
    bpm: float = 0.0
    bars: int = 0
    beats: int = 0  # quarter notes in the loop
    channels: int = 2  # 4: a quad take (the device's Output Pair picks 1-2 or 3-4)
    status: SlotStatus = "empty"
    req_id: int | None = None  # the request awaiting an acknowledgement
    error: str | None = None
    playing: bool = False


@dataclass
class LinkState:
    """The device as the rig last heard of it."""

    device_version: str | None = None  # from /rig/hello; None until the device says hello
    device_slots: int | None = None
    device_port: int | None = None  # the UDP port the device says it listens on
    tempo: float | None = None  # Live's tempo from /rig/tempo
    meter: str | None = None  # Live's time signature from /rig/timesig, e.g. "3/4"
    last_heard: float | None = None  # time.time() of the last valid message
    position: Position | None = None  # Live's bar and beat from /rig/position, while it plays
    slots: dict[int, SlotState] = field(default_factory=dict)


@dataclass(frozen=True)
class Position:
    """Where Live's transport was when the device said so (``/rig/position``)."""

    bar: int  # from 1
    beat: float  # from 1: the beat of the bar (Live's meter's beat) and how far into it
    bpm: float  # Live's tempo, quarter notes a minute
    at: float  # time.monotonic() when the message arrived


@dataclass(frozen=True)
class LinkEvent:
    """Something the device said or the link concluded (``kind`` names it)."""

    kind: EventKind
    data: dict[str, Any]


@dataclass
class _Pending:
    slot: int
    address: str
    args: tuple[Any, ...]
    sent: int = 0
    due: float = 0.0


def bind_rig_port(osc: OscConfig) -> socket.socket:
    """The UDP socket the device sends to (``osc.listen_port``), with a 0.1-s receive timeout.

    Raises:
        OSError: the port is taken (the message names it and the setting).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((osc.bind_host, osc.listen_port))
    except OSError as error:
        sock.close()
        raise OSError(
            error.errno,
            f"cannot listen for the device on UDP {osc.bind_host}:{osc.listen_port}: "
            f"{error.strerror} (another rig or companion running? set RIG_LISTEN_PORT)",
        ) from None
    sock.settimeout(0.1)
    return sock


def encode(address: str, *args: Any) -> bytes:
    """One OSC message as bytes (int → ``i``, float → ``f``, str → ``s``)."""
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


Outlet = Callable[[str, tuple[Any, ...]], None]


class Link:
    """The rig's side of the OSC protocol.

    Args:
        osc: device host/port and the rig's listen port (0 picks a free port).
        take_root: only files inside this folder are ever sent.
        retry: re-send policy for unacknowledged loads.
        outlet: where messages to the device go instead of UDP (``outlet(address, args)``,
            called on the link's threads; :mod:`rig.remote.host` relays them to a companion).
            The listen port still receives.
    """

    def __init__(
        self,
        osc: OscConfig,
        take_root: Path,
        retry: RetryPolicy | None = None,
        outlet: Outlet | None = None,
    ) -> None:
        self.osc = osc
        self.outlet = outlet
        self.take_root = Path(take_root).resolve()
        self.retry = retry or RetryPolicy()
        self._state = LinkState()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._subscribers: list[Callable[[LinkEvent], None]] = []
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._receiver: threading.Thread | None = None
        self._limited = LogLimiter(log)
        self.receiver_restarts = 0
        self._handlers: dict[str, Callable[[tuple[Any, ...]], None]] = {
            "/rig/hello": self._on_hello,
            "/rig/loaded": self._on_loaded,
            "/rig/error": self._on_error,
            "/rig/tempo": self._on_tempo,
            "/rig/timesig": self._on_timesig,
            "/rig/playing": self._on_playing,
            "/rig/pong": lambda args: self._emit("pong", {"token": _int(args[0])}),
            "/rig/cc": self._on_cc,
            "/rig/action": self._on_action,
            "/rig/position": self._on_position,
            "/rig/clipped": self._on_clipped,
            "/rig/evolve": self._on_evolve,
        }

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Link:
        """Bind the listen port and start the receiver and retry threads.

        Raises:
            OSError: the listen port is taken (the message names it).
        """
        self._sock = bind_rig_port(self.osc)
        self._start_receiver()
        retry = threading.Thread(target=self._retry_loop, name="rig-link-retry", daemon=True)
        retry.start()
        self._threads.append(retry)
        return self

    def _start_receiver(self) -> None:
        thread = threading.Thread(target=self._receive_loop, name="rig-link-receive", daemon=True)
        thread.start()
        self._receiver = thread

    def _watch_receiver(self) -> None:
        """Restart the receiver thread if something killed it (and say so)."""
        if self._receiver is not None and not self._receiver.is_alive() and not self._stop.is_set():
            self.receiver_restarts += 1
            log.error("the OSC receiver stopped; restarted it (%d so far)", self.receiver_restarts)
            self._start_receiver()

    def close(self) -> None:
        """Stop the threads and release the port."""
        self._stop.set()
        self._wake.set()
        for thread in [*self._threads, *([self._receiver] if self._receiver else [])]:
            thread.join(timeout=2)
        self._threads.clear()
        self._receiver = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Link:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The UDP port the rig listens on (useful when configured as 0)."""
        if self._sock is None:
            raise RuntimeError("the link is not started")
        return int(self._sock.getsockname()[1])

    # -- requests --------------------------------------------------------------------------
    def send_take(self, slot: int, take: Take) -> int:
        """Ask the device to load ``take`` into ``slot`` (the loop's tempo, bars and quarter
        notes as written); see :meth:`load`."""
        loop = take.loop
        return self.load(slot, take.wav, loop.bpm, loop.bars, loop.quarters, take.id,
                         loop.channels)  # fmt: skip

    def load(
        self,
        slot: int,
        path: Path,
        bpm: float,
        bars: int,
        beats: int,
        take_id: str,
        channels: int = 2,
    ) -> int:
        """Ask the device to load ``path`` (``bars`` bars, ``beats`` quarter notes at ``bpm``;
        ``channels`` 4 for a quad take, sent as an 8th argument) into ``slot``; re-sent until
        acknowledged.

        Returns:
            The request id carried by ``/rig/load`` and its acknowledgement.

        Raises:
            LinkError: the path is outside the take folder, or the slot is out of range.
        """
        self._check_slot(slot)
        resolved = self._inside(path)
        req_id = next(self._ids)
        with self._lock:
            self._drop_pending(slot)
            self._state.slots[slot] = SlotState(
                take_id=take_id,
                path=str(resolved),
                bpm=float(bpm),
                bars=int(bars),
                beats=int(beats),
                channels=int(channels),
                status="pending",
                req_id=req_id,
                playing=self._slot(slot).playing,
            )
            args: tuple[Any, ...] = (
                int(slot),
                str(resolved),
                float(bpm),
                int(bars),
                int(beats),
                str(take_id),
                req_id,
            )
            if channels == 4:  # stereo loads keep the 7 arguments every device version reads
                args = (*args, 4)
            self._pending[req_id] = _Pending(slot, "/rig/load", args)
        self._wake.set()
        return req_id

    def clear(self, slot: int) -> int:
        """Ask the device to empty ``slot``; re-sent until acknowledged like a load."""
        self._check_slot(slot)
        req_id = next(self._ids)
        with self._lock:
            self._drop_pending(slot)
            playing = self._slot(slot).playing
            self._state.slots[slot] = SlotState(status="pending", req_id=req_id, playing=playing)
            self._pending[req_id] = _Pending(slot, "/rig/clear", (int(slot), req_id))
        self._wake.set()
        return req_id

    def place_clip(self, track: int, take: Take, name: str, color: int, fire: bool,
                   scene: int = 0) -> int:  # fmt: skip
        """Ask the device to put ``take`` into audio ``track``'s clip slot at ``scene`` (0: the
        first empty one) as a warped, looping clip named ``name`` in ``color`` (0xRRGGBB), and
        launch it with ``fire``; re-sent until ``/rig/clipped`` or ``/rig/error`` answers.

        Raises:
            LinkError: the path is outside the take folder, or track or scene is below its range.
        """
        if track < 1 or scene < 0:
            raise LinkError(f"track {track} scene {scene}: tracks are numbered from 1, scenes "
                            "from 1 (0 = the first empty slot)")  # fmt: skip
        resolved = self._inside(take.wav)
        loop = take.loop
        req_id = next(self._ids)
        args = (int(track), int(scene), str(resolved), float(loop.bpm), int(loop.bars),
                int(loop.quarters), name[:120], int(color) & 0xFFFFFF, int(fire),
                req_id)  # fmt: skip
        with self._lock:
            self._pending[req_id] = _Pending(CLIP_SLOT, "/rig/clip", args)
        self._wake.set()
        return req_id

    def restore(self, slot: int, take: Take) -> None:
        """Remember that ``slot`` holds ``take`` from before a restart, without sending it:
        the device's next ``/rig/hello`` brings it back (see :meth:`_on_hello`)."""
        loop = take.loop
        with self._lock:
            self._state.slots[slot] = SlotState(
                take_id=take.id,
                path=str(Path(take.wav).resolve()),
                bpm=float(loop.bpm),
                bars=int(loop.bars),
                beats=int(loop.quarters),
                channels=int(loop.channels),
                status="loaded",
            )

    def ping(self, token: int) -> None:
        """Send ``/rig/ping token``; the device answers ``/rig/pong token``."""
        self._send("/rig/ping", int(token))

    def subscribe(self, callback: Callable[[LinkEvent], None]) -> None:
        """Call ``callback(event)`` (on the link's thread) for every :class:`LinkEvent`."""
        self._subscribers.append(callback)

    def snapshot(self) -> LinkState:
        """A copy of the current state."""
        with self._lock:
            return copy.deepcopy(self._state)

    def pending(self) -> int:
        """Requests still awaiting an acknowledgement."""
        with self._lock:
            return len(self._pending)

    # -- incoming --------------------------------------------------------------------------
    def handle_datagram(self, data: bytes, sender: str = "127.0.0.1") -> None:
        """Decode one datagram from host ``sender`` and dispatch its messages; bad input is
        dropped with a rate-limited log line, and never raises."""
        if sender not in self.osc.senders:
            self._limited.warning(
                "sender", "dropped OSC from %s: not the device's host (osc.host) nor in osc.allow",
                sender,
            )  # fmt: skip
            return
        try:
            messages = decode(data)
        except OscError as error:
            self._limited.warning(
                "packet", "dropped a malformed OSC packet (%d bytes): %s", len(data), error
            )
            return
        for message in messages:
            self.handle_message(message.address, message.args)

    def handle_message(self, address: str, args: tuple[Any, ...]) -> None:
        """Dispatch one decoded device message (from UDP or a relay); unknown, malformed or
        out-of-range ones are dropped with a rate-limited log line, and never raise."""
        handler = self._handlers.get(address)
        if handler is None:
            self._limited.warning("unknown", "dropped unknown OSC message %.60s", address)
            return
        try:
            handler(args)
        except (IndexError, ValueError, TypeError, OverflowError) as error:
            self._limited.warning(address, "dropped malformed %s %.200r: %s", address, args, error)
            return
        with self._lock:
            self._state.last_heard = time.time()

    def _on_hello(self, args: tuple[Any, ...]) -> None:
        version, slots = str(args[0]), _int(args[1])
        port = _int(args[2]) if len(args) > 2 else None
        if slots < 1 or (port is not None and not 1 <= port <= 65535):
            raise ValueError(f"slot count {slots}, port {port}")
        with self._lock:
            self._state.device_version, self._state.device_slots = version, slots
            self._state.device_port = port
            assigned = [
                (n, Path(s.path), s.bpm, s.bars, s.beats, s.take_id, s.channels)
                for n, s in sorted(self._state.slots.items())
                if s.path and s.take_id and n <= slots
            ]
        if port is not None and port not in self.osc.targets and self.outlet is None:
            self._limited.warning(
                "hello-port",
                "the device listens on UDP %d but the rig sends to %d: set RIG_OSC_PORT=%d "
                "(osc.port) or the device's OSC In Port",
                port, self.osc.port, port,
            )  # fmt: skip
        self._emit("hello", {"version": version, "slots": slots, "port": port})
        self._send("/rig/folder", str(self.take_root))  # so it need not be typed
        for assignment in assigned:  # the device lost its buffers: send them again
            self.load(*assignment)

    def _on_loaded(self, args: tuple[Any, ...]) -> None:
        slot, take_id, req_id = _int(args[0]), str(args[1]), _int(args[2])
        with self._lock:
            pending = self._pending.pop(req_id, None)
            if pending is None:  # duplicate or superseded acknowledgement: harmless
                log.debug("ignored /rig/loaded for unknown request %d", req_id)
                return
            state = self._slot(pending.slot)
            state.status = "loaded" if pending.address == "/rig/load" else "empty"
            state.req_id, state.error = None, None
        self._emit("loaded", {"slot": slot, "take_id": take_id, "req_id": req_id})

    def _on_error(self, args: tuple[Any, ...]) -> None:
        slot, req_id, message = _int(args[0]), _int(args[1]), str(args[2])
        with self._lock:
            pending = self._pending.pop(req_id, None)
            if pending is None:  # an answer to a retry already answered: nothing new
                log.debug("ignored /rig/error for unknown request %d", req_id)
                return
            if pending.slot != CLIP_SLOT:  # a clip's failure leaves the slots as they are
                state = self._slot(pending.slot)
                state.status, state.error, state.req_id = "failed", message, None
        self._emit("error", {"slot": slot, "req_id": req_id, "message": message})

    def _on_tempo(self, args: tuple[Any, ...]) -> None:
        bpm = _num(args[0])
        if not 20.0 <= bpm <= 999.0:
            raise ValueError(f"tempo {bpm}")
        with self._lock:
            self._state.tempo = bpm
        self._emit("tempo", {"bpm": bpm})

    def _on_timesig(self, args: tuple[Any, ...]) -> None:
        num, den = _int(args[0]), _int(args[1])
        if not (1 <= num <= 32 and den in (1, 2, 4, 8, 16)):
            raise ValueError(f"time signature {num}/{den}")
        quarters = num * 4 / den
        meter = f"{num}/{den}" if quarters.is_integer() and 1 <= quarters <= 16 else None
        if meter is None:
            log.warning("Live's time signature %d/%d has no whole-quarter bar: rig keeps %s",
                        num, den, self._state.meter or "its default")  # fmt: skip
        with self._lock:
            self._state.meter = meter or self._state.meter
        self._emit("timesig", {"num": num, "den": den, "meter": meter})

    def _on_playing(self, args: tuple[Any, ...]) -> None:
        slot, playing = _int(args[0]), bool(_int(args[1]))
        with self._lock:
            self._slot(slot).playing = playing
        self._emit("playing", {"slot": slot, "playing": playing})

    # -- threads ---------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        while not self._stop.is_set() and self._sock is not None:
            try:
                data, (host, *_rest) = self._sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue  # e.g. ICMP port unreachable reported on the socket
            try:
                self.handle_datagram(data, host)
            except Exception:  # a bug must not end the receiver: log it, go on
                log.exception("the OSC receiver failed on a %d-byte datagram", len(data))

    def _retry_loop(self) -> None:
        while not self._stop.is_set():
            self._watch_receiver()
            now = time.monotonic()
            failed: list[tuple[int, _Pending]] = []
            to_send: list[_Pending] = []
            with self._lock:
                for req_id, pending in list(self._pending.items()):
                    if pending.due > now:
                        continue
                    if pending.sent >= self.retry.attempts:
                        failed.append((req_id, self._pending.pop(req_id)))
                        continue
                    pending.sent += 1
                    pending.due = now + self.retry.delay(pending.sent)
                    to_send.append(pending)
                next_due = min((p.due for p in self._pending.values()), default=now + 1.0)
            for pending in to_send:
                self._send(pending.address, *pending.args)
            for req_id, pending in failed:
                self._give_up(req_id, pending)
            self._wake.wait(max(0.0, next_due - time.monotonic()))
            self._wake.clear()

    def _give_up(self, req_id: int, pending: _Pending) -> None:
        message = f"no answer from the device after {pending.sent} sends"
        with self._lock:
            state = self._state.slots.get(pending.slot)
            if state is not None and state.req_id == req_id:
                state.status, state.error, state.req_id = "failed", message, None
        log.warning("%s %s: %s", pending.address, pending.args, message)
        self._emit("load_failed", {"slot": pending.slot, "req_id": req_id, "message": message})

    # -- helpers ---------------------------------------------------------------------------
    def _send(self, address: str, *args: Any) -> None:
        if self._sock is None:
            raise RuntimeError("the link is not started")
        if self.outlet is not None:
            self.outlet(address, args)
            return
        data = encode(address, *args)
        for port in self.osc.targets:  # the device, and the rear-pair device of a quad set-up
            try:
                self._sock.sendto(data, (self.osc.host, port))
            except OSError as error:  # unreachable host, no route: the retry loop tries again
                log.warning("cannot send %s to %s:%d: %s", address, self.osc.host, port, error)

    def _on_cc(self, args: tuple[Any, ...]) -> None:
        number, value = _int(args[0]), _int(args[1])
        if not (0 <= number <= 127 and 0 <= value <= 127):
            raise ValueError(f"CC {number} value {value} (both must be 0-127)")
        self._emit("cc", {"cc": number, "value": value})

    def _on_action(self, args: tuple[Any, ...]) -> None:
        if not args or not isinstance(args[0], str) or len(args) > 2:
            raise ValueError("expects name:s [argument:i]")
        argument = _int(args[1]) if len(args) == 2 else None
        self._emit("action", {"name": args[0], "argument": argument})

    def _on_clipped(self, args: tuple[Any, ...]) -> None:
        track, scene, req_id = _int(args[0]), _int(args[1]), _int(args[2])
        with self._lock:
            pending = self._pending.pop(req_id, None)
        if pending is None:
            return  # a retry's answer
        self._emit("clipped", {"track": track, "scene": scene, "req_id": req_id})

    def _on_position(self, args: tuple[Any, ...]) -> None:
        bar, beat, bpm = _int(args[0]), _num(args[1]), _num(args[2])
        if not (-9999 <= bar <= 999_999 and 1.0 <= beat < 33.0 and 20.0 <= bpm <= 999.0):
            raise ValueError(f"bar {bar}, beat {beat}, tempo {bpm}")
        position = Position(bar, beat, bpm, time.monotonic())
        with self._lock:
            self._state.position = position
        self._emit("position", {"position": position})

    def _on_evolve(self, args: tuple[Any, ...]) -> None:
        if not 2 <= len(args) <= 3:
            raise ValueError("expects slot:i every_bars:i [path:s]")
        slot, every = _int(args[0]), _int(args[1])
        path = str(args[2]) if len(args) == 3 else None
        if not (slot >= 1 and 0 <= every <= 256):
            raise ValueError(f"slot {slot}, every {every} bars (0-256)")
        self._emit("evolve", {"slot": slot, "every": every, "path": path})

    def _emit(self, kind: EventKind, data: dict[str, Any]) -> None:
        event = LinkEvent(kind, data)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not take the link down
                log.exception("link subscriber failed on %s", kind)

    def _slot(self, slot: int) -> SlotState:
        return self._state.slots.setdefault(slot, SlotState())

    def _drop_pending(self, slot: int) -> None:
        for req_id in [r for r, p in self._pending.items() if p.slot == slot]:
            del self._pending[req_id]

    def _inside(self, path: Path) -> Path:
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.take_root):
            raise LinkError(
                f"refusing to send {resolved}: it is outside the take folder {self.take_root}"
            )
        return resolved

    def _check_slot(self, slot: int) -> None:
        limit = self._state.device_slots
        if slot < 1 or (limit is not None and slot > limit):
            raise LinkError(
                f"slot {slot} does not exist (slots are numbered from 1"
                + (f" to {limit} on this device)" if limit is not None else ")")
            )


def _int(value: Any) -> int:
    """A whole number within ±2³¹−1 (Max's ints; a whole float is accepted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r:.40}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"expected a whole number, got {value!r}")
    if abs(value) > INT_LIMIT:
        raise ValueError(f"{value!r} is outside ±{INT_LIMIT}")
    return int(value)


def _num(value: Any) -> float:
    """A finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r:.40}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)
