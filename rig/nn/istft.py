"""A vocoder with an inverse-STFT output head, for real time on a CPU.

After Siuzdenko et al., "Vocos" (2023): the network runs entirely at the mel frame rate (ConvNeXt
blocks of 1-D convolutions) and predicts a magnitude and a phase per STFT bin; ``torch.istft``
turns them into audio. With 375-sample hops that is 375× fewer positions than a MelGAN that
upsamples to the sample rate, which is where its speed comes from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class IstftConfig:
    """Shape of an iSTFT vocoder."""

    n_mels: int = 80
    hop: int = 375  # output samples per frame: upsample × the mel's hop
    n_fft: int = 1500  # synthesis FFT size (4 hops)
    dim: int = 256  # channels of the backbone
    layers: int = 6  # ConvNeXt blocks
    mlp_ratio: int = 3  # hidden size of each block's MLP, in multiples of dim
    upsample: int = 1  # output rate ÷ the mel's rate (2: 24 kHz mels → 48 kHz, full band)
    type: str = "istft"
    # The head's cap on the magnitudes it predicts (None: ``n_fft / 2``, see ``magnitude_cap``).
    # Vocoders saved before this field were trained under a cap of 100 and keep it.
    max_magnitude: float | None = None

    @property
    def magnitude_cap(self) -> float:
        """The largest STFT magnitude the head may write. ``n_fft / 2`` by default: what a
        full-scale DC reaches with a Hann window of that size, so no signal within ±1 is cut
        (a full-scale sine reaches ``n_fft / 4``)."""
        return self.max_magnitude if self.max_magnitude is not None else self.n_fft / 2

    def to_dict(self) -> dict[str, object]:
        """The JSON form (config.json ``vocoder`` section)."""
        return asdict(self)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7-tap conv → LayerNorm → MLP (GELU) → layer scale, plus the input."""

    def __init__(self, dim: int, mlp_ratio: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, dim, frames]`` → ``[B, dim, frames]``."""
        y = self.norm(self.dwconv(x).transpose(1, 2))
        y = self.fc2(F.gelu(self.fc1(y))) * self.gamma
        return x + y.transpose(1, 2)


class IstftVocoder(nn.Module):
    """``[B, n_mels, frames]`` log-mel → ``[B, 1, frames · hop]`` audio."""

    window: torch.Tensor  # [n_fft] Hann

    def __init__(self, cfg: IstftConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, 7, padding=3)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.dim, cfg.mlp_ratio) for _ in range(cfg.layers)
        )
        self.final_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = nn.Linear(cfg.dim, cfg.n_fft + 2)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """See the class docstring. The head and the iSTFT always run in float32."""
        frames = mel.shape[-1]
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2)).float()).transpose(1, 2)
        log_mag, phase = x.chunk(2, dim=1)  # [B, n_fft/2+1, frames] each
        spectrum = torch.polar(torch.exp(log_mag).clamp(max=self.cfg.magnitude_cap), phase)
        audio = torch.istft(
            spectrum,
            self.cfg.n_fft,
            self.cfg.hop,
            self.cfg.n_fft,
            self.window,
            center=True,
            length=frames * self.cfg.hop,
        )
        return audio[:, None]
