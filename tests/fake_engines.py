"""A test-only engine (never shipped): its behaviour is chosen by words in the prompt.

- default: 2 bars at 120 BPM (+ a seam tail) of tone and noise hits, 22.05 kHz stereo;
- "crash": the process exits at once; "hang": it sleeps for an hour; "fail": it raises;
- "slow": 200 progress steps of 20 ms (for cancellation).
"""

from __future__ import annotations

import os
import time

from rig.config import Config
from rig.engines.base import EngineKind, EngineOutput, ProgressFn, Request
from rig.testing.signals import drum_signal

RATE = 22050


class WordEngine:
    """Behaves as the prompt says; otherwise makes a loop-like signal from the seed."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def generate(self, request: Request, progress: ProgressFn) -> EngineOutput:
        words = request.prompt.text.split()
        if "crash" in words:
            os._exit(3)
        if "hang" in words:
            time.sleep(3600)
        if "fail" in words:
            raise ValueError("the test engine was asked to fail")
        steps = 200 if "slow" in words else 4
        for step in range(1, steps + 1):
            progress(step, steps, "denoising")
            if "slow" in words:
                time.sleep(0.02)
        return EngineOutput(
            audio=drum_signal(4.05, RATE, request.seed or 0),
            sample_rate=RATE,
            metadata={"seed": request.seed, "words": words},
            source_bpm=120.0,
            bar_aligned=True,
        )


class SlowLoadingEngine(WordEngine):
    """A WordEngine that takes 3 s to build (a big model loading)."""

    def __init__(self, config: Config) -> None:
        time.sleep(3.0)
        super().__init__(config)


WORD = EngineKind("word", "fake_engines:WordEngine", note="a test engine")
SLOWLOAD = EngineKind("slowload", "fake_engines:SlowLoadingEngine")
REGISTRY = {"word": "fake_engines:WORD", "slowload": "fake_engines:SLOWLOAD"}
