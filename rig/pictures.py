"""Spectrogram pictures shared by the UI and the trainers (numpy + Pillow)."""

from __future__ import annotations

import numpy as np
from PIL import Image

# A dark-to-bright palette (black → purple → orange → pale yellow), 256 entries.
_ANCHORS = np.array([[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]])
PALETTE = np.stack(
    [np.interp(np.linspace(0, 4, 256), np.arange(5), _ANCHORS[:, c]) for c in range(3)], axis=1
).astype(np.uint8)


def mel_image(
    log_mel: np.ndarray,
    width: int = 640,
    height: int = 200,
    limits: tuple[float, float] | None = None,
) -> Image.Image:
    """An engine's ``[n_mels, frames]`` log-mel spectrogram (low bins at the bottom) as an image,
    scaled from its own minimum to its maximum or between ``limits`` (low, high; values beyond
    are clipped), which puts several pictures on one scale."""
    low, high = limits or (float(log_mel.min()), float(log_mel.max()))
    level = np.clip((log_mel - low) / ((high - low) or 1.0), 0.0, 1.0)
    pixels = PALETTE[(level[::-1] * 255).astype(np.uint8)]
    return Image.fromarray(pixels).resize((width, height), Image.Resampling.NEAREST)


def spectrogram_grid(
    log_mels: np.ndarray, columns: int = 4, width: int = 320, height: int = 120, gap: int = 4
) -> Image.Image:
    """``[B, n_mels, frames]`` spectrograms as one image, ``columns`` per row, each scaled to its
    own range (a quick look at what a generator makes)."""
    count = len(log_mels)
    rows = -(-count // columns)
    grid = Image.new("RGB", (columns * (width + gap) - gap, rows * (height + gap) - gap), "white")
    for index, log_mel in enumerate(log_mels):
        x, y = (index % columns) * (width + gap), (index // columns) * (height + gap)
        grid.paste(mel_image(np.asarray(log_mel), width, height), (x, y))
    return grid
