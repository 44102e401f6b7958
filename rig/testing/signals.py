"""Synthetic test signals for the benchmarks and the tests."""

from __future__ import annotations

import numpy as np


def drum_signal(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A drum-and-bass-like stereo signal ``[2, seconds × rate]``: noise hits + a 55 Hz tone.

    Hits fall on 8th notes at 120 BPM (every 0.25 s), rise over 2 ms like a real drum onset and
    decay with a 20 ms time constant.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    hits = np.zeros(n)
    attack = max(1, int(0.002 * rate))
    shape = np.exp(-np.arange(rate // 8) / (0.02 * rate))
    shape[:attack] *= np.linspace(0.0, 1.0, attack, endpoint=False)
    for start in range(0, n, rate // 4):
        length = min(n - start, shape.size)
        hits[start : start + length] += shape[:length]
    noise = rng.standard_normal((2, n)) * hits * 0.4
    tone = 0.2 * np.sin(2 * np.pi * 55.0 * t + np.array([[0.0], [0.3]]))
    return (noise + tone).astype(np.float32)
