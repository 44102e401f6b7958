"""The built device (max4live/build/rig-slots.amxd) in the Max double, against the real link.

Real UDP on 127.0.0.1 both ways: the rig's python-osc link, and the device run in real time by
max4live/tools/udp-device.js (the Max double of max4live/harness/: every box of the patch, the
real rig-slots.js in its [js], buffer~ reading the WAV files, Live's transport). Ports are set the
way a performer sets them, through the device's OSC In Port and Rig Port parameters.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import FAST_RETRY, free_udp_port, wait_until

from rig.config import OscConfig
from rig.device.build import build_device
from rig.link import Link, LinkEvent

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "max4live" / "tools" / "udp-device.js"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


@pytest.fixture(scope="module", autouse=True)
def built_device() -> None:
    build_device(ROOT / "max4live" / "build")  # what udp-device.js runs


class NodeDevice:
    """The stand-in device process and the JSON events it prints."""

    def __init__(self, port: int, rig_port: int, takes: Path | None = None) -> None:
        self.events: list[dict] = []
        typed = ["--takes", str(takes)] if takes is not None else []
        self.proc = subprocess.Popen(
            ["node", str(HARNESS), "--port", str(port), "--rig-port", str(rig_port), *typed],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until(lambda: self.seen("ready"), timeout=10)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def seen(self, event: str, **fields: object) -> list[dict]:
        return [
            e
            for e in list(self.events)
            if e["event"] == event and all(e.get(k) == v for k, v in fields.items())
        ]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Link, list[LinkEvent], Path, int]]:
    takes = tmp_path / "takes"
    (takes / "s1").mkdir(parents=True)
    port = free_udp_port()
    link = Link(OscConfig(port=port, listen_port=0), takes, FAST_RETRY).start()
    events: list[LinkEvent] = []
    link.subscribe(events.append)
    yield link, events, takes, port
    link.close()


def write_loop(path: Path) -> Path:
    audio = np.random.default_rng(0).standard_normal((44100, 2)).astype(np.float32) * 0.1
    soundfile.write(path, audio, 44100, subtype="PCM_24")
    return path


def kinds(events: list[LinkEvent], kind: str) -> list[dict]:
    return [e.data for e in list(events) if e.kind == kind]


def sent(device: NodeDevice, address: str) -> list[list]:
    return [e["args"] for e in device.seen("send", address=address)]


def test_hello_folder_load_swap_and_ping(rig) -> None:
    link, events, takes, port = rig
    device = NodeDevice(port, link.port)  # no folder typed: the rig's answer to hello sets it
    try:
        wait_until(lambda: kinds(events, "hello"))
        assert kinds(events, "hello")[0] == {
            "version": "rig-slots 2.0 (protocol 2)",
            "slots": 8,
            "port": port,
        }
        wav = write_loop(takes / "s1" / "0001_loop_120bpm_2bars.wav")
        req = link.load(2, wav, 120.0, 2, 8, "s1-0001")
        wait_until(lambda: kinds(events, "loaded"))
        assert kinds(events, "loaded")[0] == {"slot": 2, "take_id": "s1-0001", "req_id": req}
        assert link.snapshot().slots[2].status == "loaded"
        assert [e["path"] for e in device.seen("read")] == [str(wav)]  # one read, any retries
        wait_until(lambda: {"slot": 2, "playing": True} in kinds(events, "playing"), timeout=8)
        wait_until(lambda: kinds(events, "tempo") and kinds(events, "timesig"))
        assert kinds(events, "tempo")[0]["bpm"] == 120.0
        assert link.snapshot().meter == "4/4"
        link.ping(77)
        wait_until(lambda: {"token": 77} in kinds(events, "pong"))
    finally:
        device.stop()


def test_a_reloaded_device_gets_its_slots_back(rig) -> None:
    link, events, takes, port = rig
    device = NodeDevice(port, link.port)
    wav = write_loop(takes / "s1" / "0001_loop.wav")
    try:
        wait_until(lambda: kinds(events, "hello"))
        link.load(1, wav, 120.0, 2, 8, "s1-0001")
        wait_until(lambda: kinds(events, "loaded"))
    finally:
        device.stop()
    again = NodeDevice(port, link.port)  # Live reloaded the device: it says hello
    try:
        wait_until(lambda: again.seen("read", path=str(wav)))
        wait_until(lambda: len(kinds(events, "loaded")) == 2)
        assert link.snapshot().slots[1].take_id == "s1-0001"
    finally:
        again.stop()


def test_the_error_path(rig) -> None:
    link, events, takes, port = rig
    (takes / "other").mkdir()
    device = NodeDevice(port, link.port, takes / "s1")  # the performer typed s1/ in
    try:
        wait_until(lambda: kinds(events, "hello"))
        outside = write_loop(takes / "other" / "x.wav")
        missing = takes / "s1" / "gone.wav"
        write_loop(missing)
        ids = {link.load(1, outside, 120.0, 2, 8, "a"): "outside the take folder"}
        missing.unlink()  # vanished between the rig's check and the device's
        ids[link.load(3, missing, 120.0, 2, 8, "c")] = "no readable file"
        wait_until(lambda: len(kinds(events, "error")) == 2, timeout=10)
        for error in kinds(events, "error"):
            assert ids[error["req_id"]] in error["message"]
        state = link.snapshot().slots
        assert {state[n].status for n in (1, 3)} == {"failed"}
        assert kinds(events, "loaded") == []
        assert device.proc.poll() is None  # still running
    finally:
        device.stop()
