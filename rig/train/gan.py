"""``rig train stylegan2``: train a spectrogram StyleGAN2 on a prepared dataset.

Objective as in StyleGAN2 (Karras et al. 2020, and its official config "paper256" for the
numbers): non-saturating logistic loss, lazy R1 on reals every ``r1_every`` steps (γ/2 · ‖∇D‖²,
scaled by the interval), style mixing, Adam (β = 0, 0.99) with the lazy-regularisation correction
of lr and β, an EMA generator with a half-life of ``ema_kimg`` thousand images ramped up over the
first steps (``ema_rampup``), and ``w_avg`` tracked for truncation. bf16 autocast on CUDA.

A run folder holds ``config.json`` (dataset, model and settings), ``checkpoint/`` (G, D, G_ema,
both optimizers, step, wall time; resumes), ``loss.jsonl``, ``loss.png`` and ``previews/``
(``step-NNNNNN.png``: a spectrogram grid of the EMA generator for fixed latents, and
``step-NNNNNN.wav``: those loops back to back through ``--vocoder`` or Griffin-Lim).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F

from rig.compute import pick_device
from rig.latents import training_latents, training_rng
from rig.loop_model import LoopAudio, load_loop_model
from rig.nn.mel import MelFrontEnd
from rig.nn.stylegan2 import Discriminator, Generator, GeneratorConfig
from rig.release import CheckpointError
from rig.train.augment import (
    SPECTROGRAM_AUGMENTS,
    AdaptiveProbability,
    augment_spectrograms,
)
from rig.train.average import blend_weights
from rig.train.data import LOOP_ANALYSIS, load_dataset, read_summary
from rig.train.run import (
    Checkpointer,
    Schedule,
    TrainError,
    load_checkpoint,
    run_steps,
    unstarted_init,
)

LOSS_KEYS = ("d_loss", "g_loss", "profile", "r1")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GanSettings:
    """One StyleGAN2 run."""

    steps: int = 20_000
    minutes: float = 0.0  # stop after this much wall time in this process (0: no limit)
    batch: int = 8
    learning_rate: float = 0.002
    r1_gamma: float = 1.0
    r1_every: int = 16
    mixing: float = 0.5  # probability of style mixing per batch
    ema_kimg: float = 2.0  # EMA half-life in thousands of images
    ema_rampup: float = 0.05  # EMA half-life at most this fraction of images seen (0: no ramp)
    profile_weight: float = 0.0  # weight of the profile loss (see _profile_loss; 0: off)
    augment_p: float = 0.3  # initial probability of each discriminator augmentation (0: none)
    adaptive: bool = True  # adapt it as ADA does (D's sign on reals kept near 0.6)
    augment: tuple[str, ...] = SPECTROGRAM_AUGMENTS  # which (rig.train.augment)
    save_every: int = 500
    preview_every: int = 1000
    log_every: int = 10
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.ema_kimg > 0:
            raise ValueError(f"the EMA half-life must be above 0 kimg, got {self.ema_kimg:g}")
        if not self.ema_rampup >= 0:
            raise ValueError(f"the EMA ramp-up must be 0 (off) or above, got {self.ema_rampup:g}")
        if not self.profile_weight >= 0:
            raise ValueError(
                f"the profile weight must be 0 (off) or above, got {self.profile_weight:g}"
            )


@dataclass(frozen=True)
class RunFolder:
    """What a run is trained on and how; stored as the run's ``config.json``."""

    dataset: str
    material: str
    audio: dict
    generator: dict
    settings: dict


def train_stylegan2(
    dataset: Path,
    out: Path,
    settings: GanSettings | None = None,
    generator: GeneratorConfig | None = None,
    vocoder: Path | None = None,
    init: Path | None = None,
) -> Path:
    """Train (or resume) a StyleGAN2 run in ``out`` on the prepared ``dataset``; returns ``out``.

    ``init``: another StyleGAN2 run whose last weights (G, D, G_ema, not the optimizers) a new
    run starts from, or a loop model release folder (its EMA generator as G and G_ema; D starts
    afresh) — transfer learning, e.g. pads from a bass run, or a shipped model on your own loops.
    Its generator config is used, and its audio settings must be the dataset's.
    """
    settings = settings or GanSettings()
    mels, audio, material = _load_training_set(dataset)
    init = init or unstarted_init(out)
    start = _init_weights(init, generator) if init else None
    if start is not None:
        if LoopAudio.from_dict(start.audio) != audio:
            raise TrainError(f"--init {init}: made for {start.audio}, the dataset is {audio}")
        generator = start.generator
    cfg = _run_config(
        out, dataset, material, audio, generator or GeneratorConfig(), settings, start
    )
    steps_before = _init_steps(out)  # the EMA ramp-up is for a random start, not a trained one
    if cfg.output_shape != tuple(mels.shape[1:]):
        raise TrainError(
            f"{dataset} holds {tuple(mels.shape[1:])} (mels, frames) spectrograms but the "
            f"generator makes {cfg.output_shape}"
        )
    if not (out / "stats.safetensors").is_file():  # the run keeps its own copy for export
        shutil.copyfile(dataset / "stats.safetensors", out / "stats.safetensors")
    # ...and trains with it: a dataset grown since (rig data demo --loops) has new statistics,
    # which would shift the scale the run's weights were learnt in, and differ from the export's.
    stats = safetensors.torch.load_file(str(out / "stats.safetensors"))
    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    front = MelFrontEnd(audio.mel)
    front.set_statistics(stats["mean"], stats["std"])
    reals = front.normalize(mels)[:, None]  # [N, 1, n_mels, frames]
    profile = reals.mean(dim=0, keepdim=True).to(device)  # [1, 1, n_mels, frames]
    G, D = Generator(cfg).to(device), Discriminator(cfg).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    ratio = settings.r1_every / (settings.r1_every + 1)
    opt_g = torch.optim.Adam(G.parameters(), lr=settings.learning_rate, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(
        D.parameters(), lr=settings.learning_rate * ratio, betas=(0.0, 0.99**ratio)
    )
    ada = AdaptiveProbability(settings.augment_p)
    checkpoints = Checkpointer(
        out / "checkpoint",
        {"G": G, "D": D, "G_ema": G_ema, "augment": ada},
        {"G": opt_g, "D": opt_d},
        device,
        optional=frozenset({"augment"}),
    )
    if start is not None:  # the init's augmentation probability is its own, not this run's
        checkpoints.start_from(start.tensors, skip=frozenset({"augment"}))
    fixed_z = torch.randn(8, cfg.z_dim, generator=torch.Generator().manual_seed(1234))
    grid_steps = audio.bars * audio.beats_per_bar * 4  # sixteenths of one loop

    def train_step(step: int) -> dict[str, float]:
        rng = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)  # resumes exactly
        real = reals[torch.randint(len(reals), (settings.batch,), generator=rng)].to(device)

        p = float(ada.p) if settings.augment_p > 0 else 0.0

        def augment(x: torch.Tensor) -> torch.Tensor:
            return augment_spectrograms(x, p, grid_steps, front.std, settings.augment, rng)

        latent_rng = training_rng(settings.seed, step)  # rig.latents: no measurement's, no take's
        losses = _train_step(
            G, D, opt_g, opt_d, real, step, settings, device, latent_rng, rng, augment, profile
        )
        if settings.adaptive and settings.augment_p > 0:
            ada.observe(losses["real_sign"], settings.batch)
        losses["augment_p"] = p
        blend_weights(G_ema, G, keep=ema_keep(steps_before + step + 1, settings))
        return losses

    def preview(step: int) -> None:
        stem = out / "previews" / f"step-{step:06d}"
        write_preview(G_ema, front, fixed_z.to(device), stem, vocoder)

    run_steps(
        out,
        Schedule.of(settings),
        checkpoints,
        train_step,
        preview,
        f"stylegan2 {material}",
        LOSS_KEYS,
    )
    return out


def _load_training_set(dataset: Path) -> tuple[torch.Tensor, LoopAudio, str]:
    """A prepared dataset's segments ``[N, n_mels, frames]``, audio settings and material (its
    statistics are the run's own copy, read by :func:`train_stylegan2`)."""
    info = read_summary(dataset)
    if info.get("analysis") != LOOP_ANALYSIS:
        log.warning(
            "%s was prepared by an older rig, with zero padding at each segment's ends: a model "
            "trained on it learns a click at the loop point; prepare its sources again",
            dataset,
        )
    mels, _ = load_dataset(dataset)
    if mels.ndim != 3 or len(mels) < 2:
        raise TrainError(f"{dataset} has {len(mels)} segments; at least 2 are needed")
    return mels, LoopAudio.from_dict(info["audio"]), str(info.get("material", ""))


@dataclass(frozen=True)
class InitialWeights:
    """Where a transfer-learning run starts: another run's last weights, or a release folder's
    EMA generator (its discriminator then starts afresh)."""

    source: Path  # the run or release folder
    step: int  # the steps its weights had trained in all (its own init's steps included)
    data: list[dict[str, Any]]  # what it was trained on: {"dataset": path} or export's facts
    audio: dict[str, Any]  # its LoopAudio as a dict
    generator: GeneratorConfig
    tensors: dict[str, torch.Tensor]  # "G/…", "G_ema/…" and, from a run, "D/…"

    def record(self) -> dict[str, Any]:
        """The run config's ``init`` section."""
        return {"from": str(self.source.resolve()), "step": self.step, "data": self.data}


def _init_weights(source: Path, generator: GeneratorConfig | None) -> InitialWeights:
    """Read the weights a new run starts from (``--init``): a StyleGAN2 run's last checkpoint or
    a loop model release folder."""
    config_path = source / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    if config.get("kind") == "stylegan2_run":
        found = load_checkpoint(source / "checkpoint")
        if found is None:
            raise TrainError(f"--init {source}: the run has no checkpoint yet")
        tensors, state = found
        step = int(state["step"]) + int(config.get("init", {}).get("step", 0))
        data = [{"dataset": config["dataset"]}]
    elif "generator" in config and config.get("kind", "loop_model") == "loop_model":
        try:
            weights = load_loop_model(source).generator.state_dict()
        except CheckpointError as error:
            raise TrainError(f"--init {source}: {error}") from None
        tensors = {f"{name}/{k}": v for name in ("G", "G_ema") for k, v in weights.items()}
        training = config.get("training", {})
        step = int(training.get("steps") or 0) + int(
            training.get("initialised_from", {}).get("step", 0)
        )
        data = list(training.get("data", []))
    else:
        raise TrainError(f"--init {source}: not a stylegan2 run or a loop model folder")
    stored = GeneratorConfig.from_dict(config["generator"])
    if generator is not None and generator != stored:
        raise TrainError(f"--init {source}: its generator is {stored}, not the one asked for")
    return InitialWeights(source, step, data, dict(config["audio"]), stored, tensors)


def _run_config(
    out: Path,
    dataset: Path,
    material: str,
    audio: LoopAudio,
    generator: GeneratorConfig,
    settings: GanSettings,
    start: InitialWeights | None = None,
) -> GeneratorConfig:
    """Write ``config.json`` for a new run, or read it back (the generator config of a resumed run
    wins over ``generator``; a resumed run cannot change its ``init``)."""
    path = out / "config.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        init = stored.get("init")
        if start is not None and (init is None or init["from"] != start.record()["from"]):
            raise TrainError(
                f"{out} is an existing run that did not start from {start.source}; --init only "
                "starts new runs"
            )
        return GeneratorConfig.from_dict(stored["generator"])
    out.mkdir(parents=True, exist_ok=True)
    run = RunFolder(
        str(dataset.resolve()),
        material,
        audio.to_dict(),
        generator.to_dict(),
        dataclasses.asdict(settings),
    )
    record: dict[str, Any] = {"kind": "stylegan2_run", **dataclasses.asdict(run)}
    if start is not None:
        record["init"] = start.record()
    path.write_text(json.dumps(record, indent=2) + "\n")
    return generator


def _train_step(
    G: Generator,
    D: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    step: int,
    settings: GanSettings,
    device: torch.device,
    latent_rng: np.random.Generator,
    noise_rng: torch.Generator | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
    profile: torch.Tensor | None = None,
) -> dict[str, float]:
    """One D step (with lazy R1 every ``r1_every``) and one G step; the discriminator sees
    everything through ``augment`` (reals and fakes alike). ``latent_rng``: this step's latents
    and style mixing (:func:`rig.latents.training_rng`); ``noise_rng``: a CPU generator for the
    synthesis noise (on a GPU the device's own). ``profile``: the dataset's mean normalised
    spectrogram ``[1, 1, n_mels, frames]``, for ``settings.profile_weight``. Returns the losses."""
    batch, z_dim = real.shape[0], G.cfg.z_dim
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    noise_rng = noise_rng if device.type == "cpu" else None

    def latents() -> torch.Tensor:
        return training_latents(latent_rng, batch, z_dim).to(device)

    def fake_batch() -> torch.Tensor:
        z = latents()
        mixes = latent_rng.random() < settings.mixing
        mix = latents() if mixes else None
        layer = int(latent_rng.integers(1, G.cfg.num_ws)) if mixes else None
        return G(z, noise="random", mix_z=mix, mix_layer=layer, generator=noise_rng)

    # Discriminator: softplus(D(fake)) + softplus(-D(real)).
    G.requires_grad_(False)
    D.requires_grad_(True)
    with autocast:
        fake = fake_batch()
        real_logits = D(augment(real)).float()
        fake_logits = D(augment(fake.detach())).float()
    d_loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    r1 = 0.0
    if step % settings.r1_every == 0:
        real_r1 = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(augment(real_r1)).sum(), real_r1, create_graph=True)
        penalty = grad.square().sum(dim=(1, 2, 3)).mean()
        opt_d.zero_grad(set_to_none=True)
        (penalty * settings.r1_gamma / 2 * settings.r1_every).backward()
        opt_d.step()
        r1 = float(penalty.detach())
    # Generator: softplus(-D(G(z))), tracking w_avg.
    G.requires_grad_(True)
    D.requires_grad_(False)
    with autocast:
        with torch.no_grad():
            G.mapping(latents(), track_beta=0.995)
        fake = fake_batch()
        g_loss = F.softplus(-D(augment(fake)).float()).mean()
    matched = _profile_loss(fake, profile) if profile is not None else g_loss.new_zeros(())
    opt_g.zero_grad(set_to_none=True)
    (g_loss + settings.profile_weight * matched).backward()
    opt_g.step()
    return {
        "d_loss": float(d_loss.detach()),
        "g_loss": float(g_loss.detach()),
        "profile": float(matched.detach()),
        "r1": r1,
        "real_score": float(real_logits.detach().mean()),
        "real_sign": float(real_logits.detach().sign().mean()),
        "fake_score": float(fake_logits.detach().mean()),
    }


def _profile_loss(fake: torch.Tensor, profile: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between a batch's mean spectrogram and the dataset's, position
    by position (``[B, 1, n_mels, frames]`` against ``[1, 1, n_mels, frames]``, normalised).

    The discriminator hardly sees where in the loop a feature sits: it pools time down to a few
    cells, and a narrow column reads as one more onset. A generator can thus keep a column the
    data does not have at a fixed frame, e.g. the bright edge frames of the texture and pads
    models trained on zero-padded segments, which the engine plays as a click at the loop
    point. Matching the mean per frame and band (first moments, as in feature matching,
    Salimans et al. 2016) pulls such a column to what the data has there."""
    return (fake.float().mean(dim=0, keepdim=True) - profile).square().mean()


def ema_keep(step: int, settings: GanSettings) -> float:
    """How much of the EMA generator one update keeps, after ``step`` steps in all (a run from
    ``--init`` counts the steps its weights had trained): a half-life of ``ema_kimg`` thousand
    images, shortened to ``ema_rampup`` of the images seen so far (StyleGAN2's ramp-up, so that a
    young run's average is not its random start)."""
    half_life = settings.ema_kimg * 1000
    if settings.ema_rampup > 0:
        half_life = min(half_life, step * settings.batch * settings.ema_rampup)
    return 0.5 ** (settings.batch / max(half_life, 1e-8))


def _init_steps(out: Path) -> int:
    """The steps a run's ``init`` weights had trained (0 for a run from random weights)."""
    init = json.loads((out / "config.json").read_text()).get("init")
    return int(init["step"]) if init else 0


@torch.no_grad()
def write_preview(
    G: Generator, front: MelFrontEnd, z: torch.Tensor, stem: Path, vocoder: Path | None
) -> None:
    """``stem.png``: the spectrograms of ``G(z)`` in a grid; ``stem.wav``: them back to back."""
    import soundfile

    from rig.pictures import spectrogram_grid

    stem.parent.mkdir(parents=True, exist_ok=True)
    normalized = G(z, noise="const")[:, 0].float().cpu()  # [B, n_mels, frames]
    spectrogram_grid(normalized.numpy()).save(stem.with_suffix(".png"))
    log_mel = front.denormalize(normalized)
    audio = mel_to_audio(log_mel, front, vocoder)
    soundfile.write(str(stem.with_suffix(".wav")), audio.reshape(-1).numpy(), front.spec.sr)


def mel_to_audio(log_mel: torch.Tensor, front: MelFrontEnd, vocoder: Path | None) -> torch.Tensor:
    """``[B, n_mels, frames]`` natural-log mel → ``[B, frames · hop]`` audio, peak ≤ 0.9, through
    the vocoder folder if given, else Griffin-Lim (32 iterations)."""
    if vocoder is not None:
        from rig.loop_model import load_vocoder_folder

        network = load_vocoder_folder(vocoder)
        audio = network(log_mel)[:, 0]
    else:
        audio = griffin_lim(log_mel, front, iterations=32)
    peak = float(audio.abs().max())
    return audio * (0.9 / peak if peak > 0.9 else 1.0)


def griffin_lim(log_mel: torch.Tensor, front: MelFrontEnd, iterations: int = 64) -> torch.Tensor:
    """``[B, n_mels, frames]`` natural-log mel → ``[B, frames · hop]`` by Griffin-Lim
    (librosa's mel inversion: NNLS to a linear spectrogram, then ``iterations`` of phase from a
    seeded random start, so the same mel always gives the same audio and the baseline that
    ``rig eval`` compares with does not move between runs)."""
    import librosa

    s = front.spec
    # One more frame, wrapped from the start (the loops are circular), so that the centred STFT
    # of the result has exactly the given frames. A front end reading audio at k × the mel's rate
    # scaled its filterbank by 1/k; librosa's inversion uses the plain one.
    scale = s.sr / front.mel_spec.sr
    mel = np.exp(torch.cat([log_mel, log_mel[..., :1]], dim=-1).double().numpy()) * scale
    magnitude = librosa.feature.inverse.mel_to_stft(
        mel, sr=s.sr, n_fft=s.n_fft, power=1.0, fmin=s.fmin, fmax=s.fmax
    )
    audio = librosa.griffinlim(
        magnitude,
        n_iter=iterations,
        hop_length=s.hop,
        win_length=s.win,
        n_fft=s.n_fft,
        pad_mode="constant",
        length=log_mel.shape[-1] * s.hop,
        random_state=0,
    )
    return torch.from_numpy(np.asarray(audio, dtype=np.float32)).reshape(log_mel.shape[0], -1)
