"""Configuration: defaults < ``rig.toml`` < ``RIG_*`` environment < CLI flags → frozen dataclasses.

Every setting has one dotted name (``osc.port``), one environment variable (``RIG_OSC_PORT``) and
one parser; a bad value is a :class:`ConfigError` naming the setting, the value and what is
accepted.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WAV_SUBTYPES = {"pcm24": "PCM_24", "float": "FLOAT"}
ALLOWED_BARS = (1, 2, 4, 8, 16)
TEMPO_RANGE = (40.0, 240.0)


class ConfigError(ValueError):
    """A configuration value is missing, malformed or out of range."""


@dataclass(frozen=True)
class OscConfig:
    """Where the Max for Live device listens and where the rig listens for it."""

    host: str = "127.0.0.1"  # host running Live and the device
    port: int = 7400  # the device's udpreceive port
    listen_port: int = 7401  # the rig's own port for /rig/hello, /rig/loaded, ...
    # Interface the rig listens on: "" = 127.0.0.1 while the device is on this machine, all
    # interfaces when it is not (then only the device's host and `allow` may send).
    listen_host: str = ""
    allow: tuple[str, ...] = ()  # more hosts allowed to send OSC (besides loopback and `host`)
    # A second device (Output Pair Rear, another track) that gets every message too: quad takes'
    # rear pair. 0 = none. It sends to the same listen port.
    rear_port: int = 0

    @property
    def targets(self) -> tuple[int, ...]:
        """The device ports every message goes to (on ``host``)."""
        return (self.port, self.rear_port) if self.rear_port else (self.port,)

    @property
    def bind_host(self) -> str:
        """The interface the rig's socket binds to."""
        if self.listen_host:
            return self.listen_host
        return "127.0.0.1" if is_loopback(self.host) else "0.0.0.0"

    @property
    def senders(self) -> frozenset[str]:
        """Hosts whose datagrams the rig accepts."""
        return frozenset({"127.0.0.1", "::1", self.host, *self.allow})


def is_loopback(host: str) -> bool:
    """``127.x.x.x``, ``::1`` or ``localhost``."""
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass(frozen=True)
class AudioConfig:
    """Format of the loops the rig writes and the loop tools' targets."""

    sample_rate: int = 44100  # Hz of every written loop
    wav_format: str = "pcm24"  # "pcm24" (24-bit PCM) or "float" (32-bit float WAV)
    target_lufs: float = -14.0  # integrated loudness target (ITU-R BS.1770)
    peak_dbfs: float = -1.0  # sample-peak ceiling after limiting
    silence_db: float = 40.0  # trim threshold: dB below the peak counted as silence
    seam_ms: float = 20.0  # equal-power crossfade of the tail into the head
    fade_ms: float = 5.0  # fades applied where silence was trimmed
    min_seconds: float = 0.1  # shorter (non-silent) input is rejected

    @property
    def wav_subtype(self) -> str:
        """The soundfile subtype name of :attr:`wav_format` (``PCM_24`` or ``FLOAT``)."""
        return WAV_SUBTYPES[self.wav_format]


OUTPUT_CHANNELS = (2, 4)  # stereo or quad takes


@dataclass(frozen=True)
class MusicConfig:
    """Musical defaults of a prompt that does not say otherwise."""

    tempo: float = 120.0  # BPM until Live reports its own tempo
    bars: int = 2  # loop length in bars
    beats_per_bar: int = 4  # quarter notes in a bar until Live reports its time signature
    follow_tempo: bool = True  # re-render the slots' GAN takes when Live's tempo settles
    channels: int = 2  # 2 = stereo takes; 4 = quad (front left, front right, rear left, rear right)

    @property
    def meter(self) -> str:
        """The default meter of a prompt, ``"<beats_per_bar>/4"``."""
        return f"{self.beats_per_bar}/4"


@dataclass(frozen=True)
class PathsConfig:
    """Folders the rig reads and writes."""

    takes: Path = Path("takes")  # take folder: one sub-folder per session
    models: tuple[Path, ...] = (Path("models"),)  # folders holding model release folders
    prompts: Path = Path("prompts")  # prompt sets (*.toml) for the UI


@dataclass(frozen=True)
class TakesConfig:
    """How long takes are kept. Never deleted: the current session's takes and any take a
    device slot holds. 0 = no limit."""

    keep_sessions: int = 0  # newest session folders kept (the rest go)
    max_gb: float = 0.0  # total size of the take folder kept under this (oldest sessions go)


@dataclass(frozen=True)
class SessionConfig:
    """The generation worker."""

    timeout_s: float = 120.0  # a request running longer is cancelled and its worker restarted
    threads: int = 0  # torch CPU threads in the worker (0 = torch's default)
    max_queue: int = 8  # requests that may wait; one more is refused with a clear error
    latest_wins: bool = False  # a new request for a slot cancels that slot's waiting ones
    actions_per_s: float = 2.0  # MIDI / OSC actions per second and source (bursts of 4)
    warm: bool = True  # run the loop tools once when a worker starts (no first-take stall)


@dataclass(frozen=True)
class GanConfig:
    """Where and how the GAN loop engine runs."""

    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"
    precision: str = "auto"  # "auto" (fp16 on CUDA, fp32 on CPU), "fp32", "fp16" or "bf16"


@dataclass(frozen=True)
class DiffusionConfig:
    """The text-to-audio diffusion engines (sao, sa3); see rig/engines/diffusion.py."""

    sao_model: str = "stabilityai/stable-audio-open-1.0"  # diffusers folder or hub id
    sa3_model: str = "stabilityai/stable-audio-3-medium"  # diffusers folder or hub id
    # Each engine its own sampling defaults: Stable Audio Open samples with guidance and a
    # negative prompt; the distilled Stable Audio 3 Medium has guidance in its weights (diffusers
    # documents 1.0 as the only sensible scale) and takes the scheduler's own step count.
    sao_steps: int = 100  # denoising steps
    sao_guidance: float = 7.0  # classifier-free guidance scale (1 = off)
    sao_negative_prompt: str = "low quality, distorted, clipping"
    sa3_steps: int = 0  # 0 = the scheduler's own: 8 (distilled Medium), 100 (base)
    sa3_guidance: float = 1.0  # > 1 only for the non-distilled base checkpoint
    sa3_negative_prompt: str = ""  # used only with guidance > 1
    short_latents: bool = True  # Stable Audio Open denoises only the loop's length, not 47 s
    template: str = "{prompt}"  # text sent to the model; {prompt} is the whole structured prompt
    variations: int = 1  # waveforms per call (4 with spread > 0: a four-way stereo mix)
    spread: float = 0.0  # stereo width of four variations
    tail_s: float = 0.5  # seconds generated past the loop, trimmed by the loop tools
    device: str = "auto"  # as gan.device
    precision: str = "auto"  # as gan.precision
    cpu_offload: bool = False  # model CPU offload (small GPUs)
    compile: bool = False  # torch.compile the transformer (first call slower)
    preload: bool = False  # load the weights when `rig perform` starts
    loras: tuple[str, ...] = ()  # LoRA adapter folders as "path" or "path:strength" (sao)
    scheduler: str = ""  # a diffusers scheduler class to sample with ("" = the model's own)


@dataclass(frozen=True)
class UiConfig:
    """The performer web UI."""

    host: str = "127.0.0.1"  # interface to serve on (0.0.0.0 exposes it to the network)
    port: int = 7860  # performer page at /, stage view at /stage
    token: str = ""  # needed by every client but this computer ("": one is made at start)
    remote_writes: bool = False  # may clients on other computers write files (MIDI mapping)?


@dataclass(frozen=True)
class ClipsConfig:
    """Takes as Session View clips (Live 12.0.5+), besides the device's slots."""

    track: int = 0  # audio track (from 1) each new take goes to as a clip; 0 = off
    fire: bool = False  # launch each new clip (Live's launch quantization)


@dataclass(frozen=True)
class RemoteConfig:
    """A GPU host that is not the Live laptop (``rig perform --remote``, ``rig companion``)."""

    enabled: bool = False  # serve takes and relay device messages to a companion (token always)


@dataclass(frozen=True)
class MidiConfig:
    """The MIDI controller."""

    mapping: Path = Path("midi.toml")  # CC/note mapping (absent: no controller)
    port: str = ""  # input port name; overrides the mapping's own "port"


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    osc: OscConfig = field(default_factory=OscConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    music: MusicConfig = field(default_factory=MusicConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    clips: ClipsConfig = field(default_factory=ClipsConfig)
    midi: MidiConfig = field(default_factory=MidiConfig)
    takes: TakesConfig = field(default_factory=TakesConfig)


def _port(value: Any) -> int:
    port = _int(value)
    if not 1 <= port <= 65535:
        raise ValueError("a UDP port 1-65535")
    return port


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("an integer")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("an integer") from None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a number")
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError("a number") from None


def _ranged(lo: float, hi: float, kind: Callable[[Any], Any] = _float) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        number = kind(value)
        if not lo <= number <= hi:
            raise ValueError(f"{lo:g} to {hi:g}")
        return number

    return parse


def _choice(*choices: Any, kind: Callable[[Any], Any] = str) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        parsed = kind(value).strip().lower() if kind is str else kind(value)
        if parsed not in choices:
            raise ValueError("one of " + ", ".join(str(c) for c in choices))
        return parsed

    return parse


def _device(value: Any) -> str:
    device = str(value).strip().lower()
    index = device.removeprefix("cuda:")
    if device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and index.isdigit()):
        return device
    raise ValueError("auto, cpu, cuda or cuda:N")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _loras(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _text(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("a non-empty string")
    return text


def _path(value: Any) -> Path:
    return Path(_text(value)).expanduser()


def _hosts(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _paths(value: Any) -> tuple[Path, ...]:
    items = value if isinstance(value, list) else str(value).split(os.pathsep)
    paths = tuple(Path(str(item).strip()).expanduser() for item in items if str(item).strip())
    if not paths:
        raise ValueError("one or more folders")
    return paths


# dotted name -> (parser, environment variable)
SETTINGS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "osc.host": (_text, "RIG_OSC_HOST"),
    "osc.port": (_port, "RIG_OSC_PORT"),
    "osc.listen_port": (_port, "RIG_LISTEN_PORT"),
    "osc.listen_host": (_text, "RIG_LISTEN_HOST"),
    "osc.allow": (_hosts, "RIG_OSC_ALLOW"),
    "osc.rear_port": (_ranged(0, 65535, _int), "RIG_REAR_PORT"),
    "audio.sample_rate": (_ranged(8000, 192000, _int), "RIG_SAMPLE_RATE"),
    "audio.wav_format": (_choice(*WAV_SUBTYPES), "RIG_WAV_FORMAT"),
    "audio.target_lufs": (_ranged(-40.0, -3.0), "RIG_TARGET_LUFS"),
    "audio.peak_dbfs": (_ranged(-20.0, 0.0), "RIG_PEAK_DBFS"),
    "audio.silence_db": (_ranged(10.0, 120.0), "RIG_SILENCE_DB"),
    "audio.seam_ms": (_ranged(0.0, 500.0), "RIG_SEAM_MS"),
    "audio.fade_ms": (_ranged(0.0, 100.0), "RIG_FADE_MS"),
    "audio.min_seconds": (_ranged(0.01, 60.0), "RIG_MIN_SECONDS"),
    "music.tempo": (_ranged(*TEMPO_RANGE), "RIG_TEMPO"),
    "music.bars": (_choice(*ALLOWED_BARS, kind=_int), "RIG_BARS"),
    "music.beats_per_bar": (_ranged(1, 16, _int), "RIG_BEATS_PER_BAR"),
    "music.follow_tempo": (_bool, "RIG_FOLLOW_TEMPO"),
    "music.channels": (_choice(*OUTPUT_CHANNELS, kind=_int), "RIG_CHANNELS"),
    "paths.takes": (_path, "RIG_TAKES"),
    "takes.keep_sessions": (_ranged(0, 100000, _int), "RIG_KEEP_SESSIONS"),
    "takes.max_gb": (_ranged(0.0, 100000.0), "RIG_TAKES_MAX_GB"),
    "paths.models": (_paths, "RIG_MODELS"),
    "paths.prompts": (_path, "RIG_PROMPTS"),
    "session.timeout_s": (_ranged(1.0, 3600.0), "RIG_TIMEOUT"),
    "session.threads": (_ranged(0, 256, _int), "RIG_THREADS"),
    "session.max_queue": (_ranged(1, 1000, _int), "RIG_MAX_QUEUE"),
    "session.latest_wins": (_bool, "RIG_LATEST_WINS"),
    "session.actions_per_s": (_ranged(0.1, 100.0), "RIG_ACTIONS_PER_S"),
    "session.warm": (_bool, "RIG_WARM"),
    "gan.device": (_device, "RIG_GAN_DEVICE"),
    "gan.precision": (_choice("auto", "fp32", "fp16", "bf16"), "RIG_GAN_PRECISION"),
    "diffusion.sao_model": (_text, "RIG_SAO_MODEL"),
    "diffusion.sa3_model": (_text, "RIG_SA3_MODEL"),
    "diffusion.sao_steps": (_ranged(1, 1000, _int), "RIG_SAO_STEPS"),
    "diffusion.sao_guidance": (_ranged(0.0, 30.0), "RIG_SAO_GUIDANCE"),
    "diffusion.sao_negative_prompt": (lambda v: str(v).strip(), "RIG_SAO_NEGATIVE_PROMPT"),
    "diffusion.sa3_steps": (_ranged(0, 1000, _int), "RIG_SA3_STEPS"),
    "diffusion.sa3_guidance": (_ranged(0.0, 30.0), "RIG_SA3_GUIDANCE"),
    "diffusion.sa3_negative_prompt": (lambda v: str(v).strip(), "RIG_SA3_NEGATIVE_PROMPT"),
    "diffusion.short_latents": (_bool, "RIG_SHORT_LATENTS"),
    "diffusion.template": (_text, "RIG_DIFFUSION_TEMPLATE"),
    "diffusion.variations": (_ranged(1, 8, _int), "RIG_DIFFUSION_VARIATIONS"),
    "diffusion.spread": (_ranged(0.0, 1.0), "RIG_DIFFUSION_SPREAD"),
    "diffusion.tail_s": (_ranged(0.0, 5.0), "RIG_DIFFUSION_TAIL"),
    "diffusion.device": (_device, "RIG_DIFFUSION_DEVICE"),
    "diffusion.precision": (_choice("auto", "fp32", "fp16", "bf16"), "RIG_DIFFUSION_PRECISION"),
    "diffusion.cpu_offload": (_bool, "RIG_DIFFUSION_CPU_OFFLOAD"),
    "diffusion.compile": (_bool, "RIG_DIFFUSION_COMPILE"),
    "diffusion.preload": (_bool, "RIG_DIFFUSION_PRELOAD"),
    "diffusion.loras": (_loras, "RIG_LORAS"),
    "diffusion.scheduler": (lambda v: str(v).strip(), "RIG_DIFFUSION_SCHEDULER"),
    "ui.host": (_text, "RIG_UI_HOST"),
    "ui.port": (_port, "RIG_UI_PORT"),
    "ui.token": (_text, "RIG_TOKEN"),
    "ui.remote_writes": (_bool, "RIG_UI_REMOTE_WRITES"),
    "remote.enabled": (_bool, "RIG_REMOTE"),
    "clips.track": (_ranged(0, 1000, _int), "RIG_CLIP_TRACK"),
    "clips.fire": (_bool, "RIG_CLIP_FIRE"),
    "midi.mapping": (_path, "RIG_MIDI_MAPPING"),
    "midi.port": (lambda v: str(v).strip(), "RIG_MIDI_PORT"),
}


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# Settings that were renamed or removed: (their variable, what to use instead). A config that
# still sets one gets an error, never a silently ignored value.
RETIRED: dict[str, tuple[str, str]] = {
    "diffusion.steps": (
        "RIG_DIFFUSION_STEPS",
        "is per engine now: diffusion.sao_steps, .sa3_steps",
    ),
    "diffusion.guidance": (
        "RIG_DIFFUSION_GUIDANCE",
        "is per engine now: diffusion.sao_guidance, .sa3_guidance",
    ),
    "diffusion.negative_prompt": (
        "RIG_NEGATIVE_PROMPT",
        "is per engine now: diffusion.sao_negative_prompt, .sa3_negative_prompt",
    ),
    "diffusion.attention_slicing": (
        "RIG_DIFFUSION_ATTENTION_SLICING",
        "was removed: no Stable Audio component supports attention slicing",
    ),
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    flat = _flatten(table)
    for name in sorted(set(flat) & set(RETIRED)):
        raise ConfigError(f"config file {path}: {name} {RETIRED[name][1]}")
    unknown = sorted(set(flat) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(SETTINGS)}"
        )
    return flat


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration.

    Args:
        path: a ``rig.toml``; ``None`` reads ``$RIG_CONFIG`` or ``./rig.toml`` when present.
        env: environment variables (default ``os.environ``); ``RIG_*`` override the file.
        overrides: dotted names (``"osc.port"``) from CLI flags; ``None`` values are ignored.

    Returns:
        The frozen :class:`Config`.

    Raises:
        ConfigError: naming the setting, its source, the value and what is accepted.
    """
    env = os.environ if env is None else env
    raw: dict[str, tuple[Any, str]] = {}
    if path is None and env.get("RIG_CONFIG"):
        path = Path(env["RIG_CONFIG"])
    if path is None and Path("rig.toml").is_file():
        path = Path("rig.toml")
    if path is not None:
        raw.update({k: (v, str(path)) for k, v in _read_toml(path).items()})
    for name, (_, var) in SETTINGS.items():
        if env.get(var, "").strip():
            raw[name] = (env[var], f"${var}")
    for var, why in RETIRED.values():
        if env.get(var, "").strip():
            raise ConfigError(f"${var} {why}")
    for name, value in (overrides or {}).items():
        if name not in SETTINGS:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            raw[name] = (value, "command line")
    return _build(raw)


def _build(raw: Mapping[str, tuple[Any, str]]) -> Config:
    sections: dict[str, dict[str, Any]] = {}
    for name, (value, source) in raw.items():
        parser = SETTINGS[name][0]
        try:
            parsed = parser(value)
        except ValueError as error:
            raise ConfigError(
                f"setting {name} = {value!r} (from {source}) is invalid: expected {error}"
            ) from None
        section, key = name.split(".")
        sections.setdefault(section, {})[key] = parsed
    config = Config()
    for section, values in sections.items():
        current = getattr(config, section)
        config = dataclasses.replace(config, **{section: dataclasses.replace(current, **values)})
    if config.osc.port == config.osc.listen_port and config.osc.host in ("127.0.0.1", "localhost"):
        raise ConfigError(
            f"osc.port and osc.listen_port are both {config.osc.port} on this machine: "
            "the rig would talk to itself; give the device and the rig different ports"
        )
    if config.osc.rear_port in (config.osc.port, config.osc.listen_port):
        raise ConfigError(
            f"osc.rear_port {config.osc.rear_port} is the device's or the rig's own port: the "
            "rear-pair device needs an OSC In Port of its own (e.g. 7410)"
        )
    return config
