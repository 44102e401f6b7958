"""The engine protocol and registry. Engines know nothing of OSC, Gradio or MIDI.

An engine is built by a factory ``factory(config) -> Engine`` named by an import string
(``"rig.engines.gan:GanEngine"``), so the worker process can build it after a fresh start.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rig.prompt import Prompt

if TYPE_CHECKING:
    from rig.config import Config

# name -> "module:factory"; the module is imported only when the engine is first built.
ENGINES: dict[str, str] = {
    "gan": "rig.engines.gan:GanEngine",
    "sao": "rig.engines.diffusion:sao",
    "sa3": "rig.engines.diffusion:sa3",
}


class EngineError(RuntimeError):
    """An engine cannot be found, built or run; the message says what to do."""


class Cancelled(Exception):
    """Raised from a progress callback when the request was cancelled."""


SEED_LIMIT = 2**31 - 1  # seeds are 0..2³¹−1 everywhere (page, MIDI, OSC, CLI, presets)
MAX_SLOTS = 64


class RequestError(ValueError):
    """A request field out of range; the message names the field, the value and the range."""


def check_seed(value: object) -> int:
    """A seed as an int in 0..2³¹−1 (a whole float is accepted), else :class:`RequestError`."""
    return _whole("seed", value, 0, SEED_LIMIT)


def check_slot(value: object, slots: int = MAX_SLOTS) -> int:
    """A device slot number in 1..``slots``, else :class:`RequestError`."""
    return _whole("slot", value, 1, slots)


def _whole(name: str, value: object, low: int, high: int) -> int:
    number = value
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
        raise RequestError(
            f"{name}: {value!r:.40} is not valid; accepted: whole numbers {low}-{high}"
        )
    return number


@dataclass(frozen=True)
class Request:
    """One generation request, built by the UI, MIDI or OSC handlers or the CLI."""

    prompt: Prompt
    engine: str
    model: str | None = None  # model name or folder; None = the engine's choice
    slot: int | None = None  # device slot (from 1) to send the take to; None = do not send
    seed: int | None = None  # None = a fresh random seed (the engine records the one it used)
    controls: Mapping[str, float] = field(default_factory=dict)  # named parameter values
    id: int = 0  # assigned by the session
    # A point in the engine's latent space to move toward (the GAN engine's w, as recorded in a
    # take's sidecar); with controls {"morph": 1.0} it reproduces that take.
    target: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.seed is not None:
            object.__setattr__(self, "seed", check_seed(self.seed))
        if self.slot is not None:
            object.__setattr__(self, "slot", check_slot(self.slot))
        for name, value in self.controls.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise RequestError(f"{name}: {value!r:.40} is not valid; accepted: a number")

    def seeded(self) -> Request:
        """This request with a fresh random seed if it has none, so every take can be redone."""
        if self.seed is not None:
            return self
        return replace(self, seed=random.randrange(SEED_LIMIT + 1))


@dataclass(frozen=True)
class EngineOutput:
    """Raw engine audio, before the loop tools."""

    audio: np.ndarray  # [channels, samples] float32, 1 or 2 channels
    sample_rate: int  # Hz
    metadata: Mapping[str, Any]  # seed, latent info, model, ... (JSON-able) for the sidecar
    source_bpm: float | None = None  # tempo the content was made at; None = unknown
    bar_aligned: bool = False  # True: starts on the bar, so no silence trimming
    spectrogram: np.ndarray | None = None  # [n_mels, frames] log-mel to show, if there is one


class ProgressFn(Protocol):
    """``progress(step, total, note)``; raises :class:`Cancelled` when the request is cancelled."""

    def __call__(self, step: int, total: int, note: str = "") -> None: ...


class Engine(Protocol):
    """What the session runs."""

    def generate(self, request: Request, progress: ProgressFn) -> EngineOutput:
        """Make raw audio for ``request``; call ``progress`` between steps."""
        ...


EngineFactory = Callable[["Config"], Engine]


def build_engine(name: str, registry: Mapping[str, str], config: Config) -> Engine:
    """Import and build the engine called ``name`` from ``registry`` (name → ``module:factory``).

    Raises:
        EngineError: unknown name, or the factory cannot be imported or fails.
    """
    if name not in registry:
        available = ", ".join(sorted(registry)) or "none are installed yet"
        raise EngineError(f"no engine named {name!r}; available: {available}")
    module_name, _, attr = registry[name].partition(":")
    try:
        factory: EngineFactory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise EngineError(
            f"engine {name!r} ({registry[name]}) cannot be imported: {error}"
        ) from None
    return factory(config)
