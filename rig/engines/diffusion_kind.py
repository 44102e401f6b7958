"""What the rig's own process knows of the diffusion engines (``sao``, ``sa3``), without torch or
diffusers: how the worker builds them, their live controls (guidance and steps: page sliders,
MIDI CCs and OSC, no pipeline reload) and the stage's line about their takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rig.adapters import adapter_control, parse_loras
from rig.engines.base import EngineKind
from rig.params import Param

if TYPE_CHECKING:
    from rig.config import Config
    from rig.takes import Take

MAX_STEPS = 250
MAX_GUIDANCE = 15.0
MAX_LORA_STRENGTH = 2.0


def sampling_params(kind: str) -> Callable[[Config], list[Param]]:
    """The controls of engine ``kind``, starting at its configured defaults
    (``diffusion.<kind>_guidance`` / ``_steps``), and each LoRA's strength (0–2)."""

    def params(config: Config) -> list[Param]:
        guidance = float(getattr(config.diffusion, f"{kind}_guidance"))
        steps = int(getattr(config.diffusion, f"{kind}_steps"))
        return [
            Param(
                "guidance",
                1.0,
                MAX_GUIDANCE,
                min(max(guidance, 1.0), MAX_GUIDANCE),
                doc="classifier-free guidance: how closely to follow the text (1 = off)",
            ),
            Param(
                "steps",
                0.0,
                MAX_STEPS,
                min(steps, MAX_STEPS),
                doc="denoising steps: fewer are faster, rougher (0 = the model's own)",
            ),
            *lora_params(config.diffusion.loras),
        ]

    return params


def describe_diffusion_take(take: Take) -> str:
    """Model, steps and seed of a diffusion take."""
    info = take.engine_info
    model = str(info.get("model") or take.replay.model or "")
    steps = f"{info['steps']} steps" if info.get("steps") else ""
    return " · ".join(x for x in (model, steps, f"seed {take.replay.seed}") if x)


def lora_params(loras: tuple[str, ...]) -> list[Param]:
    """A strength control per LoRA of ``diffusion.loras`` (named after its folder)."""
    return [
        Param(
            adapter_control(folder),
            0.0,
            MAX_LORA_STRENGTH,
            min(max(strength, 0.0), MAX_LORA_STRENGTH),
            doc=f"strength of the LoRA {folder.name} (0 = off)",
        )
        for folder, strength in parse_loras(loras)
    ]


SAO = EngineKind(
    "sao",
    "rig.engines.diffusion:sao",
    params=sampling_params("sao"),
    from_audio=True,
    describe=describe_diffusion_take,
    note="Stable Audio Open: denoises only the loop's length; minutes a loop on a CPU",
)
SA3 = EngineKind(
    "sa3",
    "rig.engines.diffusion:sa3",
    params=sampling_params("sa3"),
    from_audio=True,
    describe=describe_diffusion_take,
    note="Stable Audio 3",
)
