"""Mono sources → stereo: equal-power panning shared by the engines (the GAN engine's four
latents, the diffusion engine's variations)."""

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
