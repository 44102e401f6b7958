"""``rig eval MODEL --data HELDOUT``: how good a loop model and its vocoder are, on held-out loops.

Vocoder: every held-out loop → log-mel → audio, by the model's vocoder as the engine runs it
(``vocoder``: the network, then ``MEL_MATCH_ITERATIONS`` mel projections, see
:meth:`rig.nn.mel.MelFrontEnd.match`), by the network alone (``vocoder_raw``) and by Griffin-Lim
with 64 iterations (the baseline). Three distances to the real loop:
- ``mel_distance``: mean absolute difference of natural-log mels from an analysis neither method
  was given (1024-point FFT, hop 256, the model's mel bands);
- ``own_mel_distance``: the same with the model's own front end (n_fft 1500, hop 375). Griffin-Lim
  minimises exactly this STFT's inconsistency from exactly these magnitudes, so here it is scored
  on its own objective and looks better than it sounds;
- ``stft_distance``: the multi-resolution STFT loss of the vocoder trainer (spectral convergence +
  log-magnitude L1 at 512/1024/2048 points), which also sees phase smearing.

Generator: the Fréchet distance (FD) between Gaussians fitted to a fixed feature set
(:func:`rig.train.features.feature_vector`: MFCC statistics, onset density, spectral centroid and
contrast), each feature standardised by the held-out set's mean and std, for
- ``fd_generated``: loops from random latents (ψ = 1) against the held-out loops;
- ``fd_shuffled_frames``: the baseline of no musical structure — the held-out mel frames shuffled
  across time and loops, then vocoded by the same vocoder;
- ``fd_train``: the training loops against the held-out ones (the floor a perfect model reaches).
``fd_ratio`` = ``fd_generated / fd_shuffled_frames`` (below 0.5 is the bar a shipped model meets).

The metrics are returned, stored in the folder's ``config.json`` (``"metrics"``) and written into
its card.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rig.checkpoint import LoopModel, load_loop_model, load_vocoder_folder
from rig.engines.gan_render import synthesize, vocode_loops
from rig.nn.mel import MelFrontEnd, MelSpec
from rig.release import read_config
from rig.train.card import refresh_card, update_config
from rig.train.data import dataset_audio
from rig.train.features import feature_vector, frechet_distance
from rig.train.gan import griffin_lim
from rig.train.run import TrainError
from rig.train.vocoder import log_mel_frames, stft_loss

GRIFFIN_LIM_ITERATIONS = 64
BATCH = 16


def evaluate_model(
    folder: Path, heldout: Path, train: Path | None = None, loops: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Measure the loop model or shared vocoder in ``folder`` against ``loops`` held-out loops;
    store and return the metrics.

    A vocoder folder gets the vocoder metrics only, each key prefixed with the held-out set's
    material (``"bass vocoder_mel_distance"``) and kept beside those of other materials, so one
    call per material fills its card.
    """
    real = _heldout_audio(heldout, loops, seed)
    config = read_config(folder)
    if config.get("kind") == "vocoder":
        return _evaluate_vocoder(folder, config, heldout, real)
    model = load_loop_model(folder)
    metrics: dict[str, Any] = {"heldout_loops": len(real)}
    metrics.update(vocoder_metrics(model.vocoder, model.mel, real))
    train = train or _training_dataset(folder, heldout)
    metrics.update(generator_metrics(model, real, train, seed))
    update_config(folder, metrics=metrics)
    refresh_card(folder)
    return metrics


def _heldout_audio(heldout: Path, loops: int, seed: int) -> torch.Tensor:
    real = torch.from_numpy(dataset_audio(heldout, loops, seed))
    if len(real) < 2:
        raise TrainError(f"{heldout} has {len(real)} loops; at least 2 are needed")
    return real


def _evaluate_vocoder(
    folder: Path, config: dict[str, Any], heldout: Path, real: torch.Tensor
) -> dict[str, Any]:
    front = MelFrontEnd(MelSpec(**config["audio"]))
    material = json.loads((heldout / "dataset.json").read_text()).get("material") or heldout.name
    measured = {
        "heldout_loops": len(real),
        **vocoder_metrics(load_vocoder_folder(folder), front, real),
    }
    metrics = {f"{material} {key}": value for key, value in measured.items()}
    update_config(folder, metrics={**config.get("metrics", {}), **metrics})
    refresh_card(folder)
    return metrics


@torch.no_grad()
def vocoder_metrics(
    vocoder: torch.nn.Module, front: MelFrontEnd, real: torch.Tensor
) -> dict[str, float]:
    """Mel and multi-resolution STFT distances of ``vocoder`` (with and without the mel
    projections) and of Griffin-Lim to ``[N, samples]`` real loops analysed by ``front`` (means
    over the loops)."""
    independent = MelFrontEnd(dataclasses.replace(front.spec, n_fft=1024, hop=256, win=1024))
    sums: dict[str, float] = {}
    for batch in real.split(BATCH):
        mel = log_mel_frames(front, batch)
        outputs = {
            "vocoder": vocode_loops(vocoder, front, mel),
            "vocoder_raw": vocode_loops(vocoder, front, mel, match_iterations=0),
            "griffin_lim": griffin_lim(mel, front, GRIFFIN_LIM_ITERATIONS),
        }
        for name, audio in outputs.items():
            distances = {
                "mel_distance": (independent(audio) - independent(batch)).abs().mean(),
                "own_mel_distance": (log_mel_frames(front, audio) - mel).abs().mean(),
                "stft_distance": stft_loss(audio, batch),
            }
            for metric, value in distances.items():
                key = f"{name}_{metric}"
                sums[key] = sums.get(key, 0.0) + float(value) * len(batch)
    return {key: round(total / len(real), 4) for key, total in sorted(sums.items())}


@torch.no_grad()
def generator_metrics(
    model: LoopModel, real: torch.Tensor, train: Path | None, seed: int = 0
) -> dict[str, float]:
    """Feature Fréchet distances of generated, frame-shuffled and training loops to ``real``."""
    rate = model.audio.mel.sr
    count = len(real)
    z = torch.randn(count, model.generator.cfg.z_dim, generator=torch.Generator().manual_seed(seed))
    generated = torch.cat(
        [synthesize(model, model.generator.mapping(part)) for part in z.split(BATCH)]
    )
    reference = _features(real, rate)
    mean, std = reference.mean(axis=0), reference.std(axis=0) + 1e-8

    def fd(audio: torch.Tensor) -> float:
        return round(
            frechet_distance((_features(audio, rate) - mean) / std, (reference - mean) / std), 3
        )

    metrics = {
        "fd_generated": fd(generated),
        "fd_shuffled_frames": fd(_shuffled(model, real, seed)),
    }
    metrics["fd_ratio"] = round(
        metrics["fd_generated"] / max(metrics["fd_shuffled_frames"], 1e-9), 3
    )
    if train is not None:
        metrics["fd_train"] = fd(torch.from_numpy(dataset_audio(train, count, seed + 1)))
    return metrics


def _features(audio: torch.Tensor, rate: int) -> np.ndarray:
    return np.stack([feature_vector(loop.numpy(), rate) for loop in audio])


def _shuffled(model: LoopModel, real: torch.Tensor, seed: int) -> torch.Tensor:
    """The real loops' mel frames shuffled across time and loops, vocoded: ``[N, samples]``."""
    mel = torch.cat([log_mel_frames(model.mel, part) for part in real.split(BATCH)])
    n, bins, frames = mel.shape
    pool = mel.permute(0, 2, 1).reshape(n * frames, bins)
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    shuffled = pool[order].reshape(n, frames, bins).permute(0, 2, 1)
    return torch.cat(
        [vocode_loops(model.vocoder, model.mel, part) for part in shuffled.split(BATCH)]
    )


def _training_dataset(folder: Path, heldout: Path) -> Path | None:
    """The dataset the model was trained on, if its config records one that exists beside the
    held-out set or at its recorded name."""
    config = json.loads((folder / "config.json").read_text())
    for data in config.get("training", {}).get("data", []):
        candidate = heldout.parent / str(data.get("dataset", ""))
        if data.get("dataset") and (candidate / "dataset.json").is_file():
            return candidate
    return None
