"""StyleGAN2 for mel spectrograms: mapping z → w, a synthesis network of modulated convolutions
with skip outputs, and a residual discriminator with minibatch standard deviation.

After Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (2020): equalised
learning rate, weight demodulation, per-layer noise, skip generator, residual discriminator.
Adapted to loops: the constant input is rectangular (``start`` = mel bins × frames), every
convolution pads the time axis circularly and upsampling (bilinear: cheaper on a CPU than
transposed convolutions with FIR filters) wraps around in time, so a spectrogram is a loop with no
seam: rolling the input in time rolls the output.

The modulation is applied to the activations rather than to a per-sample weight (StyleGAN2's
``fused_modconv=False`` form): ``conv(x * s, W) * d`` equals ``conv(x, W * s) * d`` and runs as one
ordinary batched convolution, which is what CPUs do fastest.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a spectrogram generator. ``n_mels = start[0] · 2^(levels-1)``, likewise frames."""

    z_dim: int = 128  # latent z size
    w_dim: int = 128  # intermediate latent w size
    mapping_layers: int = 4  # MLP depth z → w
    start: tuple[int, int] = (5, 16)  # mel bins × frames of the learned constant
    channels: tuple[int, ...] = (256, 128, 64, 32, 16)  # feature maps per level, coarse → fine
    mapping_lr_mul: float = 0.01  # equalised-lr multiplier of the mapping network

    def __post_init__(self) -> None:
        if len(self.channels) < 1 or min(self.channels) < 1:
            raise ValueError(f"channels must be positive, got {self.channels}")
        if len(self.start) != 2 or min(self.start) < 1:
            raise ValueError(f"start must be two positive sizes, got {self.start}")

    @property
    def levels(self) -> int:
        """Number of resolutions (each doubles both axes)."""
        return len(self.channels)

    @property
    def output_shape(self) -> tuple[int, int]:
        """(n_mels, frames) of the generated spectrogram."""
        scale = 2 ** (self.levels - 1)
        return self.start[0] * scale, self.start[1] * scale

    @property
    def num_ws(self) -> int:
        """How many w vectors a synthesis pass consumes (one per modulated layer)."""
        return 2 * self.levels

    def to_dict(self) -> dict[str, object]:
        """The JSON form (config.json ``generator`` section)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> GeneratorConfig:
        """Rebuild from :meth:`to_dict` output (lists become tuples)."""
        fields = dict(data)
        for key in ("start", "channels"):
            if key in fields:
                fields[key] = tuple(fields[key])  # type: ignore[arg-type]
        return cls(**fields)  # type: ignore[arg-type]


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weights scaled at run time)."""

    def __init__(
        self, cin: int, cout: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(cin)
        self.lr_mul = lr_mul
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, cin]`` → ``[B, cout]``."""
        y = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(y, 0.2) * math.sqrt(2) if self.act else y


class MappingNetwork(nn.Module):
    """z → w through a normalised-input MLP; tracks ``w_avg`` for truncation."""

    w_avg: torch.Tensor  # [w_dim] buffer

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.ModuleList(
            EqualLinear(a, b, lr_mul=cfg.mapping_lr_mul, act=True)
            for a, b in itertools.pairwise(dims)
        )
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(
        self, z: torch.Tensor, psi: float = 1.0, track_beta: float | None = None
    ) -> torch.Tensor:
        """``[B, z_dim]`` → ``[B, w_dim]``; ``psi`` < 1 pulls w toward ``w_avg`` (truncation).

        ``track_beta`` (training only) updates ``w_avg`` as a moving average with that decay.
        """
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = layer(x)
        if track_beta is not None:
            self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, track_beta))
        if psi != 1.0:
            x = self.w_avg.lerp(x, psi)
        return x


def circular_time_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad ``[B, C, H, W]`` by ``pad`` on W circularly (time) and on H with zeros (frequency)."""
    if pad == 0:
        return x
    x = F.pad(x, (pad, pad, 0, 0), mode="circular")
    return F.pad(x, (0, 0, pad, pad))


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2× upsampling of ``[B, C, H, W]`` that wraps around in time (W)."""
    x = F.pad(x, (1, 1, 0, 0), mode="circular")
    x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return x[..., 2:-2]


class ModulatedConv(nn.Module):
    """3×3 (or 1×1) convolution modulated by a style from w, optionally demodulated."""

    def __init__(self, cin: int, cout: int, w_dim: int, kernel: int, demodulate: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(cin * kernel * kernel)
        self.demodulate = demodulate
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``[B, cin, H, W]``, w ``[B, w_dim]`` → ``[B, cout, H, W]``."""
        style = self.affine(w)  # [B, cin]
        weight = self.weight * self.scale
        y = F.conv2d(circular_time_pad(x * style[:, :, None, None], self.pad), weight)
        if self.demodulate:
            energy = weight.square().sum(dim=(2, 3))  # [cout, cin]
            y = y * torch.rsqrt(style.square() @ energy.T + 1e-8)[:, :, None, None]
        return y


class StyleLayer(nn.Module):
    """Modulated 3×3 conv + noise + bias + leaky ReLU, at a fixed output resolution."""

    noise_const: torch.Tensor  # [1, 1, H, W] buffer: the noise of noise mode "const"

    def __init__(self, cin: int, cout: int, w_dim: int, size: tuple[int, int], up: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, w_dim, 3, demodulate=True)
        self.up = up
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("noise_const", torch.randn(1, 1, *size))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise: str, generator: torch.Generator | None
    ) -> torch.Tensor:
        """``[B, cin, h, w]`` → ``[B, cout, H, W]`` (doubled when ``up``)."""
        if self.up:
            x = upsample2x(x)
        y = self.conv(x, w)
        if noise == "const":
            y = y + self.noise_const * self.noise_strength
        elif noise == "random":
            shape = (y.shape[0], 1, y.shape[2], y.shape[3])
            sample = torch.randn(shape, generator=generator, device=y.device, dtype=y.dtype)
            y = y + sample * self.noise_strength
        y = y + self.bias[None, :, None, None]
        return F.leaky_relu(y, 0.2) * math.sqrt(2)


class ToMel(nn.Module):
    """Modulated 1×1 conv to one channel (not demodulated), the skip output of a level."""

    def __init__(self, cin: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, 1, w_dim, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` → ``[B, 1, H, W]``."""
        return self.conv(x, w) + self.bias[None, :, None, None]


class SynthesisNetwork(nn.Module):
    """ws ``[B, num_ws, w_dim]`` → normalised log-mel ``[B, 1, n_mels, frames]``."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        h, w = cfg.start
        c = cfg.channels
        self.const = nn.Parameter(torch.randn(c[0], h, w))
        self.first = StyleLayer(c[0], c[0], cfg.w_dim, (h, w), up=False)
        self.ups = nn.ModuleList()
        self.convs = nn.ModuleList()
        self.to_mels = nn.ModuleList([ToMel(c[0], cfg.w_dim)])
        for level in range(1, cfg.levels):
            size = (h * 2**level, w * 2**level)
            self.ups.append(StyleLayer(c[level - 1], c[level], cfg.w_dim, size, up=True))
            self.convs.append(StyleLayer(c[level], c[level], cfg.w_dim, size, up=False))
            self.to_mels.append(ToMel(c[level], cfg.w_dim))

    def forward(
        self, ws: torch.Tensor, noise: str = "const", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Run every level, summing the upsampled skip outputs."""
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)
        x = self.first(x, ws[:, 0], noise, generator)
        skip = self.to_mels[0](x, ws[:, 1])
        for level, (up, conv) in enumerate(zip(self.ups, self.convs, strict=True), start=1):
            x = up(x, ws[:, 2 * level], noise, generator)
            x = conv(x, ws[:, 2 * level + 1], noise, generator)
            skip = upsample2x(skip)
            skip = skip + self.to_mels[level](x, ws[:, 2 * level + 1])
        return skip


class Generator(nn.Module):
    """Mapping + synthesis. ``forward(z)`` gives ``[B, 1, n_mels, frames]`` normalised log-mel."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mapping = MappingNetwork(cfg)
        self.synthesis = SynthesisNetwork(cfg)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """``[B, w_dim]`` → ``[B, num_ws, w_dim]`` (the same w for every layer)."""
        return w[:, None].expand(-1, self.cfg.num_ws, -1)

    def forward(
        self,
        z: torch.Tensor,
        psi: float = 1.0,
        noise: str = "const",
        mix_z: torch.Tensor | None = None,
        mix_layer: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``[B, z_dim]`` → ``[B, 1, n_mels, frames]``.

        Style mixing: with ``mix_z`` ``[B, z_dim]``, layers from ``mix_layer`` on take its w.
        """
        ws = self.broadcast(self.mapping(z, psi))
        if mix_z is not None:
            layer = self.cfg.num_ws // 2 if mix_layer is None else mix_layer
            ws = ws.clone()
            ws[:, layer:] = self.broadcast(self.mapping(mix_z, psi))[:, layer:]
        return self.synthesis(ws, noise, generator)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Shape of a spectrogram discriminator (levels mirror the generator's, fine → coarse)."""

    channels: tuple[int, ...] = (32, 64, 96, 128, 128)
    mbstd_group: int = 4  # minibatch-stddev group size


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate and circular time padding (``[B, C, M, T]``)."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale = 1.0 / math.sqrt(cin * kernel * kernel)
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, cin, H, W]`` → ``[B, cout, H, W]``."""
        return F.conv2d(circular_time_pad(x, self.pad), self.weight * self.scale, self.bias)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


class DiscriminatorBlock(nn.Module):
    """Two 3×3 convs and a residual 1×1, then 2× average-pool downsampling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3)
        self.conv1 = EqualConv2d(cin, cout, 3)
        self.skip = EqualConv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, cin, H, W]`` → ``[B, cout, H/2, W/2]``."""
        y = F.avg_pool2d(_lrelu(self.conv1(_lrelu(self.conv0(x)))), 2)
        return (y + F.avg_pool2d(self.skip(x), 2)) / math.sqrt(2)


class Discriminator(nn.Module):
    """Residual discriminator with minibatch standard deviation; ``[B, 1, M, T]`` → ``[B]``.

    Equalised learning rate throughout (as in StyleGAN2: the learning rate of 0.002 assumes it)
    and circular padding in time, like the generator."""

    def __init__(self, gen: GeneratorConfig, cfg: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or DiscriminatorConfig(channels=tuple(reversed(gen.channels)))
        if len(cfg.channels) != gen.levels:
            raise ValueError(f"discriminator needs {gen.levels} channel sizes, got {cfg.channels}")
        self.group = cfg.mbstd_group
        c = cfg.channels
        self.from_mel = EqualConv2d(1, c[0], 1)
        self.blocks = nn.ModuleList(DiscriminatorBlock(c[i], c[i + 1]) for i in range(len(c) - 1))
        self.final_conv = EqualConv2d(c[-1] + 1, c[-1], 3)
        self.fc = EqualLinear(c[-1] * gen.start[0] * gen.start[1], c[-1], act=True)
        self.out = EqualLinear(c[-1], 1)

    def minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        """Append one feature map: the std over groups of samples, averaged, ``[B, C+1, H, W]``."""
        b, c, h, w = x.shape
        g = min(self.group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [B/g]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]`` for ``[B, 1, n_mels, frames]`` normalised log-mel."""
        x = _lrelu(self.from_mel(mel))
        for block in self.blocks:
            x = block(x)
        x = _lrelu(self.final_conv(self.minibatch_std(x)))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
