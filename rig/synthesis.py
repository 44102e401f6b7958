"""Latents → stereo or quad loop: synthesis, re-timing, vocoder, and the four-latent mix.

Every stage keeps the loop circular: the generator pads time circularly, and the vocoder sees the
spectrogram with :data:`WRAP_FRAMES` frames of its other end on each side, whose audio is then cut
away, so the last sample flows into the first.

**Tempo-true.** A loop asked at another tempo than the model's is re-timed as a spectrogram, on
its own sixteenth grid, before the vocoder (:func:`timing_positions`): each sixteenth starts on its
new grid position with its onset frames as they are, and its tail stretched or squeezed to the
step's new length — so the vocoder makes fresh transients at the new tempo and nothing is
resampled (pitch untouched). The re-timed spectrogram runs a little past the loop's end; that
continuation is folded into the loop's start (:func:`fold_tail`), which makes the loop circular
again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rig.compute import autocast
from rig.loop_model import LoopModel
from rig.mix import spatial_mix
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
TAIL_FRAMES = 6  # mel frames rendered past a re-timed loop's end, folded into its start


@dataclass(frozen=True)
class Rendered:
    """What one render made."""

    audio: np.ndarray  # [channels, samples] float32 at the vocoder's rate, one loop of the bars
    spectrogram: np.ndarray  # [n_mels, frames] log-mel of the first latent
    seconds: dict[str, float]  # wall time per stage: synthesis, vocoder, mix


def wrap_frames(mel: torch.Tensor, pad: int) -> torch.Tensor:
    """``[B, n_mels, frames]`` → ``[B, n_mels, frames + 2·pad]``, extended circularly (repeating
    the loop as often as ``pad`` needs)."""
    frames = mel.shape[-1]
    index = torch.arange(-pad, frames + pad, device=mel.device) % frames
    return mel[..., index]


ATTACK_FRAMES = 2  # frames at each sixteenth's start kept as they are (the onset)


def timing_positions(
    frames: int, steps: int, stretch: float, first: int, count: int
) -> torch.Tensor:
    """Where in the source loop (in frames, fractional) each output frame lies when a loop of
    ``frames`` frames (``steps`` grid steps, e.g. 32 sixteenths) plays ``stretch`` times as long
    (model BPM / asked BPM).

    A piecewise-linear warp anchored at every step: output frame k lies t frames into step s of
    the stretched loop; its first ATTACK_FRAMES frames show the source step's first frames as
    they are (onsets stay sharp and land on the new grid), the rest of the stretched step maps
    evenly onto the rest of the source step (tails ring out slower or faster, continuously into
    the next step). Positions are periodic (negative k give the loop's end, for context).

    Returns:
        ``[count]`` float64 source positions for output frames ``first .. first + count - 1``
        (``stretch`` 1 gives ``k mod frames``).
    """
    k = torch.arange(first, first + count, dtype=torch.float64)
    period = frames * stretch
    step_out, step_in = period / steps, frames / steps
    position = torch.remainder(k, period)
    step = torch.floor(position / step_out + 1e-9)
    into = position - step * step_out
    attack = min(ATTACK_FRAMES, step_in - 1, step_out - 1)
    tail = (into - attack) * (step_in - attack) / max(step_out - attack, 1e-9) + attack
    return torch.remainder(step * step_in + torch.where(into < attack, into, tail), frames)


def retime(mel: torch.Tensor, stretch: float, steps: int, first: int, count: int) -> torch.Tensor:
    """``[B, n_mels, frames]`` circular log-mel → ``[B, n_mels, count]`` re-timed frames
    ``first ..`` at the positions of :func:`timing_positions`, between two frames linearly
    (log-mel)."""
    frames = mel.shape[-1]
    position = timing_positions(frames, steps, stretch, first, count).to(mel.device)
    below = torch.floor(position)
    weight = (position - below).to(mel.dtype)
    low = below.long() % frames
    return mel[..., low] * (1 - weight) + mel[..., (low + 1) % frames] * weight


def fold_tail(audio: torch.Tensor, period: int) -> torch.Tensor:
    """``[B, period + tail]`` audio whose last ``tail`` samples continue past the loop's end →
    ``[B, period]`` circular: the continuation fades linearly into the start, so the sample after
    the loop's last one is the one the render had there."""
    tail = audio[:, period:]
    length = min(tail.shape[1], period)
    if length == 0:
        return audio[:, :period]
    weight = torch.linspace(0.0, 1.0, length, device=audio.device)
    looped = audio[:, :period].clone()
    looped[:, :length] = tail[:, :length] * (1 - weight) + looped[:, :length] * weight
    return looped


def vocode_loops(
    vocoder: torch.nn.Module,
    front: MelFrontEnd,
    mel: torch.Tensor,
    match_iterations: int = MEL_MATCH_ITERATIONS,
    stretch: float = 1.0,
    steps: int = 32,
) -> torch.Tensor:
    """``[B, n_mels, frames]`` natural-log mel of circular loops → ``[B, samples]`` circular
    audio, ``samples`` = ``round(frames · stretch · hop)`` (``stretch`` = model BPM / asked BPM;
    the loop re-timed on its ``steps`` grid, see :func:`timing_positions`).

    ``front`` reads audio at the vocoder's output rate (``LoopModel.output_mel``; its ``hop``
    is the vocoder's). The vocoder and the mel projection (``front.match``,
    ``match_iterations`` times) see ``WRAP_FRAMES`` of the loop's own context on each side, cut
    away afterwards (no seam at the loop point).
    """
    hop = front.spec.hop
    pad = WRAP_FRAMES
    frames = mel.shape[-1]
    if stretch == 1.0:
        timed = wrap_frames(mel, pad)
    else:
        count = int(np.ceil(frames * stretch)) + TAIL_FRAMES
        timed = retime(mel, stretch, steps, -pad, count + 2 * pad)
    audio = front.match(vocoder(timed)[:, 0].float(), timed, match_iterations)
    audio = audio[:, pad * hop : audio.shape[-1] - pad * hop]
    return audio if stretch == 1.0 else fold_tail(audio, round(frames * stretch * hop))


def synthesize(
    model: LoopModel, ws: torch.Tensor, noise: str = "const", bpm: float | None = None
) -> torch.Tensor:
    """``[B, w_dim]`` latents → ``[B, samples]`` mono loops at the vocoder's rate (float32, no
    autocast), at ``bpm`` (None: the model's tempo; see :func:`render`)."""
    mel = model.spectrogram(ws, noise)
    return vocode_loops(model.vocoder, _output_mel(model), mel, **_timing(model, bpm))


def _timing(model: LoopModel, bpm: float | None) -> dict[str, Any]:
    """:func:`vocode_loops`' ``stretch`` and ``steps`` for a loop of ``model`` at ``bpm``."""
    audio = model.audio
    return {
        "stretch": audio.bpm / bpm if bpm else 1.0,
        "steps": audio.bars * audio.beats_per_bar * 4,  # sixteenths
    }


def render(
    model: LoopModel,
    ws: torch.Tensor,
    spread: float,
    noise: str = "const",
    dtype: torch.dtype = torch.float32,
    bpm: float | None = None,
    channels: int = 2,
) -> Rendered:
    """Synthesise one spectrogram per latent, re-time them to ``bpm``, vocode them and mix them
    to stereo or quad.

    Args:
        model: a loaded loop model (its modules on one device).
        ws: ``[count, w_dim]`` latents, on the model's device.
        spread: width in [0, 1] (stereo, or how far each latent keeps to its own speaker).
        noise: the synthesis noise mode ("const" makes the output a function of ``ws`` alone).
        dtype: compute dtype (fp16/bf16 autocast on a GPU).
        bpm: the tempo to render at (None: the model's own).
        channels: 2 (stereo) or 4 (quad: front left, front right, rear left, rear right).

    Returns:
        :class:`Rendered` with ``[channels, samples]`` audio, one circular loop of the model's
        bars at ``bpm`` (``round(frames · model BPM / bpm · hop)`` samples at the vocoder's rate).
    """
    device = ws.device
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with autocast(device, dtype):
        mel = model.spectrogram(ws, noise)
        _sync(device)
        seconds["synthesis"] = time.perf_counter() - start
        start = time.perf_counter()
        audio = vocode_loops(model.vocoder, _output_mel(model), mel, **_timing(model, bpm))
        _sync(device)
    sources = audio.cpu().numpy()
    seconds["vocoder"] = time.perf_counter() - start
    start = time.perf_counter()
    mixed = spatial_mix(sources, spread, channels)
    seconds["mix"] = time.perf_counter() - start
    return Rendered(mixed, mel[0].cpu().numpy(), seconds)


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
