"""Recipes, requests, the engine protocol and the registry. Engines know nothing of OSC, Gradio
or MIDI.

The flow: a :class:`Recipe` (what to make) → a :class:`Request` (a recipe with a queue id) → an
:class:`Engine` in the worker process → :class:`EngineOutput` (audio and the recipe that makes it
again) → the loop tools → a :class:`rig.takes.Take` → the device link.

Each engine registers an :class:`EngineKind` by name (``"rig.engines.gan_kind:GAN"``): a light
description the rig's own process reads (controls, how its takes are described) and the import
string of the factory the worker calls after a fresh start.
"""

from __future__ import annotations

import importlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Protocol, Self

import numpy as np

from rig.params import Param
from rig.prompt import Prompt, format_prompt, parse_prompt

if TYPE_CHECKING:
    from rig.config import Config
    from rig.takes import Take

# name -> "module:KIND", an :class:`EngineKind` in a module light enough for the rig's own process
# (no torch); the engine itself is built in the worker.
ENGINES: dict[str, str] = {
    "gan": "rig.engines.gan_kind:GAN",
    "sao": "rig.engines.diffusion_kind:SAO",
    "sa3": "rig.engines.diffusion_kind:SA3",
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


RECIPE_VERSION = 1


CHANNELS = "channels"  # a recipe setting: 4 makes a quad take (absent: stereo)


def output_channels(recipe: Recipe) -> int:
    """The channels a recipe's take has: 2 (stereo, the default) or 4 (quad: front left, front
    right, rear left, rear right).

    Raises:
        RequestError: another count.
    """
    channels = recipe.settings.get(CHANNELS, 2)
    if isinstance(channels, bool) or channels not in (2, 4):
        raise RequestError(f"channels: {channels!r:.20} is not valid; accepted: 2 or 4")
    return int(channels)


class RecipeError(ValueError):
    """A recorded recipe that cannot be read back; the message names the field."""


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a take: the prompt, the engine and its model, the seed, the
    engine's controls and settings, and the device slot it goes to.

    What was asked is a recipe (a :class:`Request` is one plus its queue id); what an engine
    made comes back with the recipe that makes it again exactly (:attr:`EngineOutput.replay`).
    A take records both (:class:`rig.takes.Take`). JSON round trip: :meth:`to_json`,
    :meth:`from_json`.
    """

    prompt: Prompt
    engine: str
    model: str | None = None  # model name or folder; None = the engine's choice
    slot: int | None = None  # device slot (from 1) to send the take to; None = do not send
    seed: int | None = None  # None = a fresh random seed (the engine records the one it used)
    controls: Mapping[str, float] = field(default_factory=dict)  # the engine's named controls
    # A point in the engine's latent space to move toward (the GAN engine's w); with the
    # control morph = 1 the engine lands on it, which reproduces a take.
    target: tuple[float, ...] | None = None
    # Engine-specific choices that are not controls (a diffusion engine's scheduler, steps,
    # guidance, LoRAs): JSON-able; the engine reads what it knows.
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seed is not None:
            object.__setattr__(self, "seed", check_seed(self.seed))
        if self.slot is not None:
            object.__setattr__(self, "slot", check_slot(self.slot))
        for name, value in self.controls.items():
            if not _finite(value):
                raise RequestError(f"{name}: {value!r:.40} is not valid; accepted: a number")
        if self.target is not None:
            if not all(_finite(x) for x in self.target):
                raise RequestError("target: not a list of finite numbers")
            object.__setattr__(self, "target", tuple(float(x) for x in self.target))

    def seeded(self) -> Self:
        """This recipe with a fresh random seed if it has none, so every take can be redone."""
        if self.seed is not None:
            return self
        return replace(self, seed=random.randrange(SEED_LIMIT + 1))

    @property
    def recipe(self) -> Recipe:
        """The recipe alone (a :class:`Request` without its id)."""
        return Recipe(**{f.name: getattr(self, f.name) for f in fields(Recipe)})

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``"version"`` :data:`RECIPE_VERSION`; the prompt as its canonical text
        plus its fields, for people reading the file)."""
        prompt = self.prompt
        return {
            "version": RECIPE_VERSION,
            "prompt": {
                "full": format_prompt(prompt),
                "text": prompt.text,
                "tempo": prompt.tempo,
                "key": prompt.key,
                "bars": prompt.bars,
                "meter": prompt.meter,
                "genre": prompt.genre,
                "instrument": prompt.instrument,
                "tags": dict(prompt.tags),
            },
            "engine": self.engine,
            "model": self.model,
            "slot": self.slot,
            "seed": self.seed,
            "controls": dict(self.controls),
            "target": list(self.target) if self.target is not None else None,
            "settings": dict(self.settings),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recipe:
        """Inverse of :meth:`to_json`: the prompt is parsed again from its canonical text, and
        every field checked.

        Raises:
            RecipeError: another version, a missing field or a value out of range (named).
        """
        version = data.get("version") if isinstance(data, Mapping) else None
        if version != RECIPE_VERSION:
            raise RecipeError(f"recipe version {version!r} (this rig reads {RECIPE_VERSION})")
        try:
            return cls(
                parse_prompt(str(data["prompt"]["full"])),
                str(data["engine"]),
                data.get("model"),
                data.get("slot"),
                data.get("seed"),
                dict(data.get("controls") or {}),
                data.get("target"),
                dict(data.get("settings") or {}),
            )
        except (KeyError, TypeError) as error:
            raise RecipeError(f"recipe: missing or malformed field {error}") from None
        except ValueError as error:  # PromptError, RequestError
            raise RecipeError(f"recipe: {error}") from None


@dataclass(frozen=True)
class Request(Recipe):
    """A recipe in the session's queue: the recipe plus the id the session gave it."""

    id: int = 0  # assigned by the session

    @classmethod
    def of(cls, recipe: Recipe, request_id: int) -> Request:
        """``recipe`` as request ``request_id``."""
        return cls(**{f.name: getattr(recipe, f.name) for f in fields(Recipe)}, id=request_id)


def _finite(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class EngineOutput:
    """Raw engine audio, before the loop tools, and what made it."""

    audio: np.ndarray  # [channels, samples] float32, 1 or 2 channels
    sample_rate: int  # Hz
    metadata: Mapping[str, Any]  # the engine's account (seed, latent, model...; JSON-able)
    source_bpm: float | None = None  # tempo the content was made at; None = unknown
    bar_aligned: bool = False  # True: starts on the bar, so no silence trimming
    spectrogram: np.ndarray | None = None  # [n_mels, frames] log-mel to show, if there is one
    replay: Recipe | None = None  # the recipe that makes this again (None: the request's own)
    # More takes from the same call to audition (a diffusion engine's other waveforms), each
    # with the replay recipe that makes it again; the first output is the one a slot gets.
    variations: tuple[EngineOutput, ...] = ()


class ProgressFn(Protocol):
    """``progress(step, total, note)``; raises :class:`Cancelled` when the request is cancelled."""

    def __call__(self, step: int, total: int, note: str = "") -> None: ...


class Engine(Protocol):
    """What the session runs."""

    def generate(self, request: Request, progress: ProgressFn) -> EngineOutput:
        """Make raw audio for ``request``; call ``progress`` between steps."""
        ...


EngineFactory = Callable[["Config"], Engine]


def no_params(config: Config) -> list[Param]:
    """An engine without controls."""
    return []


def describe_recipe(take: Take) -> str:
    """The stage's line about a take when its engine says nothing more: model and seed."""
    replay = take.replay
    return " · ".join(x for x in (replay.engine, replay.model, f"seed {replay.seed}") if x)


@dataclass(frozen=True)
class EngineKind:
    """What the rig's own process knows of an engine without loading it (no torch): how the
    worker builds it, its controls (the page's sliders, MIDI CCs, OSC), how the stage describes
    its takes, and whether it re-renders the slots when Live's tempo settles.

    Registered by name as ``"module:ATTR"`` (:data:`ENGINES`, or a session's own registry), so an
    engine brings everything the rig shows of it in its own modules.
    """

    name: str
    factory: str  # "module:callable", callable(config) -> Engine; imported in the worker only
    params: Callable[[Config], list[Param]] = no_params
    describe: Callable[[Take], str] = describe_recipe
    follows_tempo: bool = False  # cheap enough to re-render every slot at a new tempo
    # Starts from a take's audio when a request's settings name one ("init_audio", "strength")
    from_audio: bool = False
    note: str = ""  # one line for the page's engine menu (speed, cost)

    def build(self, config: Config) -> Engine:
        """Import the factory and build the engine.

        Raises:
            EngineError: the factory cannot be imported.
        """
        module_name, _, attr = self.factory.partition(":")
        try:
            factory: EngineFactory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as error:
            raise EngineError(
                f"engine {self.name!r} ({self.factory}) cannot be imported: {error}"
            ) from None
        return factory(config)


def engine_kind(name: str, registry: Mapping[str, str]) -> EngineKind:
    """The :class:`EngineKind` registered as ``name``.

    Raises:
        EngineError: unknown name, or the entry cannot be imported or is not an EngineKind.
    """
    if name not in registry:
        available = ", ".join(sorted(registry)) or "none are installed yet"
        raise EngineError(f"no engine named {name!r}; available: {available}")
    module_name, _, attr = registry[name].partition(":")
    try:
        kind = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise EngineError(
            f"engine {name!r} ({registry[name]}) cannot be imported: {error}"
        ) from None
    if not isinstance(kind, EngineKind):
        raise EngineError(f"engine {name!r}: {registry[name]} is not an EngineKind")
    return kind


def build_engine(name: str, registry: Mapping[str, str], config: Config) -> Engine:
    """Build the engine registered as ``name`` (in the worker process).

    Raises:
        EngineError: unknown name, or the engine cannot be imported.
    """
    return engine_kind(name, registry).build(config)
