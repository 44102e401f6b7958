"""Where the z latents of a StyleGAN2 loop model come from: three streams that never meet.

- **A take**: the performer's seed ``s`` (0..2³¹−1, :func:`rig.engines.base.check_seed`) is the
  first row of torch's CPU generator seeded with ``s`` (:class:`rig.engines.gan.GanEngine`,
  unchanged since the first release, so a recorded seed replays).
- **A measurement** (``rig eval``, direction fitting and checks, calibration, the listening
  report, the engine's measure of a model's spread): draw ``d`` is ``count`` rows of torch's
  generator seeded with 2³¹ + ``d``. torch seeds its CPU generator (MT19937) from the low 32 bits
  of the seed (``manual_seed(2**32)`` is ``manual_seed(0)``), so these are the 32-bit seeds no
  performer can give.
- **A training step**: numpy's PCG64 seeded with the entropy ``(TRAINING_STREAM, run seed,
  step)`` (a ``SeedSequence``): another generator altogether, and a resumed run draws exactly what
  an uninterrupted one would.

Why (measured 2026-12-02): ``rig eval``, the directions, the listening report and the engine's
spread all drew their latents from torch's seed 0 (calibration from seed 1), and all five shipped
models map the first latents of that stream far out of their own w distribution: 115–116 of its
first 200 lie beyond the 99th percentile of ``|w − w_avg|`` over 20 000 other latents (an
untrained generator: 2; seed 1's or measurement draw 0's latents: 0–5), and the spread of w the
engine measured on 64 of them was 1.9× the typical one. Why the models learnt those latents
apart is not established (the trainer's own draws from a fresh start share 0.4 % of their
numbers); a stream of their own takes every measurement off them. And runs drew their z from
torch's global generator, re-seeded at every start, so a resumed run drew other latents than an
unbroken one would have.
"""

from __future__ import annotations

import numpy as np
import torch

MEASUREMENT_BASE = 2**31  # measurement draw d: torch seed MEASUREMENT_BASE + d (< 2³²)
TRAINING_STREAM = 0x6C61_7465  # the first entropy word of every training step's SeedSequence


def measurement_latents(z_dim: int, count: int, draw: int = 0) -> torch.Tensor:
    """``[count, z_dim]`` standard-normal latents of measurement draw ``draw`` (0..2³¹−1); the
    same numbers on every machine, and none of them a take's or a training step's."""
    if not 0 <= draw < 2**32 - MEASUREMENT_BASE:
        raise ValueError(f"a measurement draw is in 0..2³¹−1, got {draw}")
    rng = torch.Generator().manual_seed(MEASUREMENT_BASE + draw)
    return torch.randn(count, z_dim, generator=rng)


def training_rng(run_seed: int, step: int) -> np.random.Generator:
    """The generator of training step ``step``'s latents and style mixing in a run seeded
    ``run_seed`` (both ≥ 0)."""
    if run_seed < 0 or step < 0:
        raise ValueError(f"a run seed and a step are ≥ 0, got {run_seed} and {step}")
    return np.random.default_rng(np.random.SeedSequence((TRAINING_STREAM, run_seed, step)))


def training_latents(rng: np.random.Generator, count: int, z_dim: int) -> torch.Tensor:
    """``[count, z_dim]`` standard-normal float32 latents from a :func:`training_rng`."""
    return torch.from_numpy(rng.standard_normal((count, z_dim), dtype=np.float32))
