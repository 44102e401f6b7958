"""Loop engines: each turns a :class:`~rig.engines.base.Request` (a recipe in the queue) into raw
audio and the recipe that makes it again."""

from rig.engines.base import (
    ENGINES,
    Cancelled,
    Engine,
    EngineError,
    EngineKind,
    EngineOutput,
    ProgressFn,
    Recipe,
    RecipeError,
    Request,
    build_engine,
    engine_kind,
)

__all__ = [
    "ENGINES",
    "Cancelled",
    "Engine",
    "EngineError",
    "EngineKind",
    "EngineOutput",
    "ProgressFn",
    "Recipe",
    "RecipeError",
    "Request",
    "build_engine",
    "engine_kind",
]
