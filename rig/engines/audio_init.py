"""Diffusion from a take's audio instead of pure noise ("vary this take"): the take's loop is read,
tiled to the length being generated, encoded by the pipeline's VAE, and the sampler starts part
way down its noise schedule, so ``strength`` 1 is plain text-to-audio and lower strengths keep
more of the take.

``strength`` is the noise level in each model's own time t ∈ (0, 1], so it means the same on both:
0.5 is as much noise as signal.

* Stable Audio Open: its cosine schedule's time is t = atan(σ / σ_data) · 2/π, so the target is
  σ = σ_data · tan(strength · π/2); the DPM-Solver schedule drops its steps above that σ and the
  latents start at the first σ left: ``z = E(audio) + σ · ε``. (diffusers' own
  ``initial_audio_waveforms`` adds the encoded audio to noise at σ_max = 500, where it is
  drowned; a fraction of the steps would be too: the schedule is log-spaced, so half of the
  steps still start at σ ≈ 12.)
* Stable Audio 3: diffusers' ``StableAudio3AudioToAudioPipeline`` on the same components, with
  ``init_noise_level = strength`` (Stability's reference ``init_audio`` workflow).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from rig.engines.base import EngineError
from rig.loops import resample


def read_init_audio(path: Path, rate: int, samples: int, channels: int) -> torch.Tensor:
    """The loop in ``path`` as ``[1, channels, samples]`` float32 at ``rate`` Hz, repeated from its
    start to fill ``samples`` (a loop continues into its own beginning).

    Raises:
        EngineError: the file is missing or not audio.
    """
    try:
        data, source_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise EngineError(f"the take to vary from cannot be read: {path} ({error})") from None
    if data.shape[0] == 0:
        raise EngineError(f"the take to vary from is empty: {path}")
    audio = resample(np.ascontiguousarray(data.T), source_rate, rate)  # [C, T]
    if audio.shape[0] != channels:
        audio = np.repeat(audio.mean(axis=0, keepdims=True), channels, axis=0)
    tiled = np.tile(audio, (1, math.ceil(samples / audio.shape[1])))[:, :samples]
    return torch.from_numpy(np.ascontiguousarray(tiled))[None]


def check_strength(strength: float) -> float:
    """``strength`` as a float in (0, 1].

    Raises:
        EngineError: outside (0, 1] or not finite.
    """
    if not (math.isfinite(strength) and 0.0 < strength <= 1.0):
        raise EngineError(f"strength {strength!r}: how far from the take, in (0, 1] (1: ignore it)")
    return float(strength)


def skipped_steps(sigmas: torch.Tensor, sigma_data: float, strength: float) -> int:
    """How many steps of the schedule ``sigmas`` (descending, the terminal σ last) lie above the
    cosine time ``strength``: those with σ > σ_data · tan(strength · π/2); at least one runs."""
    target = sigma_data * math.tan(strength * math.pi / 2) if strength < 1.0 else math.inf
    above = int((sigmas[:-1] > target * (1 + 1e-6)).sum())
    return min(above, len(sigmas) - 2)


def start_partway(scheduler: Any, skip: int) -> Any:
    """A copy of ``scheduler`` (its class and config) whose ``set_timesteps`` drops the first
    ``skip`` steps of the schedule it would make, σ and timesteps together."""
    base: Any = type(scheduler)

    class StartPartway(base):
        def set_timesteps(self, *args: Any, **kwargs: Any) -> None:
            super().set_timesteps(*args, **kwargs)
            schedule: Any = self
            schedule.timesteps = schedule.timesteps[skip:]
            schedule.sigmas = schedule.sigmas[skip:]

    StartPartway.__name__ = base.__name__  # the take records the model's own scheduler
    return StartPartway.from_config(scheduler.config)


def sao_start(
    pipe: Any,
    audio: torch.Tensor,
    steps: int,
    strength: float,
    variations: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, Any, int]:
    """Stable Audio Open from ``audio`` (``[1, C, frames · hop]`` at the VAE's rate).

    Returns:
        ``(latents, scheduler, steps_run)``: the initial latents as the pipeline wants them
        (divided by the scheduler's ``init_noise_sigma``, which the pipeline multiplies back), a
        scheduler that starts ``steps − steps_run`` steps in, and the steps that will run.
    """
    pipe.scheduler.set_timesteps(steps)
    skip = skipped_steps(pipe.scheduler.sigmas, pipe.scheduler.config.sigma_data, strength)
    scheduler = start_partway(pipe.scheduler, skip)
    scheduler.set_timesteps(steps)
    sigma = float(scheduler.sigmas[0])
    vae = pipe.vae
    with torch.inference_mode():
        encoded = vae.encode(audio.to(vae.device, vae.dtype)).latent_dist.mode().float().cpu()
    noise = torch.randn((variations, *encoded.shape[1:]), generator=generator)
    latents = (encoded.repeat(variations, 1, 1) + sigma * noise) / scheduler.init_noise_sigma
    return latents.to(pipe.transformer.dtype), scheduler, steps - skip
