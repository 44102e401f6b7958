"""Tiny random loop models for tests, built through the same code paths as real ones."""

from __future__ import annotations

from pathlib import Path

from rig.loop_model import LoopAudio, LoopModel, new_loop_model, save_loop_model
from rig.nn.istft import IstftConfig
from rig.nn.mel import MelSpec
from rig.nn.melgan import MelGANConfig
from rig.nn.stylegan2 import GeneratorConfig
from rig.nn.vocoder import VocoderConfig

# 2 bars at 120 BPM = 4 s at 8 kHz = 256 hops of 125 samples; 20 mels.
TINY_AUDIO = LoopAudio(MelSpec(sr=8000, n_fft=500, hop=125, win=500, n_mels=20, fmax=4000.0))
TINY_GENERATOR = GeneratorConfig(
    z_dim=16, w_dim=16, mapping_layers=2, start=(5, 64), channels=(16, 8, 8)
)
TINY_ISTFT = IstftConfig(n_mels=20, hop=125, n_fft=500, dim=16, layers=1, mlp_ratio=2)
TINY_MELGAN = MelGANConfig(n_mels=20, ratios=(5, 5, 5), ngf=4, residual_layers=2)
TINY_DIRECTIONS = {
    "complexity": (-3.0, 3.0, "onset density"),
    "bass": (-2.0, 2.0, "low-band energy"),
    "brightness": (-3.0, 3.0, "spectral centroid"),
}


def tiny_model(
    name: str = "tiny",
    tags: tuple[str, ...] = ("drums", "techno"),
    vocoder: VocoderConfig = TINY_ISTFT,
    seed: int = 0,
) -> LoopModel:
    """A random tiny loop model with three directions."""
    model = new_loop_model(
        name,
        TINY_AUDIO,
        TINY_GENERATOR,
        vocoder,
        TINY_DIRECTIONS,
        material=tags[0] if tags else "",
        tags=tags,
        seed=seed,
    )
    model.mel.set_statistics(model.mel.mean - 4.0, model.mel.std * 2.0)
    return model


def write_tiny_model(folder: Path, **kwargs: object) -> Path:
    """Save :func:`tiny_model` (same keyword arguments) as a release folder."""
    return save_loop_model(tiny_model(**kwargs), folder)  # type: ignore[arg-type]
