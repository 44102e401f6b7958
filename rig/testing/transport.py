"""Live's transport as a stand-in device says it: ``/rig/position`` on each beat, on time, in
4/4 from bar 1 (the tests and ``rig bench evolve``)."""

from __future__ import annotations

import threading
import time

from rig.testing.standin import StandInDevice


class PlayingTransport:
    """Plays at ``bpm`` from when it is entered until it is left."""

    def __init__(self, device: StandInDevice, bpm: float) -> None:
        self.device, self.bpm, self.beat_s = device, bpm, 60.0 / bpm
        self.t0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name="standin-transport", daemon=True)

    def bar_start(self, bar: int) -> float:
        """``time.monotonic()`` at which ``bar`` (from 1) starts."""
        return self.t0 + (bar - 1) * 4 * self.beat_s

    def bar_after(self, moment: float) -> int:
        """The first bar that starts after ``moment``."""
        return int((moment - self.t0) // (4 * self.beat_s)) + 2

    def _play(self) -> None:
        beat = 0
        while not self._stop.is_set():
            delay = self.t0 + beat * self.beat_s - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            self.device.send("/rig/position", 1 + beat // 4, 1.0 + beat % 4, self.bpm)
            beat += 1

    def __enter__(self) -> PlayingTransport:
        self.t0 = time.monotonic() + 0.05
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
