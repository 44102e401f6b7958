#!/usr/bin/env python3
"""Soak test (not part of `make test`): N generations through the real session, worker and link
into a stand-in device, with the shipped models; prints failures, memory and disk growth.

    .venv/bin/python scripts/soak.py [--takes N] [--json]

Prompts cycle through the materials at random tempos (90-160 BPM), bars and slots; the queue is
kept at most 4 deep. Figures: failed requests, loads the device did not acknowledge, resident
memory (MB) of the rig's process and of the worker at the start, half way and the end, the take
folder's size, and seconds per take (median).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rig.config import load_config  # noqa: E402
from rig.engines.base import Request  # noqa: E402
from rig.link import Link  # noqa: E402
from rig.prompt import parse_prompt  # noqa: E402
from rig.session import Session  # noqa: E402
from rig.testing.standin import StandInDevice  # noqa: E402

WORDS = ("dusty drums", "deep bass", "warm pads", "busy drums", "dark bass", "airy pads")


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def soak(count: int) -> dict[str, object]:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="rig-soak-") as tmp:
        takes = Path(tmp) / "takes"
        takes.mkdir()
        config = load_config(None)
        device = StandInDevice(rig_port=0)
        config = dataclasses.replace(
            config,
            paths=dataclasses.replace(config.paths, takes=takes, models=(ROOT / "models",)),
            osc=dataclasses.replace(config.osc, port=device.port, listen_port=0),
        )
        with Link(config.osc, takes) as link:
            device.rig_port = link.port
            with device:
                session = Session(config, link).start(preload=["gan"])
                try:
                    return _run(session, link, device, takes, count, rng)
                finally:
                    session.close()


def _run(session, link, device, takes, count, rng) -> dict[str, object]:  # type: ignore[no-untyped-def]
    import os

    memory: dict[str, dict[str, float]] = {}
    seconds: list[float] = []
    failed = 0

    def sample(label: str) -> None:
        worker = session._worker  # the live worker process, for its memory
        memory[label] = {
            "rig_mb": round(rss_mb(os.getpid()), 1),
            "worker_mb": round(rss_mb(worker.process.pid), 1) if worker else 0.0,
        }

    jobs = []
    started = time.monotonic()
    for n in range(count):
        if n == 0:
            while not session._ready:  # the worker warmed up: the start's memory
                time.sleep(0.1)
            sample("0")
        while session.queue_depth() >= 4:
            time.sleep(0.02)
        text = f"{rng.choice(WORDS)}, Tempo: {rng.randint(90, 160)}, Bars: {rng.choice((1, 2, 4))}"
        jobs.append(session.submit(Request(parse_prompt(text), "gan", slot=rng.randint(1, 8))))
        if n + 1 == count // 2:
            sample(str(count // 2))
    for job in jobs:
        finished = session.wait(job.request.id, timeout=600)
        failed += finished.status != "done"
        if finished.finished:
            seconds.append(finished.finished - finished.submitted)
    deadline = time.monotonic() + 30
    while link.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    sample(str(count))
    return {
        "takes": count,
        "failed": failed,
        "loads_acknowledged": len(device.messages("/rig/load")) - link.pending(),
        "loads_unanswered": link.pending(),
        "memory_mb": memory,
        "take_folder_mb": round(folder_mb(takes), 1),
        "mb_per_take": round(folder_mb(takes) / max(1, count), 2),
        "wall_s": round(time.monotonic() - started, 1),
        "median_s_per_take_in_queue": round(statistics.median(seconds), 2) if seconds else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--takes", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = soak(args.takes)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:28} {value}")
    return 0 if figures["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
