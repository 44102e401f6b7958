"""``rig bench``: speed figures, printed (never asserted by tests).

``rig bench loops`` times the loop tools (warm) on a 4-s stereo 44.1 kHz loop, in the common case
(the engine made the content at the asked tempo with a short tail: crop, seam, loudness, limit) and
with a tempo change (time-stretch first), and the OSC round trip to a stand-in device on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rig.config import Config
from rig.link import Link, LinkEvent
from rig.loops import loop_length, make_loop, warm_up
from rig.standin import StandInDevice


def _median_ms(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def drum_signal(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A drum-and-bass-like stereo signal ``[2, seconds × rate]``: noise hits + a 55 Hz tone.

    Hits fall on 8th notes at 120 BPM (every 0.25 s), rise over 2 ms like a real drum onset and
    decay with a 20 ms time constant.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    hits = np.zeros(n)
    attack = max(1, int(0.002 * rate))
    shape = np.exp(-np.arange(rate // 8) / (0.02 * rate))
    shape[:attack] *= np.linspace(0.0, 1.0, attack, endpoint=False)
    for start in range(0, n, rate // 4):
        length = min(n - start, shape.size)
        hits[start : start + length] += shape[:length]
    noise = rng.standard_normal((2, n)) * hits * 0.4
    tone = 0.2 * np.sin(2 * np.pi * 55.0 * t + np.array([[0.0], [0.3]]))
    return (noise + tone).astype(np.float32)


def bench_loops(config: Config) -> dict[str, float]:
    """Median warm milliseconds of :func:`make_loop` in the common and the stretch case."""
    settings, rate = config.audio, config.audio.sample_rate
    warm_up(settings)
    length = loop_length(120.0, 2, 4, rate)
    tail = int(settings.seam_ms * rate / 1000)
    source = drum_signal((length + tail) / rate, rate)
    common = _median_ms(lambda: make_loop(source, rate, 120.0, 2, 4, settings, 120.0, False), 20)
    stretched = _median_ms(lambda: make_loop(source, rate, 107.0, 2, 4, settings, 120.0, False), 5)
    trimmed = _median_ms(lambda: make_loop(source, rate, 120.0, 2, 4, settings, None, True), 5)
    return {
        "loop_tools_ms": round(common, 2),
        "loop_tools_stretch_ms": round(stretched, 2),
        "loop_tools_trim_fit_ms": round(trimmed, 2),
    }


def bench_osc(config: Config, pings: int = 200) -> dict[str, float]:
    """OSC round trip ``/rig/ping`` → ``/rig/pong`` to a stand-in device over UDP on 127.0.0.1."""
    pong = threading.Event()

    def on_event(event: LinkEvent) -> None:
        if event.kind == "pong":
            pong.set()

    device = StandInDevice(rig_port=0)  # bound now; told the rig's port once the link listens
    osc = dataclasses.replace(config.osc, host="127.0.0.1", port=device.port, listen_port=0)
    with tempfile.TemporaryDirectory() as root, Link(osc, Path(root)) as link:
        link.subscribe(on_event)
        device.rig_port = link.port
        with device:
            times = []
            for token in range(pings):
                pong.clear()
                start = time.perf_counter()
                link.ping(token)
                if pong.wait(1.0):
                    times.append(time.perf_counter() - start)
    if not times:
        raise RuntimeError("the stand-in device never answered on 127.0.0.1")
    times.sort()
    return {
        "osc_rtt_ms": round(1000 * statistics.median(times), 3),
        "osc_rtt_p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 3),
        "osc_lost": pings - len(times),
    }


BENCHES: dict[str, Callable[[Config], dict[str, Any]]] = {
    "loops": lambda config: {**bench_loops(config), **bench_osc(config)},
}


def run_bench(what: str, config: Config, as_json: bool = False) -> int:
    """Run one benchmark and print its figures (one JSON object with ``as_json``)."""
    figures = BENCHES[what](config)
    if as_json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:<24} {value}")
    return 0
