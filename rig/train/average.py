"""An exponential moving average of a network's weights, kept beside the network a run trains.

Adam at a constant learning rate keeps the weights moving around a minimum; their average over
the last few thousand steps sits nearer its middle, which the last weights alone rarely do (Polyak
averaging; the EMA generator of StyleGAN2 is the same idea). Release folders are exported from it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage(nn.Module):
    """The EMA of ``network``'s parameters (its buffers are copied), as ``self.average``.

    ``decay`` per update (0.999: a time constant of ~1000 steps); the first updates average
    with a shorter memory, ``min(decay, (1 + n) / (10 + n))`` after n updates, so that a young
    run's average is not dominated by its random start. ``updates`` counts them and is saved
    with the checkpoint; an average that was never updated (a run begun before averaging
    existed, resumed) starts as a copy of the live weights.
    """

    updates: torch.Tensor

    def __init__(self, network: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the weight average's decay must be in [0, 1), got {decay}")
        self.average = copy.deepcopy(network).eval().requires_grad_(False)
        self.decay = decay
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        """Move the average toward ``network``'s current weights."""
        n = int(self.updates)
        blend_weights(self.average, network, 0.0 if n == 0 else min(self.decay, (1 + n) / (10 + n)))
        self.updates += 1


@torch.no_grad()
def blend_weights(average: nn.Module, live: nn.Module, keep: float) -> None:
    """One EMA step: each parameter of ``average`` becomes ``keep · itself + (1 − keep) · live``'s;
    buffers (running statistics such as StyleGAN2's ``w_avg``) are copied from ``live``. The two
    networks must have the same architecture."""
    for mine, current in zip(average.parameters(), live.parameters(), strict=True):
        mine.lerp_(current, 1.0 - keep)
    for kept, buffer in zip(average.buffers(), live.buffers(), strict=True):
        kept.copy_(buffer)
