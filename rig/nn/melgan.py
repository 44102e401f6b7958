"""MelGAN vocoder (Kumar et al., 2019) and its multi-scale discriminator.

Generator: a 7-tap input conv, then per upsampling ratio a transposed conv (kernel 2·r, stride r)
halving the channels and a residual stack of dilated convs (dilations 1, 3, 9), then a 7-tap output
conv and tanh; every conv is weight-normalised. The ratios multiply to the hop, so ``frames`` mel
frames give exactly ``frames · hop`` samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


@dataclass(frozen=True)
class MelGANConfig:
    """Shape of a MelGAN generator."""

    n_mels: int = 80
    ratios: tuple[int, ...] = (5, 5, 5, 3)  # upsampling per stage; product = hop
    ngf: int = 32  # channels after the last stage; the first stage has ngf · 2^len(ratios)
    residual_layers: int = 3  # dilations 1, 3, 9, ...
    type: str = "melgan"

    @property
    def hop(self) -> int:
        """Samples per mel frame."""
        return math.prod(self.ratios)

    def to_dict(self) -> dict[str, object]:
        """The JSON form (config.json ``vocoder`` section)."""
        return asdict(self)


def _wn_conv(cin: int, cout: int, kernel: int, dilation: int = 1) -> nn.Module:
    return weight_norm(nn.Conv1d(cin, cout, kernel, dilation=dilation))


class ResidualUnit(nn.Module):
    """LeakyReLU → reflect pad → dilated 3-tap conv → LeakyReLU → 1×1 conv, plus a 1×1 shortcut."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = _wn_conv(channels, channels, 3, dilation)
        self.proj = _wn_conv(channels, channels, 1)
        self.shortcut = _wn_conv(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T]`` → ``[B, C, T]``."""
        y = F.pad(F.leaky_relu(x, 0.2), (self.dilation, self.dilation), mode="reflect")
        y = self.proj(F.leaky_relu(self.conv(y), 0.2))
        return self.shortcut(x) + y


class MelGANGenerator(nn.Module):
    """``[B, n_mels, frames]`` log-mel → ``[B, 1, frames · hop]`` audio in [-1, 1]."""

    def __init__(self, cfg: MelGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        channels = cfg.ngf * 2 ** len(cfg.ratios)
        layers: list[nn.Module] = [nn.ReflectionPad1d(3), _wn_conv(cfg.n_mels, channels, 7)]
        for ratio in cfg.ratios:
            out = channels // 2
            layers += [
                nn.LeakyReLU(0.2),
                weight_norm(
                    nn.ConvTranspose1d(
                        channels,
                        out,
                        2 * ratio,
                        stride=ratio,
                        padding=ratio // 2 + ratio % 2,
                        output_padding=ratio % 2,
                    )
                ),
            ]
            layers += [ResidualUnit(out, 3**j) for j in range(cfg.residual_layers)]
            channels = out
        layers += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(3), _wn_conv(channels, 1, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        return self.net(mel)


class ScaleDiscriminator(nn.Module):
    """One MelGAN discriminator: strided grouped convs; returns every layer's features."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                nn.Sequential(nn.ReflectionPad1d(7), _wn_conv(1, 16, 15)),
                _strided(16, 64, 4),
                _strided(64, 256, 16),
                _strided(256, 512, 64),
                _strided(512, 512, 64),
                weight_norm(nn.Conv1d(512, 512, 5, padding=2)),
                weight_norm(nn.Conv1d(512, 1, 3, padding=1)),
            ]
        )

    def forward(self, audio: torch.Tensor) -> list[torch.Tensor]:
        """``[B, 1, T]`` → features of each layer; the last is the score map ``[B, 1, T']``."""
        features = []
        x = audio
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.leaky_relu(x, 0.2)
            features.append(x)
        return features


def _strided(cin: int, cout: int, groups: int) -> nn.Module:
    return weight_norm(nn.Conv1d(cin, cout, 41, stride=4, padding=20, groups=groups))


class MultiScaleDiscriminator(nn.Module):
    """Three :class:`ScaleDiscriminator` on the audio at 1, 1/2 and 1/4 of its rate."""

    def __init__(self, scales: int = 3) -> None:
        super().__init__()
        self.scales = nn.ModuleList(ScaleDiscriminator() for _ in range(scales))

    def forward(self, audio: torch.Tensor) -> list[list[torch.Tensor]]:
        """``[B, 1, T]`` → per scale, the feature list of :class:`ScaleDiscriminator`."""
        results = []
        for index, disc in enumerate(self.scales):
            if index:
                audio = F.avg_pool1d(audio, 4, stride=2, padding=1, count_include_pad=False)
            results.append(disc(audio))
        return results


def remove_weight_norm(module: nn.Module) -> nn.Module:
    """Fold every weight-norm parametrisation into a plain weight (faster inference), in place."""
    for sub in module.modules():
        if parametrize.is_parametrized(sub, "weight"):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)
    return module
