"""What the rig's own process knows of the diffusion engines (``sao``, ``sa3``), without torch or
diffusers: how the worker builds them and the stage's line about their takes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rig.engines.base import EngineKind

if TYPE_CHECKING:
    from rig.takes import Take


def describe_diffusion_take(take: Take) -> str:
    """Model, steps and seed of a diffusion take."""
    info = take.engine_info
    model = str(info.get("model") or take.replay.model or "")
    steps = f"{info['steps']} steps" if info.get("steps") else ""
    return " · ".join(x for x in (model, steps, f"seed {take.replay.seed}") if x)


SAO = EngineKind(
    "sao",
    "rig.engines.diffusion:sao",
    describe=describe_diffusion_take,
    note="Stable Audio Open: minutes a loop on a CPU",
)
SA3 = EngineKind(
    "sa3",
    "rig.engines.diffusion:sa3",
    describe=describe_diffusion_take,
    note="Stable Audio 3",
)
