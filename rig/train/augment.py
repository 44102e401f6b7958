"""Augmentations for training on small data: differentiable spectrogram augmentation for the
GAN discriminator, and audio augmentation for the vocoder.

**Spectrograms** (DiffAugment, Zhao et al. 2020; ADA, Karras et al. 2020): the discriminator
sees reals *and* fakes through the same random, differentiable transforms, so it cannot memorise
a few thousand loops. The generator still learns the un-augmented loops as long as each
transform is applied with a probability ``p`` well below 1 (ADA found no leaking below ~0.8): a
shift, in particular, must stay rare enough that the un-shifted bar phase remains what the
discriminator expects, or the downbeat would drift off frame 0.

- ``shift``: circular shift in time by a whole number of sixteenths (the loops are circular);
- ``mask``: a band of up to 1/8 of the mel bins set to the per-bin mean (0 when normalised);
- ``gain``: ±6 dB on the whole spectrogram (a constant in log magnitude, divided by the
  per-bin std in normalised units).

**Audio** (for the vocoder; not differentiable, on real audio only): random gain (−12…+6 dB),
a spectral tilt (−6…+6 dB per octave-ish around 1 kHz, by FFT) and a pitch change of up to ±2
semitones by band-limited resampling (FFT), each with probability ``p``. The vocoder must map any
mel to its audio; these teach it levels, spectral balances and pitches the corpus lacks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SPECTROGRAM_AUGMENTS = ("shift", "mask", "gain")
ADA_TARGET = 0.6  # ADA's target for E[sign(D(real))]
ADA_INTERVAL = 4  # steps between adjustments
ADA_KIMG = 20  # thousands of images for p to go from 0 to 1 (ADA uses 500 for millions)
GAIN_DB = 6.0
MASK_FRACTION = 8  # at most n_mels / 8 bins masked


def augment_spectrograms(
    x: torch.Tensor,
    p: float,
    steps: int,
    std: torch.Tensor,
    kinds: tuple[str, ...] = SPECTROGRAM_AUGMENTS,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Randomly augment a batch of normalised log-mel spectrograms (differentiably in ``x``).

    Args:
        x: ``[B, 1, n_mels, frames]`` normalised log-mel (per-bin zero mean, unit std).
        p: probability of each transform, per item.
        steps: grid steps of one loop (32 sixteenths for 2 bars of 4/4); ``frames`` must be a
            multiple of it for ``shift``.
        std: ``[n_mels]`` per-bin std of the un-normalised log-mel (for ``gain``).
        kinds: which of :data:`SPECTROGRAM_AUGMENTS` to apply.
        generator: random source (CPU); None uses torch's global one.

    Returns:
        ``[B, 1, n_mels, frames]``.
    """
    if p <= 0:
        return x
    batch, _, n_mels, frames = x.shape
    device = x.device

    def chosen() -> torch.Tensor:
        return (torch.rand(batch, generator=generator) < p).to(device)

    if "shift" in kinds and frames % steps == 0:
        shifts = torch.randint(steps, (batch,), generator=generator) * (frames // steps)
        shifts = torch.where(chosen().cpu(), shifts, torch.zeros_like(shifts))
        index = (torch.arange(frames)[None, :] - shifts[:, None]) % frames  # [B, frames]
        x = torch.gather(x, 3, index.to(device)[:, None, None, :].expand_as(x))
    if "mask" in kinds:
        width = torch.randint(1, max(2, n_mels // MASK_FRACTION + 1), (batch,), generator=generator)
        start = (torch.rand(batch, generator=generator) * (n_mels - width + 1)).long()
        bins = torch.arange(n_mels)[None, :]
        band = (bins >= start[:, None]) & (bins < (start + width)[:, None])  # [B, n_mels]
        keep = ~(band.to(device) & chosen()[:, None])
        x = x * keep[:, None, :, None].to(x.dtype)
    if "gain" in kinds:
        decibels = (torch.rand(batch, generator=generator) * 2 - 1) * GAIN_DB
        nats = (decibels * math.log(10) / 20).to(device) * chosen()
        x = x + nats[:, None, None, None] / std.to(device)[None, None, :, None]
    return x


class AdaptiveProbability(nn.Module):
    """The augmentation probability ``p``, adapted as in ADA (Karras et al. 2020): every
    ``ADA_INTERVAL`` steps, ``p`` moves by ``batch · interval / (ADA_KIMG · 1000)`` up when the
    discriminator's mean sign on reals exceeds ``ADA_TARGET`` (it overfits) and down when not,
    within [0, 0.8] (above that augmentations leak into the generator). A buffer, so it is saved
    and resumed with the run."""

    p: torch.Tensor
    signs: torch.Tensor

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.register_buffer("p", torch.tensor(float(initial)))
        self.register_buffer("signs", torch.zeros(2))  # running sum of sign(D(real)), count

    def observe(self, real_sign: float, batch: int) -> float:
        """Record a step's mean sign of D on its ``batch`` reals; adjust ``p`` every
        ADA_INTERVAL steps. Returns the current p."""
        self.signs += torch.tensor([real_sign * batch, float(batch)])
        if self.signs[1] >= ADA_INTERVAL * batch:
            overfit = float(self.signs[0] / self.signs[1])
            step = batch * ADA_INTERVAL / (ADA_KIMG * 1000)
            self.p.copy_((self.p + (step if overfit > ADA_TARGET else -step)).clamp(0.0, 0.8))
            self.signs.zero_()
        return float(self.p)


def augment_audio(x: torch.Tensor, rate: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """Random gain, spectral tilt and pitch for a batch of audio crops.

    Args:
        x: ``[B, samples]`` float audio at ``rate`` Hz.
        rate: sample rate, Hz.
        p: probability of each transform, per item.
        generator: random source (CPU).

    Returns:
        ``[B, samples]`` float32, the same length.
    """
    if p <= 0:
        return x
    out = []
    for item in x:
        draws = torch.rand(6, generator=generator).tolist()
        if draws[0] < p:
            semitones = (draws[1] * 2 - 1) * 2.0
            item = _repitch(item, 2 ** (semitones / 12))
        if draws[2] < p:
            item = _tilt(item, rate, (draws[3] * 2 - 1) * 6.0)
        if draws[4] < p:
            item = item * 10 ** ((draws[5] * 18 - 12) / 20)
        out.append(item)
    return torch.stack(out).float()


def _repitch(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """``[samples]`` played ``ratio`` times faster (pitch × ratio), band-limited (FFT
    resampling), looped or cut back to the same length."""
    samples = x.shape[-1]
    length = max(16, round(samples / ratio))
    spectrum = torch.fft.rfft(x)
    bins = length // 2 + 1
    if bins <= spectrum.shape[-1]:
        spectrum = spectrum[:bins]
    else:
        spectrum = F.pad(spectrum, (0, bins - spectrum.shape[-1]))
    y = torch.fft.irfft(spectrum, n=length) * (length / samples)
    reps = -(-samples // length)
    return y.repeat(reps)[:samples]


def _tilt(x: torch.Tensor, rate: int, db_per_octave: float) -> torch.Tensor:
    """``[samples]`` with a gain of ``db_per_octave`` per octave above (and below) 1 kHz,
    limited to ±18 dB."""
    spectrum = torch.fft.rfft(x)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1.0 / rate).clamp(min=20.0)
    gain_db = (db_per_octave * torch.log2(freqs / 1000.0)).clamp(-18.0, 18.0)
    return torch.fft.irfft(spectrum * 10 ** (gain_db / 20), n=x.shape[-1])
