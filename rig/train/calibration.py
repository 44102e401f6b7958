"""``rig train calibration MODEL --data DATASET``: take a learnt click out of a model's loop point.

Before ``rig data prepare`` analysed segments as loops (:data:`rig.train.data.LOOP_ANALYSIS`), the
first and last mel frames of every training segment came from analysis windows that reached past
the segment into zero padding; they were brighter than the frames inside. A generator trained
on them makes that bright column at the same frames, and the circular vocoder plays it as a
click at the loop point (the texture model shipped before: 21 % of its loops, against 9 % at a
beat line). Restarts on loop-analysed data took the column out of a run's last weights but not
out of their moving average (measured in ``scripts/train-defaults.sh``); calibration removes it
from any export.

The column is a shift of the *mean* spectrogram at a few fixed frames, so the offset is the
difference of two means, at those frames alone:

    (g + offset)[:, t] - mean_t' (g + offset)[:, t'] = d[:, t] - mean_t' d[:, t']   for t in edges
    offset[:, t] = 0                                                               elsewhere

with ``d`` the loop-analysed dataset's mean normalised spectrogram, ``g`` the model's over
``samples`` latents (ψ = 1, the engine's constant noise), both ``[n_mels, frames]``, and
``edges`` the frames whose analysis window (``n_fft`` wide, centred) reached past the loop's
ends: the shape of each edge frame's spectrum relative to the loop's average becomes the data's.
Measured on that texture model with ``rig eval`` (200 loops, torch seed 0): loop-point edges
21.0 % → 2.5 %, beat lines 9.0 % → 9.1 %, FD ratio 0.416 → 0.409. Correcting every frame the
same way instead pulled the FD ratio to 0.562: the data's mean beat pattern is not every loop's.
Nor does the long-term spectrum want matching: one offset per band, constant over time, that gave
the calibrated shipped texture the data's mean spectrum took its FD ratio from 0.347 to 0.390
(0.365 at half strength; measured 2026-12-01).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rig.latents import measurement_latents
from rig.loop_model import CALIBRATION_FILE, LoopAudio, LoopModel, load_loop_model
from rig.release import update_config, write_tensors
from rig.train.card import refresh_card
from rig.train.data import LOOP_ANALYSIS, load_dataset, read_summary
from rig.train.run import TrainError

BATCH = 64  # latents per generator call


def edge_frames(audio: LoopAudio) -> list[int]:
    """The frames of a loop whose centred ``n_fft`` analysis window reaches past its start or
    end, e.g. [0, 1, 255] for 256 frames at hop 375 and n_fft 1500."""
    half, hop = audio.mel.n_fft / 2, audio.mel.hop
    first = [t for t in range(audio.frames) if t * hop - half < 0]
    last = [t for t in range(audio.frames) if t * hop + half > audio.samples]
    return sorted(set(first + last))


def edge_offset(generated: torch.Tensor, data: torch.Tensor, edges: list[int]) -> torch.Tensor:
    """The offset that gives ``generated``'s mean spectrogram ``data``'s shape at ``edges``.

    Args:
        generated, data: ``[n_mels, frames]`` mean normalised spectrograms.
        edges: the frames to correct.

    Returns:
        ``[n_mels, frames]``: zero off ``edges``; with it, each edge frame's difference from
        the loop's mean over time is the data's.
    """
    frames = data.shape[-1]
    shape = data - data.mean(dim=-1, keepdim=True)
    made = generated - generated.mean(dim=-1, keepdim=True)
    correction = (shape - made)[:, edges]
    # The offset moves the mean over time too, by its sum / frames: solve for that exactly.
    moved = correction.sum(dim=-1, keepdim=True) / (frames - len(edges))
    offset = torch.zeros_like(data)
    offset[:, edges] = correction + moved
    return offset


def fit_calibration(
    folder: Path, dataset: Path, samples: int = 1024, seed: int = 1
) -> dict[str, Any]:
    """Fit and store the loop-point calibration of the loop model in ``folder`` against the
    prepared ``dataset`` it was trained on (analysed as loops): ``calibration.safetensors`` and
    the ``"calibration"`` section of ``config.json``, which the card then shows. The latents
    (``samples`` of measurement draw ``seed``, :mod:`rig.latents`) are other than ``rig eval``'s
    (draw 0). Returns that section.

    Raises:
        TrainError: the dataset is not loop-analysed, or made for other audio settings.
        CheckpointError: the folder is not a loadable loop model.
    """
    if samples < 2:
        raise TrainError(f"--samples must be at least 2, got {samples}")
    model = load_loop_model(folder)
    data = _dataset_mean(dataset, model.audio, model.mel.normalize)
    model.calibration = None  # fitted from the raw generator, should it hold one already
    generated = _generated_mean(model, samples, seed)
    edges = edge_frames(model.audio)
    offset = edge_offset(generated, data, edges)
    write_tensors(folder, CALIBRATION_FILE, {"offset": offset})
    section = {
        "dataset": str(dataset),
        "samples": samples,
        "draw": seed,  # measurement draw (rig.latents); "seed" was torch's, before 2026-12-02
        "frames": edges,
        "mean_abs_offset": {str(t): round(float(offset[:, t].abs().mean()), 3) for t in edges},
    }
    update_config(folder, calibration=section)
    refresh_card(folder)
    return section


def _generated_mean(model: LoopModel, samples: int, seed: int) -> torch.Tensor:
    """The model's mean normalised spectrogram ``[n_mels, frames]`` over ``samples`` latents
    (ψ = 1, constant noise)."""
    z = measurement_latents(model.generator.cfg.z_dim, samples, seed)
    total = torch.zeros(())
    with torch.no_grad():
        for part in z.split(BATCH):
            total = total + model.mel.normalize(
                model.spectrogram(model.generator.mapping(part))
            ).sum(0)
    return total / samples


def _dataset_mean(
    dataset: Path, audio: LoopAudio, normalize: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """The mean normalised spectrogram ``[n_mels, frames]`` of a prepared, loop-analysed
    dataset made for ``audio``."""
    summary = read_summary(dataset)
    if summary.get("analysis") != LOOP_ANALYSIS:
        raise TrainError(
            f"{dataset} was prepared by an older rig: its edge frames hold the very column "
            "calibration takes out. Prepare its sources again (rig data prepare, or rig data "
            "demo for the demo corpus) and calibrate against that"
        )
    theirs = LoopAudio.from_dict(summary["audio"])
    if theirs != audio:
        raise TrainError(f"{dataset} was prepared for {theirs}, the model makes {audio}")
    mels, _ = load_dataset(dataset)
    mean = normalize(mels).mean(dim=0)
    if not torch.isfinite(mean).all():
        raise TrainError(f"{dataset}: its spectrograms are not finite")
    return mean
