"""Latents → stereo loop: synthesis, vocoder, and the four-latent left/right mix.

Every stage keeps the loop circular: the generator pads time circularly, and the vocoder sees the
spectrogram with :data:`WRAP_FRAMES` frames of its other end on each side, whose audio is then cut
away, so the last sample flows into the first.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from rig.checkpoint import LoopModel
from rig.engines.device import autocast
from rig.nn.mel import MelFrontEnd

# Mel frames of circular context on each side of the vocoder's input. It must cover the
# vocoder's receptive field, or the two sides of the loop point are computed from different
# contexts and click: the default iSTFT vocoder sees ±21 frames (a 7-tap embedding and six
# 7-tap blocks), plus 2 frames of iSTFT overlap. At 8 frames the pads model's seams jumped 2–6×
# the loop's 99.9th-percentile sample step; at 24, under 1× (the same as at 32).
WRAP_FRAMES = 24
# Mel projections after the vocoder (MelFrontEnd.match, boosts capped at 6 dB). Measured with the
# default iSTFT vocoder on 16 held-out loops each of drums / pads (independent 1024/256 mel
# distance): 0 → 0.290 / 0.360, 4 → 0.158 / 0.204; Griffin-Lim (64 iterations) 0.221 / 0.275.
# Each costs one STFT and one inverse STFT, about 12 ms per 4 s loop on one core.
MEL_MATCH_ITERATIONS = 4


@dataclass(frozen=True)
class Rendered:
    """What one render made."""

    stereo: np.ndarray  # [2, samples] float32 at the vocoder's rate, one loop of the model's bars
    spectrogram: np.ndarray  # [n_mels, frames] log-mel of the first latent
    seconds: dict[str, float]  # wall time per stage: synthesis, vocoder, mix


def pan_gains(count: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-power left and right gains for ``count`` sources spread evenly over ``±spread``.

    Source i sits at ``p_i = spread · (2i/(count-1) - 1)``; its gains are
    ``a_i = cos(π/4 (1 + p_i))``, ``b_i = cos(π/4 (1 − p_i))`` (= sin(π/4 (1 + p_i))), scaled by
    ``sqrt(2/count)``,
    so ``a_i² + b_i² = 2/count`` whatever the spread: uncorrelated sources of equal energy keep
    the energy of one of them played on both channels. ``spread = 0`` gives ``a == b``.

    Returns:
        ``([count], [count])`` float64 left and right gains.
    """
    positions = np.linspace(-1.0, 1.0, count) * spread if count > 1 else np.zeros(1)
    scale = math.sqrt(2.0 / count)
    left = np.cos(math.pi / 4 * (1.0 + positions)) * scale
    right = np.cos(math.pi / 4 * (1.0 - positions)) * scale  # exactly ``left`` at spread 0
    return left, right


def stereo_mix(sources: np.ndarray, spread: float) -> np.ndarray:
    """``[count, samples]`` mono sources → ``[2, samples]`` float32 (L = Σ aᵢxᵢ, R = Σ bᵢxᵢ)."""
    left, right = pan_gains(sources.shape[0], spread)
    return np.stack([left @ sources, right @ sources]).astype(np.float32)


def wrap_frames(mel: torch.Tensor, pad: int) -> torch.Tensor:
    """``[B, n_mels, frames]`` → ``[B, n_mels, frames + 2·pad]``, extended circularly (repeating
    the loop as often as ``pad`` needs)."""
    frames = mel.shape[-1]
    index = torch.arange(-pad, frames + pad, device=mel.device) % frames
    return mel[..., index]


def vocode_loops(
    vocoder: torch.nn.Module,
    front: MelFrontEnd,
    mel: torch.Tensor,
    match_iterations: int = MEL_MATCH_ITERATIONS,
) -> torch.Tensor:
    """``[B, n_mels, frames]`` natural-log mel of circular loops → ``[B, frames · hop]`` audio.

    ``front`` reads audio at the vocoder's output rate (``LoopModel.output_mel``; its ``hop``
    is the vocoder's). The vocoder and the mel projection (``front.match``,
    ``match_iterations`` times) see
    ``WRAP_FRAMES`` of wrapped context on each side, cut away afterwards (no seam at the loop
    point).
    """
    hop = front.spec.hop
    pad = WRAP_FRAMES
    wrapped = wrap_frames(mel, pad)
    audio = front.match(vocoder(wrapped)[:, 0].float(), wrapped, match_iterations)
    return audio[:, pad * hop : audio.shape[-1] - pad * hop]


def synthesize(model: LoopModel, ws: torch.Tensor, noise: str = "const") -> torch.Tensor:
    """``[B, w_dim]`` latents → ``[B, frames · hop]`` mono loops (float32, no autocast)."""
    spec = model.generator.synthesis(model.generator.broadcast(ws), noise)[:, 0].float()
    return vocode_loops(model.vocoder, _output_mel(model), model.mel.denormalize(spec))


def render(
    model: LoopModel,
    ws: torch.Tensor,
    spread: float,
    noise: str = "const",
    dtype: torch.dtype = torch.float32,
) -> Rendered:
    """Synthesise one spectrogram per latent, vocode them and mix them to stereo.

    Args:
        model: a loaded loop model (its modules on one device).
        ws: ``[count, w_dim]`` latents, on the model's device.
        spread: stereo width in [0, 1].
        noise: the synthesis noise mode ("const" makes the output a function of ``ws`` alone).
        dtype: compute dtype (fp16/bf16 autocast on a GPU).

    Returns:
        :class:`Rendered` with ``[2, frames · hop]`` audio.
    """
    device = ws.device
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with autocast(device, dtype):
        spec = model.generator.synthesis(model.generator.broadcast(ws), noise)[:, 0].float()
        mel = model.mel.denormalize(spec)
        _sync(device)
        seconds["synthesis"] = time.perf_counter() - start
        start = time.perf_counter()
        audio = vocode_loops(model.vocoder, _output_mel(model), mel)
        _sync(device)
    sources = audio.cpu().numpy()
    seconds["vocoder"] = time.perf_counter() - start
    start = time.perf_counter()
    stereo = stereo_mix(sources, spread)
    seconds["mix"] = time.perf_counter() - start
    return Rendered(stereo, mel[0].cpu().numpy(), seconds)


def repeat_to(audio: np.ndarray, samples: int) -> np.ndarray:
    """A circular loop ``[channels, n]`` repeated (or cut) to ``[channels, samples]``."""
    reps = -(-samples // audio.shape[1])
    return np.tile(audio, (1, reps))[:, :samples]


def _output_mel(model: LoopModel) -> MelFrontEnd:
    assert model.output_mel is not None  # set by LoopModel.__post_init__
    return model.output_mel


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
