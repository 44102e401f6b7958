"""``rig bench evolve``: how early an evolving slot's loops reach the device before the bar they
swap in at, with the shipped GAN models, at 120 and 180 BPM (prints figures; tests never assert
them).

Real parts on loopback: the session and its worker, the link, the performer state and the
evolver; a stand-in device plays Live's transport (``/rig/position`` on each beat) and receives
the loads. Slot 1 holds a drums take and evolves every bar along the morph path. For each
delivery: how long before its swap bar the take was written (``ready``), and how long before it
the load arrived at the device (``arrived``: the device has that long to read the file). A
delivery not ready a bar ahead is skipped (``late``).
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rig.config import Config, OscConfig
from rig.evolve import Evolver
from rig.link import Link
from rig.performance import Performance
from rig.session import Session
from rig.testing.standin import StandInDevice
from rig.testing.transport import PlayingTransport

TEMPOS = (120.0, 180.0)
DELIVERIES = 6


def bench_evolve(config: Config, deliveries: int = DELIVERIES) -> dict[str, Any]:
    """Lead times (s) of ``deliveries`` evolution steps at each of :data:`TEMPOS`."""
    figures: dict[str, Any] = {"every_bars": 1}
    with tempfile.TemporaryDirectory(prefix="rig-bench-") as tmp:
        for bpm in TEMPOS:
            figures.update(_at_tempo(config, Path(tmp) / f"{bpm:g}", bpm, deliveries))
    return figures


def _at_tempo(config: Config, takes: Path, bpm: float, count: int) -> dict[str, Any]:
    takes.mkdir()
    device = StandInDevice(rig_port=0)
    osc = OscConfig(port=device.port, listen_port=0)
    config = dataclasses.replace(
        config, osc=osc, paths=dataclasses.replace(config.paths, takes=takes)
    )
    with device, Link(osc, takes) as link, Session(config, link) as session:
        device.rig_port = link.port
        perf = Performance(config, session, link)
        evolver = Evolver(perf, link, lambda _: None)
        perf.update(engine="gan", text=f"dusty drums, Tempo: {bpm:g}, Bars: 1", slot=1)
        session.wait(perf.generate().request.id, timeout=300)
        _wait(lambda: getattr(link.snapshot().slots.get(1), "status", "") == "loaded")
        with PlayingTransport(device, bpm) as transport:
            evolver.evolve(1, 1)
            _wait(lambda: _progress(evolver) >= count, timeout=60 + 8 * count * 240 / bpm)
            (evolution,) = evolver.snapshot()
            evolver.evolve(1, 0)
        arrived = _arrivals(device, transport, {d.take_id for d in evolution.deliveries})
    ready = [d.ready_s for d in evolution.deliveries]
    tag = f"{bpm:g}bpm"
    return {
        f"{tag}_bar_s": round(4 * 60 / bpm, 3),
        f"{tag}_delivered": len(ready),
        f"{tag}_late": evolution.late,
        f"{tag}_ready_s_median": round(statistics.median(ready), 3),
        f"{tag}_ready_s_min": round(min(ready), 3),
        f"{tag}_arrived_s_median": round(statistics.median(arrived), 3),
        f"{tag}_arrived_s_min": round(min(arrived), 3),
    }


def _progress(evolver: Evolver) -> int:
    running = evolver.snapshot()
    return len(running[0].deliveries) + running[0].late if running else 0


def _arrivals(device: StandInDevice, transport: PlayingTransport, takes: set[str]) -> list[float]:
    """Seconds from each evolved take's first arrival at the device to the bar after it."""
    seen: dict[str, float] = {}
    for (address, args), at in zip(device.received, device.arrived, strict=True):
        if address == "/rig/load" and args[5] in takes and args[5] not in seen:
            seen[args[5]] = transport.bar_start(transport.bar_after(at)) - at
    return list(seen.values())


def _wait(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the evolution bench did not finish in time")
        time.sleep(0.01)
