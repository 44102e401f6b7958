"""What the rig's own process knows of the GAN engine, without torch: its controls (core
controls plus each model's named directions, read from ``config.json``) for the page's sliders,
MIDI CCs and OSC, and the stage's line about its takes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rig.engines.base import EngineKind
from rig.params import TRUNCATION, Param
from rig.release import CheckpointError, directions_of, find_model_folders, read_config

if TYPE_CHECKING:
    from rig.config import Config
    from rig.takes import Take

CORE_PARAMS = (
    Param("morph", 0.0, 1.0, 0.35, doc="how far each generation moves w toward its target"),
    Param("variation", 0.0, 1.0, 0.15, "square", "spread of the four latents around w"),
    Param("spread", 0.0, 1.0, 0.7, doc="stereo width of the four latents (0 = mono)"),
    Param(
        "truncation", 0.0, 1.5, TRUNCATION, doc="ψ: pull toward the average loop (<1) or away (>1)"
    ),
)


def merge_direction(params: dict[str, Param], name: str, low: float, high: float, doc: str) -> None:
    """Add direction ``name`` to ``params``, widening the range if another model has it too."""
    known = params.get(name)
    if known is not None:
        low, high = min(low, known.low), max(high, known.high)
    params[name] = Param(name, low, high, 0.0, doc=doc)


def gan_schema(roots: tuple[Path, ...]) -> list[Param]:
    """Core controls, then the named directions of every model folder under ``roots``."""
    directions: dict[str, Param] = {}
    for folder in find_model_folders(roots):
        try:
            listed = directions_of(read_config(folder))
        except (CheckpointError, AttributeError):
            continue  # the engine reports a broken folder; the schema just skips it
        for name, (low, high, text) in listed.items():
            merge_direction(directions, name, low, high, text)
    return [*CORE_PARAMS, *directions.values()]


def gan_params(config: Config) -> list[Param]:
    """The GAN engine's controls for the models under ``paths.models``."""
    return gan_schema(config.paths.models)


def describe_gan_take(take: Take) -> str:
    """Where the latent is: model, generation count, morph step and seed."""
    info = take.engine_info
    if "generation" not in info:
        return f"{info.get('model', take.replay.model or '')} · seed {take.replay.seed}"
    return (
        f"{info.get('model')} · generation {info['generation']} · morph "
        f"{float(info.get('morph', 0)):.2f} · seed {info.get('seed')}"
    )


GAN = EngineKind(
    "gan",
    "rig.engines.gan:GanEngine",
    params=gan_params,
    describe=describe_gan_take,
    follows_tempo=True,
    note="real time",
)
