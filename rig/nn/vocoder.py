"""Vocoder configs by type: ``{"type": "istft", ...}`` or ``{"type": "melgan", ...}``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from rig.nn.istft import IstftConfig, IstftVocoder
from rig.nn.melgan import MelGANConfig, MelGANGenerator

VocoderConfig = IstftConfig | MelGANConfig
VOCODER_TYPES = {"istft": IstftConfig, "melgan": MelGANConfig}
# The magnitude cap of iSTFT vocoders saved before ``IstftConfig.max_magnitude`` existed. At the
# full-band vocoder's n_fft of 3000 it cut every bin above a sine of amplitude 0.13: the loud lows
# of bass and kick drums (measured 2026-12-01: 28 % of held-out bass frames had such bins).
LEGACY_MAX_MAGNITUDE = 100.0


def vocoder_config(data: Mapping[str, Any]) -> VocoderConfig:
    """Rebuild a vocoder config from its JSON form.

    Raises:
        ValueError: unknown type or fields, naming them.
    """
    kind = data.get("type", "melgan")
    if kind not in VOCODER_TYPES:
        raise ValueError(f"unknown vocoder type {kind!r}; known: {', '.join(VOCODER_TYPES)}")
    cls = VOCODER_TYPES[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {kind} vocoder fields: {', '.join(unknown)}")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    if cls is IstftConfig:
        fields.setdefault("max_magnitude", LEGACY_MAX_MAGNITUDE)
    return cls(**fields)


def for_training(cfg: VocoderConfig) -> VocoderConfig:
    """The config a new run trains ``cfg``'s weights with: the same shape, and an iSTFT head
    capped where no real signal is (a fine-tune of a vocoder saved under the old cap of 100
    learns the loud lows it could not write)."""
    return dataclasses.replace(cfg, max_magnitude=None) if isinstance(cfg, IstftConfig) else cfg


def vocoder_hop(cfg: VocoderConfig) -> int:
    """Samples per mel frame the vocoder produces (at its own output rate)."""
    return cfg.hop if isinstance(cfg, IstftConfig) else math.prod(cfg.ratios)


def vocoder_upsample(cfg: VocoderConfig) -> int:
    """The vocoder's output rate ÷ its mel's rate (1, or 2 for a full-band 48 kHz vocoder of
    24 kHz mels)."""
    return cfg.upsample if isinstance(cfg, IstftConfig) else 1


def build_vocoder(cfg: VocoderConfig) -> nn.Module:
    """The network for ``cfg``: ``[B, n_mels, frames]`` → ``[B, 1, frames · hop]``."""
    return IstftVocoder(cfg) if isinstance(cfg, IstftConfig) else MelGANGenerator(cfg)
