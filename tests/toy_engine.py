"""A toy engine that lives in the test suite only: everything the rig shows of it (a slider, a
MIDI-mappable control, the stage's line) comes from this module, with no change elsewhere."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rig.config import Config
from rig.engines.base import EngineKind, EngineOutput, ProgressFn, Request
from rig.params import Param
from rig.takes import Take

RATE = 22050
WOBBLE = Param("wobble", 0.0, 10.0, 2.0, doc="vibrato rate, Hz")


def toy_params(config: Config) -> list[Param]:
    return [WOBBLE]


def describe_toy(take: Take) -> str:
    return f"toy tone wobbling at {take.replay.controls['wobble']:g} Hz"


class ToyEngine:
    """A 220 Hz tone whose pitch wobbles at the ``wobble`` control's rate: 2 bars at 120 BPM.
    A prompt with the word "three" gives two more takes to audition, a fifth and an octave up."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def generate(self, request: Request, progress: ProgressFn) -> EngineOutput:
        wobble = float(request.controls.get("wobble", WOBBLE.default))
        progress(1, 1, "tone")
        replay = replace(request.recipe, controls={"wobble": wobble})
        main = EngineOutput(tone(220, wobble), RATE, {"wobble": wobble}, 120.0, True, replay=replay)
        if "three" not in request.prompt.text.split():
            return main
        others = tuple(
            replace(main, audio=tone(hz, wobble), metadata={"variation": k, "variations": 3})
            for k, hz in ((2, 330), (3, 440))
        )
        return replace(main, metadata={"variation": 1, "variations": 3}, variations=others)


def tone(hz: float, wobble: float) -> np.ndarray:
    """``[2, 4 s]`` of a tone at ``hz`` wobbling ±5 Hz at ``wobble`` Hz."""
    t = np.arange(4 * RATE) / RATE
    phase = 2 * np.pi * (hz * t + 5 * np.sin(2 * np.pi * wobble * t) / max(wobble, 1e-3))
    wave = (0.3 * np.sin(phase)).astype(np.float32)
    return np.stack([wave, wave])


TOY = EngineKind("toy", "toy_engine:ToyEngine", toy_params, describe_toy, note="a test toy")
