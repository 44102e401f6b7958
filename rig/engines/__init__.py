"""Loop engines: each turns a :class:`rig.engines.base.Request` into raw audio."""

from rig.engines.base import (
    ENGINES,
    Cancelled,
    Engine,
    EngineError,
    EngineOutput,
    ProgressFn,
    Request,
    build_engine,
)

__all__ = [
    "ENGINES",
    "Cancelled",
    "Engine",
    "EngineError",
    "EngineOutput",
    "ProgressFn",
    "Request",
    "build_engine",
]
