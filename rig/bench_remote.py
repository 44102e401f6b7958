"""``rig bench companion``: what the two-machine rig adds between a take written on the host and
its ``/rig/load`` at the device on the laptop (prints figures; tests never assert them).

On loopback, with real parts: the host's link and relay routes (:class:`RemoteHost`), a
companion with its own take folder, and a stand-in device on UDP. Each round writes a new 4-bar
120-BPM 44.1 kHz stereo take on the host (24-bit PCM, about 2.1 MB) and times from the end of the
write to the device's ``/rig/load`` (the download and checksum included). The same rounds
through a plain UDP link give the local figure; the difference is what the relay adds.
Goal: ≤ 50 ms added.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig.config import Config, OscConfig, PathsConfig, RemoteConfig, UiConfig
from rig.engines.base import Recipe
from rig.link import Link
from rig.loops import Loop, make_loop
from rig.prompt import parse_prompt
from rig.remote.companion import Companion
from rig.remote.download import FetchPolicy
from rig.takes import TakeStore
from rig.testing.remote import RemoteHost
from rig.testing.signals import drum_signal
from rig.testing.standin import StandInDevice

ROUNDS = 20
TOKEN = "bench-token"


def bench_companion(config: Config, rounds: int = ROUNDS) -> dict[str, Any]:
    """Median and worst milliseconds from take written to ``/rig/load``, local and remote."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    loop = make_loop(drum_signal(9.0, 44100), 44100, 120.0, 4, 4, config.audio)
    with tempfile.TemporaryDirectory(prefix="rig-bench-") as tmp:
        root = Path(tmp)
        local = _local_ms(root / "local", loop, rounds)
        remote, size = _remote_ms(root, loop, rounds)
    added = [r - lo for r, lo in zip(sorted(remote), sorted(local), strict=True)]
    return {
        "take_mb": round(size / 1e6, 2),
        "rounds": rounds,
        "local_load_ms_median": round(statistics.median(local), 2),
        "remote_load_ms_median": round(statistics.median(remote), 2),
        "remote_load_ms_max": round(max(remote), 2),
        "added_ms_median": round(statistics.median(added), 2),
    }


def _local_ms(root: Path, loop: Loop, rounds: int) -> list[float]:
    root.mkdir()
    device = StandInDevice(rig_port=0)
    with device, Link(OscConfig(port=device.port, listen_port=0), root) as link:
        device.rig_port = link.port
        return _rounds(root, loop, rounds, device, link.send_take)


def _remote_ms(root: Path, loop: Loop, rounds: int) -> tuple[list[float], int]:
    host_root, laptop = root / "host", root / "laptop"
    host_root.mkdir()
    config = Config(
        osc=OscConfig(listen_port=0),
        paths=PathsConfig(takes=host_root),
        ui=UiConfig(port=_free_tcp_port(), token=TOKEN),
        remote=RemoteConfig(enabled=True),
    )
    with StandInDevice(rig_port=0) as device, RemoteHost(config) as host:
        osc = OscConfig(port=device.port, listen_port=0)
        fetch = dataclasses.replace(FetchPolicy(), attempts=2)
        with Companion(host.url, TOKEN, osc, laptop, lambda _: None, fetch) as companion:
            device.rig_port = companion.port
            companion.host.connected.wait(10)
            device.send("/rig/hello", "2", 8, device.port)
            device.wait_for("/rig/folder")
            assert host.link is not None
            times = _rounds(host_root, loop, rounds, device, host.link.send_take)
    size = next(laptop.rglob("*.wav")).stat().st_size
    return times, size


def _rounds(
    root: Path, loop: Loop, rounds: int, device: StandInDevice, send: Callable[..., int]
) -> list[float]:
    store = TakeStore(root)
    recipe = Recipe(parse_prompt("bench drums, Tempo: 120, Bars: 4"), "word", seed=1)
    times = []
    for n in range(rounds):
        take = store.write(loop, recipe)
        start = time.perf_counter()
        send(1 + n % 8, take)
        device.wait_for("/rig/load", count=n + 1, timeout=30)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
