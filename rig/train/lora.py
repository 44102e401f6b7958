"""``rig train lora``: LoRA fine-tuning of Stable Audio Open's transformer on the performer's
recordings, and loading adapters into a pipeline with a strength each.

Data: a CSV (``file,caption``) or JSONL (``{"file": ..., "caption": ...}``) of recordings; paths
are relative to the data file. Captions are in the prompt format; a missing Tempo or Key is filled
in with librosa (:func:`fill_caption`). Each recording is cut into chunks of ``seconds``.

Objective: the one the pipeline's scheduler (``CosineDPMSolverMultistepScheduler``, EDM-style,
v-prediction) samples with — σ log-uniform in [σ_min, σ_max], x_σ = x₀ + σ·ε, the model sees
``precondition_inputs(x_σ)`` at time ``precondition_noise(σ)``, its output goes through
``precondition_outputs`` to a denoised estimate, and the loss is the EDM-weighted squared error of
that estimate against x₀ (Karras et al. 2022, weight (σ² + σ_d²)/(σ·σ_d)²).

A run folder holds ``checkpoint/`` (adapter + optimizer state as safetensors, ``state.json``),
``loss.jsonl``, ``loss.png`` and, at the end, ``adapter/`` (``adapter.safetensors`` +
``adapter.json``), which :func:`rig.adapters.merge_adapters` loads. No pickles.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rig.adapters import write_adapter
from rig.loops import read_audio, resample
from rig.prompt import PromptError, format_prompt, parse_prompt
from rig.train.run import (
    load_checkpoint,
    load_optimizer,
    optimizer_tensors,
    plot_losses,
    save_checkpoint,
)

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
    seconds: float = 10.0  # chunk length
    save_every: int = 100
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


def chunks(audio: np.ndarray, rate: int, seconds: float) -> Iterator[np.ndarray]:
    """``[2, T]`` audio in ``seconds`` pieces (a last piece shorter than half is dropped)."""
    size = round(seconds * rate)
    for start in range(0, audio.shape[1], size):
        piece = audio[:, start : start + size]
        if piece.shape[1] >= size // 2:
            yield piece


# -- training ----------------------------------------------------------------------------------
def train_lora(data: Path, base: Path, out: Path, settings: LoraSettings) -> Path:
    """Train (or resume) a LoRA on ``base``'s transformer; returns the adapter folder."""
    from diffusers import StableAudioPipeline
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from tqdm import tqdm

    torch.manual_seed(settings.seed)
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
    pipe = StableAudioPipeline.from_pretrained(str(base))
    pipe.set_progress_bar_config(disable=True)
    examples = _examples(pipe, read_captions(data), settings.seconds)
    transformer = pipe.transformer
    transformer.requires_grad_(False)
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=list(TARGETS))
    inject_adapter_in_model(config, transformer)
    params = [p for n, p in transformer.named_parameters() if "lora_" in n]
    for param in params:
        param.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate)
    step = _resume(out / "checkpoint", transformer, optimizer)
    rng = random.Random(settings.seed + step)
    out.mkdir(parents=True, exist_ok=True)
    with (
        (out / "loss.jsonl").open("a", encoding="utf-8") as log,
        tqdm(total=settings.steps, initial=step, desc="lora") as bar,
    ):
        while step < settings.steps:
            batch = [rng.choice(examples) for _ in range(settings.batch)]
            loss = _loss(pipe, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            value = float(loss.detach())
            log.write(json.dumps({"step": step, "loss": value}) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
            if step % settings.save_every == 0 or step == settings.steps:
                _checkpoint(
                    out / "checkpoint",
                    optimizer,
                    step,
                    get_peft_model_state_dict(transformer),
                )
    plot_losses(out / "loss.jsonl", out / "loss.png")
    facts = {
        "rank": settings.rank,
        "alpha": settings.alpha,
        "targets": list(TARGETS),
        "base": str(base),
        "steps": step,
        "data": str(data),
    }
    return write_adapter(out / "adapter", get_peft_model_state_dict(transformer), facts)


@dataclass(frozen=True)
class _Example:
    latents: torch.Tensor  # [C, frames], full model length
    caption: str
    seconds: float


def _examples(pipe: Any, pairs: list[tuple[Path, str]], seconds: float) -> list[_Example]:
    rate = int(pipe.vae.config.sampling_rate)
    length = int(pipe.transformer.config.sample_size) * int(pipe.vae.hop_length)
    examples = []
    for path, caption in pairs:
        audio, source_rate = read_audio(path)
        audio = resample(audio, source_rate, rate)
        caption = fill_caption(caption, audio, rate)
        for piece in chunks(audio, rate, min(seconds, length / rate)):
            padded = np.zeros((2, length), dtype=np.float32)
            padded[:, : piece.shape[1]] = piece
            with torch.no_grad():
                latents = pipe.vae.encode(torch.from_numpy(padded)[None]).latent_dist.mode()[0]
            examples.append(_Example(latents, caption, piece.shape[1] / rate))
    if not examples:
        raise LoraError("the recordings are shorter than half a chunk: nothing to train on")
    return examples


def _loss(pipe: Any, batch: list[_Example]) -> torch.Tensor:
    """EDM-weighted denoising loss of a batch, through the scheduler's preconditioning."""
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    scheduler = pipe.scheduler
    x0 = torch.stack([e.latents for e in batch])
    low, high = math.log(scheduler.config.sigma_min), math.log(scheduler.config.sigma_max)
    sigma = torch.exp(torch.empty(len(batch)).uniform_(low, high))[:, None, None]
    noisy = x0 + sigma * torch.randn_like(x0)
    with torch.no_grad():
        prompt_embeds = pipe.encode_prompt([e.caption for e in batch], x0.device, False)
        start, end = pipe.encode_duration(
            0.0, [e.seconds for e in batch], x0.device, False, len(batch)
        )
    text = torch.cat([prompt_embeds, start, end], dim=1)
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
    denoised = scheduler.precondition_outputs(noisy, output, sigma)
    data = scheduler.config.sigma_data
    weight = (sigma**2 + data**2) / (sigma * data) ** 2
    return (weight * (denoised - x0) ** 2).mean()


def _checkpoint(folder: Path, optimizer: Any, step: int, adapter: dict[str, torch.Tensor]) -> None:
    tensors = {f"adapter/{k}": v for k, v in adapter.items()}
    save_checkpoint(folder, {**tensors, **optimizer_tensors("adam", optimizer)}, {"step": step})


def _resume(folder: Path, model: Any, optimizer: Any) -> int:
    """Load the last checkpoint into ``model`` and ``optimizer``; returns its step (0: none)."""
    from peft import set_peft_model_state_dict

    found = load_checkpoint(folder)
    if found is None:
        return 0
    tensors, state = found
    adapter = {
        k.removeprefix("adapter/"): v for k, v in tensors.items() if k.startswith("adapter/")
    }
    set_peft_model_state_dict(model, adapter)
    load_optimizer("adam", optimizer, tensors)
    return int(state["step"])
