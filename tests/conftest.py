"""Shared fixtures: free UDP ports, a take folder, a config, a stand-in device wired to a link."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from rig.config import AudioConfig, Config, OscConfig, PathsConfig, SessionConfig
from rig.link import Link, RetryPolicy
from rig.testing.standin import StandInDevice

pytest_plugins = ["perf_fixtures"]  # the perf_rig fixture

FAST_RETRY = RetryPolicy(first_s=0.05, factor=2.0, max_s=0.2, attempts=4)


def free_udp_port() -> int:
    """A UDP port that is free right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Defaults with a temporary take folder and free ports."""
    return Config(
        osc=OscConfig(port=free_udp_port(), listen_port=free_udp_port()),
        paths=PathsConfig(takes=tmp_path / "takes", models=(tmp_path / "models",)),
        audio=AudioConfig(),
        session=SessionConfig(timeout_s=60.0, warm=False),
    )


@pytest.fixture
def device_and_link(tmp_path: Path) -> Iterator[tuple[StandInDevice, Link]]:
    """A stand-in device and a started link talking to each other over UDP on 127.0.0.1."""
    device = StandInDevice(rig_port=0)
    link = Link(OscConfig(port=device.port, listen_port=0), tmp_path / "takes", FAST_RETRY)
    (tmp_path / "takes").mkdir()
    link.start()
    device.rig_port = link.port
    device.start()
    yield device, link
    link.close()
    device.close()


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``condition`` every 5 ms until it is true; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.005)


def wrap_jump(audio: np.ndarray) -> np.ndarray:
    """Per channel: |last sample − first sample| of a loop ``[C, S]``."""
    return np.abs(audio[:, -1] - audio[:, 0])


def step_p95(audio: np.ndarray) -> np.ndarray:
    """Per channel: the 95th percentile of |sample-to-sample step| inside the loop."""
    return np.percentile(np.abs(np.diff(audio, axis=1)), 95, axis=1)
