"""``rig train melgan`` / ``rig train vocoder``: train a mel → audio vocoder for the loop models.

Objective, after MelGAN (Kumar et al. 2019) and HiFi-GAN (Kong et al. 2020) for the weights:
an L1 log-mel reconstruction loss (×45) through the models' own front end (and, for a full-band
vocoder, the same on a 128-band mel up to its Nyquist frequency, HiFi-GAN's full-band loss) plus a
multi-resolution STFT loss (spectral convergence + log magnitude at 512/1024/2048-point FFTs,
Yamamoto et al. 2020) from the first step, which converges fast on small compute; the multi-scale
discriminators (least squares) and their feature matching (×2) join after ``adversarial_from``
steps. Adam (β = 0.8, 0.99).

``--type istft`` (default, the fast CPU vocoder) or ``--type melgan``. Data: the audio of one or
more prepared datasets (:func:`rig.train.data.dataset_audio`), cut into random crops of
``segment_frames`` mel frames, each augmented (gain, spectral tilt, pitch:
:func:`rig.train.augment.augment_audio`) with probability ``augment_p``.

**Full band** (``--upsample 2``, the default): the vocoder reads the 24 kHz models' 80-band mel
(up to 12 kHz) and writes 48 kHz audio, so it learns the 12–24 kHz band from the 48 kHz corpus
(bandwidth extension): the generators need no retraining. Its input mel is computed from the 48 kHz
crop by :class:`rig.nn.mel.MelFrontEnd` at that rate, which gives the 24 kHz mel's values.

The run keeps an exponential moving average of the vocoder's weights (``average_decay``,
:class:`rig.train.average.WeightAverage`); ``rig export`` ships the average.

A run folder holds ``config.json``, ``checkpoint/`` (resumes), ``loss.jsonl``, ``loss.png`` and
``previews/step-NNNNNN.wav`` (real loops → mel → vocoder).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
import torch.nn.functional as F
from torch import nn

from rig.compute import pick_device
from rig.loop_model import LoopAudio, load_vocoder_folder
from rig.nn.istft import IstftConfig
from rig.nn.mel import MelFrontEnd, MelSpec
from rig.nn.melgan import MelGANConfig, MultiScaleDiscriminator
from rig.nn.vocoder import (
    VocoderConfig,
    build_vocoder,
    for_training,
    vocoder_config,
    vocoder_upsample,
)
from rig.release import CheckpointError
from rig.train.augment import augment_audio
from rig.train.average import WeightAverage
from rig.train.data import dataset_audio, read_summary
from rig.train.run import (
    Checkpointer,
    Schedule,
    TrainError,
    load_checkpoint,
    run_steps,
    unstarted_init,
)

AVERAGE = "vocoder_average"  # the checkpoint's name for the weight average export ships
STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop)
LOSS_KEYS = ("mel", "full_mel", "stft", "adversarial", "discriminator")
DECAY_FLOOR = 0.05  # the learning rate's share left after a decay


def learning_rate_at(step: int, settings: VocoderSettings) -> float:
    """The vocoder's learning rate at ``step``: a pure function of the step, so resumes match."""
    start, end = settings.decay_from, settings.decay_until
    if end <= start or step <= start:
        return settings.learning_rate
    done = min(1.0, (step - start) / (end - start))
    share = DECAY_FLOOR + (1 - DECAY_FLOOR) * 0.5 * (1 + math.cos(math.pi * done))
    return settings.learning_rate * share


@dataclass(frozen=True)
class VocoderSettings:
    """One vocoder run."""

    steps: int = 20_000
    minutes: float = 0.0  # stop after this much wall time in this process (0: no limit)
    batch: int = 8
    segment_frames: int = 32  # mel frames per training crop (0.5 s at hop 375)
    learning_rate: float = 2e-4
    # The vocoder's learning rate falls by a half cosine from learning_rate at step decay_from
    # to DECAY_FLOOR × it at decay_until, and stays there (decay_until 0: constant).
    decay_from: int = 0
    decay_until: int = 0
    adversarial_from: int = 2000  # steps of reconstruction loss alone before the discriminators
    mel_weight: float = 45.0
    feature_weight: float = 2.0
    loops_per_dataset: int = 600  # 4-s loops of audio read from each dataset
    upsample: int = 2  # output rate ÷ mel rate (istft only; 2: 24 kHz mels → 48 kHz audio)
    augment_p: float = 0.5  # probability of each audio augmentation per crop (0: none)
    full_mel_weight: float = 15.0  # full-band 128-mel L1 (upsample > 1 only)
    average_decay: float = 0.999  # EMA of the weights, which export ships (rig.train.average)
    save_every: int = 500
    preview_every: int = 1000
    log_every: int = 10
    seed: int = 0
    device: str = "auto"


def default_vocoder(kind: str, audio: LoopAudio, upsample: int = 1) -> VocoderConfig:
    """The shipped shape of a vocoder of type ``kind`` ("istft" or "melgan") for ``audio``,
    writing ``upsample`` × the mel's rate (istft only)."""
    if kind == "istft":
        hop = audio.mel.hop * upsample
        return IstftConfig(n_mels=audio.mel.n_mels, hop=hop, n_fft=4 * hop, upsample=upsample)
    if upsample != 1:
        raise TrainError(f"a {kind} vocoder writes at its mel's rate: --upsample must be 1")
    if kind == "melgan":
        return MelGANConfig(n_mels=audio.mel.n_mels, ratios=upsampling_ratios(audio.mel.hop))
    raise TrainError(f"unknown vocoder type {kind!r}: choose istft or melgan")


def upsampling_ratios(hop: int, stages: int = 4) -> tuple[int, ...]:
    """At most ``stages`` factors ≥ 2, largest first, whose product is ``hop``
    (375 → 5, 5, 5, 3; 256 → 4, 4, 4, 4)."""
    primes, rest, p = [], hop, 2
    while rest > 1:
        while rest % p == 0:
            primes.append(p)
            rest //= p
        p += 1
    factors = sorted(primes)
    while len(factors) > stages:
        factors = sorted([factors[0] * factors[1], *factors[2:]])
    if not factors or max(factors) > 16:
        raise TrainError(f"hop {hop} cannot be split into {stages} upsampling stages of at most 16")
    return tuple(sorted(factors, reverse=True))


def train_vocoder(
    datasets: list[Path],
    out: Path,
    kind: str = "istft",
    settings: VocoderSettings | None = None,
    config: VocoderConfig | None = None,
    init: Path | None = None,
) -> Path:
    """Train (or resume) a vocoder run in ``out`` on the audio of ``datasets``; returns ``out``.

    ``config`` overrides the shape :func:`default_vocoder` gives ``kind`` (a resumed run keeps
    its own). ``init``: a vocoder run or a shared vocoder folder whose weights a new run starts
    from (fine-tuning; its shape is used and its mel settings must be the datasets')."""
    settings = settings or VocoderSettings()
    audio_cfg = _common_audio(datasets)
    init = init or unstarted_init(out)
    start = _vocoder_start(init) if init else None
    if start is not None:
        if start.mel != audio_cfg.mel:
            raise TrainError(
                f"--init {init}: made for {start.mel}, the datasets have {audio_cfg.mel}"
            )
        config = for_training(start.config)
    upsample = settings.upsample if kind == "istft" else 1
    cfg = _run_config(
        out,
        datasets,
        audio_cfg,
        config or default_vocoder(kind, audio_cfg, upsample),
        settings,
        start.record if start else None,
    )
    rate = audio_cfg.mel.sr * vocoder_upsample(cfg)
    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    clips = torch.from_numpy(
        np.concatenate(
            [dataset_audio(d, settings.loops_per_dataset, settings.seed, rate) for d in datasets]
        )
    )
    front = MelFrontEnd(audio_cfg.mel, rate).to(device)
    full_band = full_band_mel(rate).to(device) if rate != audio_cfg.mel.sr else None
    vocoder, critic = build_vocoder(cfg).to(device), MultiScaleDiscriminator().to(device)
    opt_v = torch.optim.Adam(vocoder.parameters(), settings.learning_rate, betas=(0.8, 0.99))
    opt_d = torch.optim.Adam(critic.parameters(), settings.learning_rate, betas=(0.8, 0.99))
    average = WeightAverage(vocoder, settings.average_decay)
    checkpoints = Checkpointer(
        out / "checkpoint",
        {"vocoder": vocoder, "critic": critic, AVERAGE: average},
        {"vocoder": opt_v, "critic": opt_d},
        device,
        optional=frozenset({AVERAGE}),  # runs begun before averaging resume with a fresh one
    )
    if start is not None:
        checkpoints.start_from(start.tensors)
    crop = settings.segment_frames * front.spec.hop

    def train_step(step: int) -> dict[str, float]:
        rng = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)  # resumes exactly
        real = augment_audio(random_crops(clips, settings.batch, crop, rng), rate,
                             settings.augment_p, rng).to(device)  # fmt: skip
        fronts = (front, full_band)
        for group in opt_v.param_groups:
            group["lr"] = learning_rate_at(step, settings)
        losses = _train_step(vocoder, critic, opt_v, opt_d, fronts, real, step, settings)
        average.update(vocoder)
        return losses

    def preview(step: int) -> None:
        path = out / "previews" / f"step-{step:06d}.wav"
        _preview(vocoder, front, clips[:4].to(device), path)

    run_steps(
        out,
        Schedule.of(settings),
        checkpoints,
        train_step,
        preview,
        f"vocoder {cfg.type}",
        LOSS_KEYS,
    )
    return out


def _common_audio(datasets: list[Path]) -> LoopAudio:
    """The one audio config all ``datasets`` share."""
    if not datasets:
        raise TrainError("give at least one prepared dataset")
    configs = {}
    for folder in datasets:
        configs[folder] = LoopAudio.from_dict(read_summary(folder)["audio"])
    first = next(iter(configs.values()))
    odd = [str(f) for f, c in configs.items() if c.mel != first.mel]
    if odd:
        raise TrainError(f"these datasets have other audio settings than {datasets[0]}: {odd}")
    return first


@dataclass(frozen=True)
class VocoderStart:
    """The weights a fine-tuning vocoder run starts from (``--init``)."""

    config: VocoderConfig
    mel: MelSpec  # the mel settings it reads
    tensors: dict[str, torch.Tensor]  # "vocoder/…", and "critic/…" and the average from a run
    record: dict[str, Any]  # the run config's ``init`` section: from, step, data


def _vocoder_start(source: Path) -> VocoderStart:
    """Read a vocoder run's last checkpoint (its vocoder, critic and weight average, not its
    optimizers) or a shared vocoder folder (its weights as the vocoder and the average start;
    the critic starts afresh)."""
    path = source / "config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    try:
        if config.get("kind") == "vocoder_run":
            found = load_checkpoint(source / "checkpoint")
            if found is None:
                raise TrainError(f"--init {source}: the run has no checkpoint yet")
            tensors, state = found
            step, data = int(state["step"]), [{"dataset": d} for d in config["datasets"]]
            mel = LoopAudio.from_dict(config["audio"]).mel
        elif config.get("kind") == "vocoder":
            weights = load_vocoder_folder(source).state_dict()
            tensors = {prefix + k: v for prefix in ("vocoder/", f"{AVERAGE}/average.")
                       for k, v in weights.items()}  # fmt: skip
            tensors[f"{AVERAGE}/updates"] = torch.zeros((), dtype=torch.long)
            training = config.get("training", {})
            step, data = int(training.get("steps") or 0), list(training.get("data", []))
            mel = MelSpec(**config["audio"])
        else:
            raise TrainError(f"--init {source}: not a vocoder run or a shared vocoder folder")
        cfg = vocoder_config(config["vocoder"])
    except (CheckpointError, KeyError, TypeError, ValueError) as error:
        raise TrainError(f"--init {source}: {error}") from None
    record = {"from": str(source.resolve()), "step": step, "data": data}
    return VocoderStart(cfg, mel, tensors, record)


def _run_config(
    out: Path,
    datasets: list[Path],
    audio: LoopAudio,
    cfg: VocoderConfig,
    settings: VocoderSettings,
    init: dict[str, Any] | None = None,
) -> VocoderConfig:
    """Write ``config.json`` for a new run, or read the stored vocoder config back (a resumed run
    cannot change its ``init``)."""
    path = out / "config.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        if init is not None and stored.get("init", {}).get("from") != init["from"]:
            raise TrainError(
                f"{out} is an existing run that did not start from {init['from']}; --init only "
                "starts new runs"
            )
        return vocoder_config(stored["vocoder"])
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "kind": "vocoder_run",
        "datasets": [str(d.resolve()) for d in datasets],
        "audio": audio.to_dict(),
        "vocoder": cfg.to_dict(),
        "settings": dataclasses.asdict(settings),
        **({"init": init} if init else {}),
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    return cfg


def full_band_mel(rate: int) -> MelFrontEnd:
    """A 128-band mel up to ``rate`` / 2, for the full-band reconstruction loss."""
    n_fft = 2048 * max(1, rate // 24000)
    spec = MelSpec(rate, n_fft, n_fft // 4, n_fft, 128, 0.0, rate / 2)
    return MelFrontEnd(spec)


def random_crops(
    clips: torch.Tensor, batch: int, samples: int, rng: torch.Generator
) -> torch.Tensor:
    """``batch`` random ``samples``-long crops of ``[N, T]`` clips → ``[batch, samples]``."""
    which = torch.randint(len(clips), (batch,), generator=rng)
    starts = torch.randint(clips.shape[1] - samples + 1, (batch,), generator=rng)
    return torch.stack([clips[i, s : s + samples] for i, s in zip(which, starts, strict=True)])


def log_mel_frames(front: MelFrontEnd, audio: torch.Tensor) -> torch.Tensor:
    """``[B, samples]`` → ``[B, n_mels, samples // hop]`` natural-log mel (the centred STFT's
    last frame dropped, so frames × hop = samples)."""
    return front(audio)[..., : audio.shape[-1] // front.spec.hop]


def stft_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss of ``[B, samples]`` audio: spectral convergence + L1 log mag."""
    total = fake.new_zeros(())
    for n_fft, hop in STFT_RESOLUTIONS:
        window = torch.hann_window(n_fft, device=fake.device)
        spec_f, spec_r = (
            torch.stft(x, n_fft, hop, window=window, return_complex=True).abs().clamp(min=1e-7)
            for x in (fake, real)
        )
        convergence = torch.linalg.norm(spec_r - spec_f) / torch.linalg.norm(spec_r).clamp(min=1e-7)
        total = total + convergence + F.l1_loss(spec_f.log(), spec_r.log())
    return total / len(STFT_RESOLUTIONS)


def _train_step(
    vocoder: nn.Module,
    critic: MultiScaleDiscriminator,
    opt_v: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    fronts: tuple[MelFrontEnd, MelFrontEnd | None],
    real: torch.Tensor,
    step: int,
    settings: VocoderSettings,
) -> dict[str, float]:
    """One discriminator step (once adversarial) and one vocoder step. ``fronts``: the input
    mel's front end at the audio's rate, and the full-band one (None at the mel's own rate).
    Returns the losses."""
    front, full_band = fronts
    mel = log_mel_frames(front, real)
    fake = vocoder(mel)[:, 0]
    adversarial = step >= settings.adversarial_from
    d_loss = torch.zeros(())
    if adversarial:
        scores_real = critic(real[:, None])
        scores_fake = critic(fake.detach()[:, None])
        d_loss = sum(
            ((1 - r[-1]) ** 2).mean() + (f[-1] ** 2).mean()
            for r, f in zip(scores_real, scores_fake, strict=True)
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
    mel_loss = F.l1_loss(log_mel_frames(front, fake), mel)
    spectral = stft_loss(fake, real)
    loss = settings.mel_weight * mel_loss + spectral
    full_loss = torch.zeros(())
    if full_band is not None:
        full_loss = F.l1_loss(full_band(fake), full_band(real))
        loss = loss + settings.full_mel_weight * full_loss
    g_adv = torch.zeros(())
    if adversarial:
        critic.requires_grad_(False)
        scores_fake = critic(fake[:, None])
        with torch.no_grad():
            scores_real = critic(real[:, None])
        critic.requires_grad_(True)
        g_adv = sum(((1 - f[-1]) ** 2).mean() for f in scores_fake)
        matching = sum(
            F.l1_loss(a, b.detach())
            for fs, rs in zip(scores_fake, scores_real, strict=True)
            for a, b in zip(fs[:-1], rs[:-1], strict=True)
        )
        loss = loss + g_adv + settings.feature_weight * matching
    opt_v.zero_grad(set_to_none=True)
    loss.backward()
    opt_v.step()
    values = {
        "mel": mel_loss,
        "full_mel": full_loss,
        "stft": spectral,
        "adversarial": g_adv,
        "discriminator": d_loss,
    }
    return {name: float(value.detach()) for name, value in values.items()}


@torch.no_grad()
def _preview(vocoder: nn.Module, front: MelFrontEnd, real: torch.Tensor, path: Path) -> None:
    """Real loops and their vocoded copies, alternating, as one WAV."""
    vocoder.eval()
    fake = vocoder(log_mel_frames(front, real))[:, 0]
    vocoder.train()
    pairs = torch.stack([real, fake[:, : real.shape[1]]], dim=1).reshape(-1).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.clip(pairs, -1, 1), front.spec.sr)
