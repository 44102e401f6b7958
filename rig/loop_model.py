"""Release folders of loop models: ``config.json`` + safetensors that rebuild the model.

A loop model folder holds::

    config.json              format_version, name, material, tags, audio, generator, vocoder,
                             directions (name → range and description)
    generator.safetensors    EMA generator weights (incl. w_avg, const noise), mel mean/std
    vocoder.safetensors      vocoder weights (absent when "vocoder" names a shared folder)
    directions.safetensors   one unit vector [w_dim] per named direction
    calibration.safetensors  optional (config "calibration"): "offset" [n_mels, frames], added
                             to the generator's normalised output (rig.train.calibration)
    MODEL_CARD.md            data and licences, training, metrics, weaknesses

``"vocoder"`` is either a vocoder config (``{"type": "istft", ...}``) or the name of a sibling
vocoder folder (``config.json`` with ``"kind": "vocoder"`` + ``vocoder.safetensors``) that several
models share. Loading is strict: a missing or unexpected key or a wrong shape is a
:class:`CheckpointError` naming them. No pickles anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from rig.nn.mel import MelFrontEnd, MelSpec
from rig.nn.stylegan2 import Generator, GeneratorConfig
from rig.nn.vocoder import (
    VocoderConfig,
    build_vocoder,
    vocoder_config,
    vocoder_hop,
    vocoder_upsample,
)
from rig.release import (
    CONFIG,
    FORMAT_VERSION,
    CheckpointError,
    directions_of,
    read_config,
    write_config,
    write_tensors,
    write_text,
)

GENERATOR_FILE = "generator.safetensors"
VOCODER_FILE = "vocoder.safetensors"
DIRECTIONS_FILE = "directions.safetensors"
CALIBRATION_FILE = "calibration.safetensors"
CARD_FILE = "MODEL_CARD.md"


@dataclass(frozen=True)
class LoopAudio:
    """Audio parameters of a loop model: the mel analysis and the musical grid of its loops."""

    mel: MelSpec = field(default_factory=MelSpec)
    bpm: float = 120.0
    bars: int = 2
    beats_per_bar: int = 4

    @property
    def samples(self) -> int:
        """Samples of one generated loop at ``mel.sr``."""
        return round(self.bars * self.beats_per_bar * 60.0 / self.bpm * self.mel.sr)

    @property
    def frames(self) -> int:
        """Mel frames of one loop (``samples / hop``, which must be whole)."""
        return self.samples // self.mel.hop

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON form: sr, n_fft, hop, win, n_mels, fmin, fmax, bpm, bars, beats_per_bar."""
        return {
            **self.mel.to_dict(),
            "bpm": self.bpm,
            "bars": self.bars,
            "beats_per_bar": self.beats_per_bar,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopAudio:
        """Inverse of :meth:`to_dict`."""
        grid = {k: data[k] for k in ("bpm", "bars", "beats_per_bar") if k in data}
        mel = {k: v for k, v in data.items() if k not in grid}
        return cls(mel=MelSpec(**mel), **grid)


@dataclass
class Direction:
    """A named unit vector in w and the amounts that make musical sense along it."""

    vector: torch.Tensor  # [w_dim], unit length
    low: float = -3.0  # suggested range of amounts, in units of w distance
    high: float = 3.0
    description: str = ""


@dataclass
class LoopModel:
    """A loaded loop model: generator, mel statistics, vocoder, directions and metadata."""

    name: str
    audio: LoopAudio
    generator: Generator
    mel: MelFrontEnd  # holds the mel mean/std that de-normalise the generator's output
    vocoder: nn.Module
    vocoder_config: VocoderConfig
    directions: dict[str, Direction] = field(default_factory=dict)
    material: str = ""
    tags: tuple[str, ...] = ()
    shared_vocoder: str | None = None  # name of the sibling vocoder folder, if shared
    folder: Path | None = None
    # The same mel read at the vocoder's output rate, for the mel projections after it.
    output_mel: MelFrontEnd | None = None
    # [n_mels, frames] added to the generator's normalised output (None: nothing), fitted by
    # rig train calibration to take a learnt column out of the loop point.
    calibration: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.output_mel is None:
            self.output_mel = MelFrontEnd(self.audio.mel, self.sample_rate)

    @property
    def sample_rate(self) -> int:
        """The rate of the audio the vocoder makes, Hz (the mel's, or a multiple of it)."""
        return self.audio.mel.sr * vocoder_upsample(self.vocoder_config)

    def ready(self, device: str | torch.device = "cpu") -> LoopModel:
        """Move to ``device`` for inference: eval mode, no gradients. Returns ``self``."""
        for module in (self.generator, self.mel, self.output_mel, self.vocoder):
            assert module is not None
            module.to(device).eval().requires_grad_(False)
        for direction in self.directions.values():
            direction.vector = direction.vector.to(device)
        if self.calibration is not None:
            self.calibration = self.calibration.to(device)
        return self

    def spectrogram(self, ws: torch.Tensor, noise: str = "const") -> torch.Tensor:
        """``[B, w_dim]`` latents → ``[B, n_mels, frames]`` natural-log mel: the generator's
        normalised output, calibrated, de-normalised with the dataset's mel statistics."""
        spec = self.generator.synthesis(self.generator.broadcast(ws), noise)[:, 0].float()
        if self.calibration is not None:
            spec = spec + self.calibration
        return self.mel.denormalize(spec)


def new_loop_model(
    name: str,
    audio: LoopAudio,
    generator: GeneratorConfig,
    vocoder: VocoderConfig,
    directions: Mapping[str, tuple[float, float, str]] | None = None,
    material: str = "",
    tags: tuple[str, ...] = (),
    seed: int = 0,
) -> LoopModel:
    """A randomly initialised model (for training, tests and benchmarks).

    ``directions`` maps name → (low, high, description); vectors are random unit vectors.

    Raises:
        CheckpointError: the generator, vocoder and audio shapes disagree.
    """
    check_shapes(audio, generator, vocoder)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        gen = Generator(generator)
        dirs = {}
        for direction, (low, high, text) in (directions or {}).items():
            vector = torch.randn(generator.w_dim)
            dirs[direction] = Direction(vector / vector.norm(), low, high, text)
        vocoder_net = build_vocoder(vocoder)
    return LoopModel(
        name,
        audio,
        gen,
        MelFrontEnd(audio.mel),
        vocoder_net,
        vocoder,
        dirs,
        material,
        tuple(tags),
    )


def check_shapes(audio: LoopAudio, generator: GeneratorConfig, vocoder: VocoderConfig) -> None:
    """Raise :class:`CheckpointError` unless generator, vocoder and audio fit together."""
    problems = []
    if audio.samples != audio.frames * audio.mel.hop:
        problems.append(
            f"a loop of {audio.samples} samples is not a whole number of "
            f"{audio.mel.hop}-sample hops"
        )
    if generator.output_shape != (audio.mel.n_mels, audio.frames):
        problems.append(
            f"generator makes {generator.output_shape} (mels, frames) but the audio "
            f"config needs {(audio.mel.n_mels, audio.frames)}"
        )
    upsample = vocoder_upsample(vocoder)
    if vocoder_hop(vocoder) != upsample * audio.mel.hop or vocoder.n_mels != audio.mel.n_mels:
        problems.append(
            f"vocoder takes {vocoder.n_mels} mels at hop {vocoder_hop(vocoder)} (upsampling "
            f"{upsample}×) but the audio config has {audio.mel.n_mels} at hop {audio.mel.hop}"
        )
    if problems:
        raise CheckpointError("; ".join(problems))


# -- saving ----------------------------------------------------------------------------------
def save_loop_model(model: LoopModel, folder: Path, card: str | None = None) -> Path:
    """Write ``model`` as a release folder (created; files replaced). Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "kind": "loop_model",
        "name": model.name,
        "material": model.material,
        "tags": list(model.tags),
        "audio": model.audio.to_dict(),
        "generator": model.generator.cfg.to_dict(),
        "vocoder": model.shared_vocoder or model.vocoder_config.to_dict(),
        "directions": {
            name: {"range": [d.low, d.high], "description": d.description}
            for name, d in model.directions.items()
        },
    }
    write_tensors(folder, GENERATOR_FILE, _generator_bundle(model).state_dict())
    if model.shared_vocoder is None:
        write_tensors(folder, VOCODER_FILE, model.vocoder.state_dict())
    write_tensors(folder, DIRECTIONS_FILE, {n: d.vector for n, d in model.directions.items()})
    if model.calibration is not None:
        write_tensors(folder, CALIBRATION_FILE, {"offset": model.calibration})
        config["calibration"] = {}
    else:  # e.g. a new export over a calibrated folder: the offset was the old weights'
        (folder / CALIBRATION_FILE).unlink(missing_ok=True)
    write_text(folder, CARD_FILE, card or _default_card(model))
    write_config(folder, config)  # last: a folder without it is not a release folder yet
    return folder


def save_vocoder(vocoder: nn.Module, cfg: VocoderConfig, mel: MelSpec, folder: Path) -> Path:
    """Write a shared vocoder folder (``config.json`` kind "vocoder" + ``vocoder.safetensors``)."""
    write_tensors(folder, VOCODER_FILE, vocoder.state_dict())
    config = {
        "format_version": FORMAT_VERSION,
        "kind": "vocoder",
        "audio": mel.to_dict(),
        "vocoder": cfg.to_dict(),
    }
    write_config(folder, config)
    return folder


# -- loading ---------------------------------------------------------------------------------
def load_loop_model(folder: Path, device: str | torch.device = "cpu") -> LoopModel:
    """Rebuild a loop model from its release folder and load its weights strictly.

    Returns:
        The model in eval mode on ``device``.

    Raises:
        CheckpointError: missing files, a bad config, missing/unexpected keys or wrong shapes.
    """
    config = read_config(folder)
    if config.get("kind", "loop_model") != "loop_model":
        raise CheckpointError(f"{folder} holds a {config.get('kind')!r}, not a loop model")
    try:
        audio = LoopAudio.from_dict(config["audio"])
        gen_cfg = GeneratorConfig.from_dict(config["generator"])
        shared = config["vocoder"] if isinstance(config["vocoder"], str) else None
        voc_folder = folder.parent / shared if shared else folder
        voc_cfg = _vocoder_config(config, voc_folder, audio.mel)
        listed = directions_of(config)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{folder / CONFIG}: bad or missing field: {error}") from None
    model = new_loop_model(
        str(config.get("name", folder.name)),
        audio,
        gen_cfg,
        voc_cfg,
        material=str(config.get("material", "")),
        tags=tuple(config.get("tags", ())),
    )
    model.shared_vocoder, model.folder = shared, folder
    load_strict(_generator_bundle(model), folder / GENERATOR_FILE)
    load_strict(model.vocoder, voc_folder / VOCODER_FILE)
    vectors = _read_tensors(folder / DIRECTIONS_FILE) if listed else {}
    _check_keys(folder / DIRECTIONS_FILE, set(listed), set(vectors), {})
    for name, (low, high, text) in listed.items():
        vector = vectors[name].float()
        if vector.shape != (gen_cfg.w_dim,) or not torch.isfinite(vector).all():
            raise CheckpointError(
                f"{folder / DIRECTIONS_FILE}: {name!r} is not a finite [{gen_cfg.w_dim}] vector"
            )
        model.directions[name] = Direction(vector / vector.norm(), low, high, text)
    if "calibration" in config:
        model.calibration = read_calibration(folder, (audio.mel.n_mels, audio.frames))
    return model.ready(device)


def read_calibration(folder: Path, shape: tuple[int, int]) -> torch.Tensor:
    """A release folder's calibration offset, ``shape`` = (n_mels, frames).

    Raises:
        CheckpointError: the file is missing or unreadable, or not one finite tensor of
            ``shape`` under "offset".
    """
    path = folder / CALIBRATION_FILE
    tensors = _read_tensors(path)
    _check_keys(path, {"offset"}, set(tensors), {})
    offset = tensors["offset"].float()
    if tuple(offset.shape) != shape or not torch.isfinite(offset).all():
        raise CheckpointError(
            f"{path}: the offset is {tuple(offset.shape)}, the config needs a finite {shape}"
        )
    return offset


def load_vocoder_folder(folder: Path, device: str | torch.device = "cpu") -> nn.Module:
    """A shared vocoder folder (``kind`` "vocoder") as a ready network
    ``[B, n_mels, frames]`` natural-log mel → ``[B, 1, frames · hop]``.

    Raises:
        CheckpointError: not a vocoder folder, a bad config or weights that do not fit.
    """
    config = read_config(folder)
    if config.get("kind") != "vocoder":
        raise CheckpointError(f"{folder} is not a vocoder folder (kind {config.get('kind')!r})")
    try:
        cfg = vocoder_config(config["vocoder"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{folder / CONFIG}: bad or missing field: {error}") from None
    network = build_vocoder(cfg)
    load_strict(network, folder / VOCODER_FILE)
    return network.to(device).eval().requires_grad_(False)


def load_strict(module: nn.Module, path: Path) -> None:
    """Load ``path`` into ``module``; every key must match in name and shape.

    Raises:
        CheckpointError: naming the file and the missing, unexpected or mis-shaped keys.
    """
    tensors = _read_tensors(path)
    expected = module.state_dict()
    shapes = {
        k: (tuple(v.shape), tuple(expected[k].shape))
        for k, v in tensors.items()
        if k in expected and v.shape != expected[k].shape
    }
    _check_keys(path, set(expected), set(tensors), shapes)
    module.load_state_dict(tensors, strict=True)


def _check_keys(
    path: Path, expected: set[str], found: set[str], shapes: Mapping[str, tuple[Any, Any]]
) -> None:
    problems = []
    if expected - found:
        problems.append(f"missing keys: {_names(expected - found)}")
    if found - expected:
        problems.append(f"unexpected keys: {_names(found - expected)}")
    if shapes:
        problems.append(
            "wrong shapes: "
            + ", ".join(
                f"{k} is {got}, the config needs {want}"
                for k, (got, want) in sorted(shapes.items())
            )
        )
    if problems:
        raise CheckpointError(f"{path}: " + "; ".join(problems))


def _names(keys: set[str], limit: int = 8) -> str:
    ordered = sorted(keys)
    more = f" (and {len(ordered) - limit} more)" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return safetensors.torch.load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from None


def _generator_bundle(model: LoopModel) -> nn.Module:
    """The modules whose weights ``generator.safetensors`` holds: ``generator.*`` and ``mel.*``."""
    return nn.ModuleDict({"generator": model.generator, "mel": model.mel})


def _vocoder_config(config: Mapping[str, Any], voc_folder: Path, mel: MelSpec) -> VocoderConfig:
    if not isinstance(config["vocoder"], str):
        return vocoder_config(config["vocoder"])
    shared = read_config(voc_folder)
    if shared.get("kind") != "vocoder":
        raise CheckpointError(f"{voc_folder} is not a vocoder folder (kind {shared.get('kind')!r})")
    theirs = MelSpec(**shared["audio"])
    if theirs != mel:
        diff = {
            k: (v, getattr(theirs, k)) for k, v in asdict(mel).items() if getattr(theirs, k) != v
        }
        raise CheckpointError(
            f"vocoder {voc_folder.name!r} was made for other audio settings "
            f"(model vs vocoder: {diff})"
        )
    return vocoder_config(shared["vocoder"])


def _default_card(model: LoopModel) -> str:
    params = sum(p.numel() for p in model.generator.parameters())
    voc = sum(p.numel() for p in model.vocoder.parameters())
    audio = model.audio
    seconds = audio.samples / audio.mel.sr
    return (
        f"# {model.name}\n\n"
        f"- material: {model.material or 'unspecified'}; tags: {', '.join(model.tags) or 'none'}\n"
        f"- loops: {audio.bars} bars of {audio.beats_per_bar} at {audio.bpm:g} BPM "
        f"({seconds:g} s), {audio.mel.sr} Hz, {audio.mel.n_mels} mels × {audio.frames} frames\n"
        f"- generator: {params / 1e6:.2f} M parameters; vocoder "
        f"({model.vocoder_config.type}): {voc / 1e6:.2f} M parameters\n"
        f"- directions: {', '.join(model.directions) or 'none'}\n"
        f"- training data, licences and metrics: not recorded (written by save_loop_model)\n"
    )
