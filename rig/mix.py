"""Mono sources → stereo or quad: equal-power panning shared by the engines (the GAN engine's
four latents, the diffusion engine's variations)."""

from __future__ import annotations

import math

import numpy as np


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


def quad_gains(count: int, spread: float) -> np.ndarray:
    """Equal-power gains of ``count`` sources on four speakers (front left, front right, rear
    left, rear right).

    Source i has a home speaker ``i mod 4``; its power on speaker k is
    ``(1 − spread)/4 + spread · [k = home]``, scaled by ``4/count``, so every source keeps one
    power whatever the spread: ``spread = 0`` plays each on all four alike, ``spread = 1`` each
    on its own speaker.

    Returns:
        ``[4, count]`` float64 gains.
    """
    home = np.eye(4)[:, np.arange(count) % 4]  # [4, count]
    power = (1.0 - spread) / 4.0 + spread * home
    return np.sqrt(power * 4.0 / count)


def spatial_mix(sources: np.ndarray, spread: float, channels: int = 2) -> np.ndarray:
    """``[count, samples]`` mono sources → ``[channels, samples]`` float32: stereo
    (:func:`stereo_mix`) or quad (:func:`quad_gains`)."""
    if channels == 2:
        return stereo_mix(sources, spread)
    if channels != 4:
        raise ValueError(f"a mix has 2 or 4 channels, not {channels}")
    return (quad_gains(sources.shape[0], spread) @ sources).astype(np.float32)
