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
    return cls(**fields)


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
