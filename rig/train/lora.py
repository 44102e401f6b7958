"""``rig train lora``: LoRA fine-tuning of Stable Audio Open's transformer on the performer's
recordings, and loading adapters into a pipeline with a strength each.

Data: a CSV (``file,caption``) or JSONL (``{"file": ..., "caption": ...}``) of recordings; paths
are relative to the data file. Captions are in the prompt format; a missing Tempo or Key is filled
in with librosa (:func:`fill_caption`). Every recording is encoded once — VAE latents and the
caption's text embedding, cached in ``cache/`` and reused by a resumed run — and each step trains
on random crops of ``seconds`` (shorter recordings padded, the padding masked out of the loss),
with 10 % of captions dropped so classifier-free guidance still works (the reference recipe of
Stability AI's stable-audio-tools where it matters for small data).

Objective: the one the pipeline's scheduler (``CosineDPMSolverMultistepScheduler``, EDM-style,
v-prediction) samples with — x_σ = x₀ + σ·ε, the model sees ``precondition_inputs(x_σ)`` at time
``precondition_noise(σ)``, its output goes through ``precondition_outputs`` to a denoised estimate,
and the loss is the EDM-weighted squared error of that estimate against x₀ (Karras et al. 2022,
weight (σ² + σ_d²)/(σ·σ_d)², numerically stable-audio-tools' v-objective); the noise levels are
uniform in the model's time t, σ = σ_d·tan(t·π/2), as the reference trainer draws them.

The loop is :func:`rig.train.run.run_steps` like every trainer's: batches seeded by step (a resumed
run draws what an unbroken one would), a checkpoint on Ctrl-C or SIGTERM. On CUDA the frozen base
runs in bf16/fp16 under autocast (LoRA weights in fp32, fp16 with a gradient scaler) with gradient
checkpointing. A run folder holds ``checkpoint/`` (adapter + optimizer state as safetensors,
``state.json``), ``cache/``, ``loss.jsonl``, ``loss.png`` and, at the end, ``adapter/``
(``adapter.safetensors`` + ``adapter.json``), which :func:`rig.adapters.merge_adapters` loads. No
pickles.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rig.adapters import write_adapter
from rig.compute import pick_device, pick_dtype
from rig.loops import read_audio, resample
from rig.prompt import PromptError, format_prompt, parse_prompt
from rig.train.run import Checkpointer, Schedule, run_steps

log = logging.getLogger(__name__)

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # attention projections of the DiT


class LoraError(ValueError):
    """Bad training data, base pipeline or adapter; the message names the file."""


@dataclass(frozen=True)
class LoraSettings:
    """One training run."""

    steps: int = 1000
    batch: int = 2
    learning_rate: float = 1e-4
    rank: int = 16
    alpha: int = 16  # LoRA scale numerator (scale = alpha / rank)
    seconds: float = 10.0  # length of the random crops, s
    cfg_dropout: float = 0.1  # share of captions dropped, so guidance keeps working
    device: str = "auto"  # as gan.device
    precision: str = "auto"  # bf16/fp16 autocast on CUDA, fp32 on the CPU
    gradient_checkpointing: bool = True  # on CUDA: recompute activations, less memory
    minutes: float = 0.0  # stop after this much wall time (0: no limit)
    log_every: int = 1
    save_every: int = 100
    preview_every: int = 10**9  # no previews: the adapter is heard in the engine
    seed: int = 0


# -- data --------------------------------------------------------------------------------------
def read_captions(path: Path) -> list[tuple[Path, str]]:
    """(audio file, caption) pairs from a CSV or JSONL file.

    Raises:
        LoraError: unreadable file, missing columns, or a listed file that does not exist.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LoraError(f"{path}: cannot be read: {error.strerror}") from None
    rows: list[dict[str, Any]]
    if path.suffix == ".jsonl":
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise LoraError(f"{path}: not JSON lines: {error}") from None
    else:
        rows = list(csv.DictReader(text.splitlines()))
    pairs = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not row.get("file") or "caption" not in row:
            raise LoraError(f"{path}: entry {number} needs 'file' and 'caption'")
        audio = (path.parent / str(row["file"])).resolve()
        if not audio.is_file():
            raise LoraError(f"{path}: entry {number}: no file {audio}")
        pairs.append((audio, str(row["caption"])))
    if not pairs:
        raise LoraError(f"{path}: no recordings listed")
    return pairs


PITCHES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
# Krumhansl-Kessler key profiles (Krumhansl 1990, "Cognitive Foundations of Musical Pitch").
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimate_key(mono: np.ndarray, rate: int) -> str:
    """The best-correlating major or minor key of the mean chroma (``"E minor"``)."""
    import librosa

    chroma = librosa.feature.chroma_stft(y=mono, sr=rate).mean(axis=1)
    scores = [
        (np.corrcoef(chroma, np.roll(profile, shift))[0, 1], shift, mode)
        for mode, profile in (("major", MAJOR), ("minor", MINOR))
        for shift in range(12)
    ]
    _, shift, mode = max(scores)
    return f"{PITCHES[shift]} {mode}"


def fill_caption(caption: str, audio: np.ndarray, rate: int) -> str:
    """``caption`` with Tempo and Key added from the audio when it does not state them.

    Raises:
        LoraError: the caption's own fields are invalid.
    """
    import librosa

    try:
        prompt = parse_prompt(caption)
    except PromptError as error:
        raise LoraError(f"caption {caption!r}: {error}") from None
    mono = audio.mean(axis=0)
    changes: dict[str, Any] = {}
    if prompt.tempo is None:
        tempo = float(np.atleast_1d(librosa.beat.beat_track(y=mono, sr=rate)[0])[0])
        changes["tempo"] = round(min(240.0, max(40.0, tempo)), 1)
    if prompt.key is None:
        changes["key"] = estimate_key(mono, rate)
    return format_prompt(dataclasses.replace(prompt, **changes))


# -- training ----------------------------------------------------------------------------------
def train_lora(data: Path, base: Path, out: Path, settings: LoraSettings) -> Path:
    """Train (or resume) a LoRA on ``base``'s transformer; returns the adapter folder.

    Raises:
        LoraError: the base is not a Stable Audio Open folder, or the data cannot be used.
        KeyboardInterrupt: Ctrl-C or SIGTERM, after saving a checkpoint (run it again to go on).
    """
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model

    pairs = read_captions(data)  # bad data fails before the model loads
    device = pick_device(settings.device)
    dtype = pick_dtype(device, settings.precision)
    pipe = _load_base(base, dtype).to(device)
    cache = encode_once(pipe, data, pairs, out / "cache", settings.seconds)
    transformer = pipe.transformer
    transformer.requires_grad_(False)
    torch.manual_seed(settings.seed)  # the LoRA's initial weights
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=list(TARGETS))
    inject_adapter_in_model(config, transformer)
    if settings.gradient_checkpointing and device.type == "cuda":
        transformer.enable_gradient_checkpointing()
    transformer.to(device)  # the injected LoRA layers too
    adapter = AdapterParameters(transformer)
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=settings.learning_rate)
    checkpoints = Checkpointer(
        out / "checkpoint", {"adapter": adapter}, {"adam": optimizer}, device
    )
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def train_step(step: int) -> dict[str, float]:
        rng = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)  # resumes exactly
        batch = cache.batch(settings.batch, rng, settings.cfg_dropout)
        with autocast_for_training(device, dtype):
            loss = lora_loss(pipe, batch.to(device), rng)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return {"loss": float(loss.detach())}

    reached = run_steps(out, Schedule.of(settings), checkpoints, train_step, lambda _: None, "lora")
    facts = {
        "rank": settings.rank,
        "alpha": settings.alpha,
        "targets": list(TARGETS),
        "base": str(base),
        "steps": reached,
        "data": str(data),
        "seconds": settings.seconds,
    }
    return write_adapter(out / "adapter", get_peft_model_state_dict(transformer), facts)


def _load_base(base: Path, dtype: torch.dtype) -> Any:
    """The Stable Audio Open pipeline in ``base``, frozen weights in ``dtype``.

    Raises:
        LoraError: not a pipeline folder, or another kind of pipeline.
    """
    from diffusers import StableAudioPipeline

    try:
        kind = json.loads((base / "model_index.json").read_text())["_class_name"]
    except (OSError, ValueError, KeyError):
        raise LoraError(
            f"{base} is not a diffusers pipeline folder (no model_index.json)"
        ) from None
    if kind != "StableAudioPipeline":
        raise LoraError(
            f"{kind} bases are not supported yet: LoRA training is for Stable Audio "
            "Open (StableAudioPipeline) folders"
        )
    pipe = StableAudioPipeline.from_pretrained(str(base), dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class AdapterParameters(torch.nn.Module):
    """The LoRA weights injected into ``transformer``, as a module of their own (the same
    Parameter objects, in fp32): what the optimizer trains and the checkpoint holds."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        super().__init__()
        self.weights = torch.nn.ParameterDict()
        for name, param in transformer.named_parameters():
            if "lora_" in name:
                param.data = param.data.float()
                param.requires_grad_(True)
                self.weights[name.replace(".", "__")] = param


@contextlib.contextmanager
def autocast_for_training(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Autocast to ``dtype`` on CUDA (bf16 or fp16); fp32 elsewhere."""
    if device.type == "cuda" and dtype != torch.float32:
        with torch.autocast("cuda", dtype=dtype):
            yield
    else:
        yield


# -- the cache: latents and text embeddings, encoded once -----------------------------------
@dataclass(frozen=True)
class Batch:
    """One training batch: latent crops ``x0`` [B, C, F], ``mask`` [B, 1, F] (1 on the real
    frames), the text embeddings ``text`` [B, L, D] (zeros where dropped for guidance) and
    ``seconds`` [B] (the crop's real length, the duration conditioning)."""

    x0: torch.Tensor
    mask: torch.Tensor
    text: torch.Tensor
    seconds: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        """This batch on ``device``."""
        return Batch(*(t.to(device) for t in (self.x0, self.mask, self.text, self.seconds)))


@dataclass(frozen=True)
class LatentCache:
    """Every recording as VAE latents [C, frames] with its caption's text embedding [L, D], and
    the crop length in latent frames."""

    latents: list[torch.Tensor]
    texts: list[torch.Tensor]
    frames_per_second: float
    crop: int

    def batch(self, size: int, rng: torch.Generator, dropout: float) -> Batch:
        """``size`` random crops of random recordings (a recording shorter than the crop is
        zero-padded and masked), each caption dropped (zeroed) with probability ``dropout``."""
        crops, masks, texts, seconds = [], [], [], []
        for _ in range(size):
            index = int(torch.randint(len(self.latents), (1,), generator=rng))
            latents, frames = self.latents[index], self.latents[index].shape[-1]
            start = int(torch.randint(max(1, frames - self.crop + 1), (1,), generator=rng))
            piece = latents[:, start : start + self.crop]
            real = piece.shape[-1]
            crops.append(torch.nn.functional.pad(piece, (0, self.crop - real)))
            masks.append((torch.arange(self.crop) < real).float()[None])
            drop = float(torch.rand((), generator=rng)) < dropout
            text = self.texts[index]
            texts.append(torch.zeros_like(text) if drop else text)
            seconds.append(real / self.frames_per_second)
        return Batch(
            torch.stack(crops), torch.stack(masks), torch.stack(texts), torch.tensor(seconds)
        )


def encode_once(
    pipe: Any, data: Path, pairs: list[tuple[Path, str]], folder: Path, seconds: float
) -> LatentCache:
    """The recordings ``pairs`` (from ``data``) encoded by ``pipe``'s VAE and text encoder, read
    from ``folder`` when it was written for the same data (a resumed run reuses it), else encoded
    and written there (``latents.safetensors`` + ``index.json``, atomically). Crops are
    ``seconds`` long, at most the model's window.

    Raises:
        LoraError: a recording shorter than one latent frame.
    """
    import safetensors.torch

    rate = int(pipe.vae.config.sampling_rate)
    per_second = rate / int(pipe.vae.hop_length)
    longest = int(pipe.transformer.config.sample_size) / per_second
    if seconds > longest:
        log.info("crops of %.1f s, the model's whole window (not %g s)", longest, seconds)
        seconds = longest
    key = {"data": str(data.resolve()), "files": [[str(p), c] for p, c in pairs], "rate": rate}
    index = folder / "index.json"
    if index.is_file() and json.loads(index.read_text()).get("key") == key:
        tensors = safetensors.torch.load_file(str(folder / "latents.safetensors"))
        count = len(pairs)
        latents = [tensors[f"latents/{i}"] for i in range(count)]
        texts = [tensors[f"text/{i}"] for i in range(count)]
    else:
        latents, texts = _encode(pipe, pairs, rate)
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / ".latents.safetensors.part"
        tensors = {f"latents/{i}": t.contiguous() for i, t in enumerate(latents)}
        tensors |= {f"text/{i}": t.contiguous() for i, t in enumerate(texts)}
        safetensors.torch.save_file(tensors, str(part))
        part.replace(folder / "latents.safetensors")
        part = folder / ".index.json.part"
        part.write_text(json.dumps({"key": key}) + "\n")
        part.replace(index)
    return LatentCache(latents, texts, per_second, math.ceil(seconds * per_second))


def _encode(
    pipe: Any, pairs: list[tuple[Path, str]], rate: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Latents [C, frames] (fp32, CPU) and text embeddings [L, D] of each recording."""
    latents, texts = [], []
    hop = int(pipe.vae.hop_length)
    for path, caption in pairs:
        audio, source_rate = read_audio(path)
        audio = resample(audio, source_rate, rate)
        if audio.shape[1] < hop:
            raise LoraError(f"{path}: shorter than one latent frame ({hop / rate * 1000:.0f} ms)")
        caption = fill_caption(caption, audio, rate)
        with torch.no_grad():
            vae = pipe.vae
            wave = torch.from_numpy(np.ascontiguousarray(audio))[None].to(vae.device, vae.dtype)
            latents.append(vae.encode(wave).latent_dist.mode()[0].float().cpu())
            embeds = pipe.encode_prompt([caption], vae.device, False)
            texts.append(embeds[0].float().cpu())
    return latents, texts


# -- the objective ---------------------------------------------------------------------------
def noise_levels(size: int, rng: torch.Generator, config: Any) -> torch.Tensor:
    """``size`` noise levels σ [size] with the model's time t = atan(σ/σ_d)·2/π uniform in
    (0, 1), clamped to the scheduler ``config``'s [σ_min, σ_max]."""
    t = torch.rand(size, generator=rng)
    sigma = config.sigma_data * torch.tan(t * math.pi / 2)
    return sigma.clamp(config.sigma_min, config.sigma_max)


def lora_loss(pipe: Any, batch: Batch, rng: torch.Generator) -> torch.Tensor:
    """The denoising loss of a batch through the scheduler's EDM preconditioning, with noise
    levels uniform in the model's time t (σ = σ_data · tan(t·π/2), clamped to the schedule's
    range; the reference trainer's v-diffusion draws t uniformly), weighted by EDM's
    (σ² + σ_d²)/(σ·σ_d)² (numerically the v-objective) and averaged over the real frames only."""
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    scheduler = pipe.scheduler
    x0, device = batch.x0, batch.x0.device
    size = x0.shape[0]
    data = scheduler.config.sigma_data
    sigma = noise_levels(size, rng, scheduler.config)[:, None, None].to(device)
    noise = torch.randn(x0.shape, generator=rng).to(device)
    noisy = x0 + sigma * noise
    with torch.no_grad():
        start, end = pipe.encode_duration(0.0, batch.seconds.tolist(), device, False, size)
    text = torch.cat([batch.text.to(start.dtype), start, end], dim=1)
    duration = torch.cat([start, end], dim=2)
    rotary = get_1d_rotary_pos_embed(
        pipe.rotary_embed_dim,
        x0.shape[2] + duration.shape[1],
        use_real=True,
        repeat_interleave_real=False,
    )
    output = pipe.transformer(
        scheduler.precondition_inputs(noisy, sigma),
        scheduler.precondition_noise(sigma[:, 0, 0]),
        encoder_hidden_states=text,
        global_hidden_states=duration,
        rotary_embedding=rotary,
        return_dict=False,
    )[0]
    denoised = scheduler.precondition_outputs(noisy, output.float(), sigma)
    weight = (sigma**2 + data**2) / (sigma * data) ** 2
    squared = weight * (denoised - x0) ** 2 * batch.mask
    return squared.sum() / (batch.mask.sum() * x0.shape[1])
