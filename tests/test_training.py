"""The GAN training pipeline on a tiny dataset built here: StyleGAN2, vocoder (iSTFT and MelGAN)
and direction training with resume, export → engine load → generate, evaluation, and direction
fitting on a toy generator with a planted direction."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import soundfile
import torch
from test_data import RATE, groove
from tiny_models import TINY_AUDIO, TINY_GENERATOR, TINY_ISTFT, TINY_MELGAN

from rig import cli
from rig.config import Config
from rig.engines.base import Request
from rig.engines.gan import GanEngine
from rig.latents import measurement_latents, training_rng
from rig.loop_model import load_loop_model, load_vocoder_folder
from rig.loops import resample
from rig.nn.mel import MelFrontEnd, MelSpec
from rig.nn.stylegan2 import Discriminator, Generator, MappingNetwork
from rig.nn.vocoder import LEGACY_MAX_MAGNITUDE
from rig.params import TRUNCATION
from rig.prompt import parse_prompt
from rig.train.average import WeightAverage
from rig.train.card import Bar, render_card, shipping_bars
from rig.train.data import DataSettings, dataset_audio, prepare_dataset
from rig.train.directions import (
    RIDGE_GRID,
    FittedDirection,
    check_direction,
    check_directions,
    choose_ridge,
    principal_directions,
    regression_direction,
)
from rig.train.evaluate import evaluate_model, inband_mel_distance, recorded_audio
from rig.train.export import export_run
from rig.train.features import centroid, edge_rates, frechet_distance
from rig.train.gan import (
    GanSettings,
    _train_step,
    ema_keep,
    griffin_lim,
    mel_to_audio,
    train_stylegan2,
)
from rig.train.run import Checkpointer, Schedule, TrainError, run_steps
from rig.train.vocoder import (
    VocoderSettings,
    learning_rate_at,
    log_mel_frames,
    train_vocoder,
    upsampling_ratios,
)

TWO_STEPS = {"steps": 2, "batch": 2, "save_every": 1, "preview_every": 2, "log_every": 1}


def tiny_dataset(folder: Path, seeds: tuple[int, ...]) -> Path:
    """Grooves at 120 BPM (bar lines from 0 s) prepared at the tiny models' audio settings."""
    src = folder.with_name(folder.name + "-src")
    src.mkdir(parents=True)
    rows = ["file,tempo,licence,offset"]
    for seed in seeds:
        soundfile.write(src / f"g{seed}.wav", groove(120.0, 12.5, 60.0 + 20 * seed, seed), RATE)
        rows.append(f"g{seed}.wav,120,CC0,0")
    (src / "tempos.csv").write_text("\n".join(rows) + "\n")
    settings = DataSettings(audio=TINY_AUDIO)
    prepare_dataset(src, folder, "drums", src / "tempos.csv", settings=settings)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("training")
    return tiny_dataset(root / "drums", (1, 2, 3)), tiny_dataset(root / "drums-heldout", (4, 5))


@pytest.fixture(scope="module")
def vocoder_run(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "vocoder"
    settings = VocoderSettings(**TWO_STEPS, adversarial_from=1, segment_frames=16)
    return train_vocoder([data[0]], out, "istft", settings, TINY_ISTFT)


@pytest.fixture(scope="module")
def tiny_vocoder(vocoder_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny vocoder run exported: a release folder that previews play through."""
    return export_run(vocoder_run, "voc", tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def gan_run(
    data: tuple[Path, Path], tiny_vocoder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Two steps of the tiny generator; its previews through the tiny vocoder (Griffin-Lim's
    NNLS took 107 s on these untrained spectrograms; its preview path has a test of its own)."""
    out = tmp_path_factory.mktemp("runs") / "gan"
    return train_stylegan2(data[0], out, GanSettings(**TWO_STEPS), TINY_GENERATOR, tiny_vocoder)


def log_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "loss.jsonl").read_text().splitlines()]


def test_dataset_audio_is_the_prepared_segments(data: tuple[Path, Path]) -> None:
    audio = dataset_audio(data[0])
    entries = (data[0] / "manifest.jsonl").read_text().count('"offset_s"')
    assert audio.shape == (entries, TINY_AUDIO.samples) and entries >= 6  # ≤ 3 per file kept
    assert dataset_audio(data[0], limit=4).shape == (4, TINY_AUDIO.samples)


def test_stylegan2_two_steps_then_resume(
    gan_run: Path, tiny_vocoder: Path, data: tuple[Path, Path]
) -> None:
    assert log_steps(gan_run) == [1, 2]
    state = json.loads((gan_run / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2 and state["wall_seconds"] > 0
    tensors = safetensors.torch.load_file(str(gan_run / "checkpoint" / "checkpoint.safetensors"))
    assert {k.split("/")[0] for k in tensors} == {"G", "D", "G_ema", "augment", "optimizer"}
    assert (gan_run / "previews" / "step-000002.png").is_file()
    preview, rate = soundfile.read(gan_run / "previews" / "step-000002.wav")
    assert rate == TINY_AUDIO.mel.sr and len(preview) == 8 * TINY_AUDIO.samples  # 8 fixed latents
    assert (gan_run / "loss.png").is_file()
    before = tensors["G_ema/mapping.w_avg"].clone()
    train_stylegan2(
        data[0], gan_run, GanSettings(**{**TWO_STEPS, "steps": 3}), vocoder=tiny_vocoder
    )
    assert log_steps(gan_run) == [1, 2, 3]  # resumed at step 2, not from scratch
    after = safetensors.torch.load_file(str(gan_run / "checkpoint" / "checkpoint.safetensors"))
    assert not torch.equal(before, after["G_ema/mapping.w_avg"])


def test_a_resumed_run_draws_what_an_uninterrupted_one_would(
    data: tuple[Path, Path], tiny_vocoder: Path, tmp_path: Path
) -> None:
    """Three steps in one go and two plus one after a resume end on the same weights: a resume
    does not replay the run's first latents (it used to restart torch's global stream)."""
    two, three = GanSettings(**TWO_STEPS), GanSettings(**{**TWO_STEPS, "steps": 3})
    straight = train_stylegan2(data[0], tmp_path / "straight", three, TINY_GENERATOR, tiny_vocoder)
    split = train_stylegan2(data[0], tmp_path / "split", two, TINY_GENERATOR, tiny_vocoder)
    train_stylegan2(data[0], split, three, vocoder=tiny_vocoder)
    a, b = (
        safetensors.torch.load_file(str(run / "checkpoint" / "checkpoint.safetensors"))
        for run in (straight, split)
    )
    assert log_steps(split) == [1, 2, 3]
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(("G/", "D/", "G_ema/")))


def test_training_never_draws_the_latents_a_measurement_uses(
    data: tuple[Path, Path], tiny_vocoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The numbers of the z a run feeds its mapping network, from two run seeds, are not those
    of rig eval's latents nor of performers' seeds (the first row of torch's generator), not even
    at another offset of the same stream: training draws from another generator (rig.latents)."""
    seen: list[torch.Tensor] = []
    forward = MappingNetwork.forward

    def spy(self: MappingNetwork, z: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        seen.append(z.detach().clone())
        return forward(self, z, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(MappingNetwork, "forward", spy)
    for seed in (0, 1):
        settings = GanSettings(**{**TWO_STEPS, "seed": seed})
        train_stylegan2(data[0], tmp_path / f"run{seed}", settings, TINY_GENERATOR, tiny_vocoder)
    monkeypatch.setattr(MappingNetwork, "forward", forward)
    trained = torch.cat(seen)
    assert len(trained) >= 2 * 2 * 3 * TWO_STEPS["batch"]  # 2 runs, 2 steps, ≥ 3 batches each
    z_dim = TINY_GENERATOR.z_dim
    seeds = [torch.Generator().manual_seed(s) for s in range(64)]  # a take's z: the first row
    takes = torch.cat([torch.randn(1, z_dim, generator=rng) for rng in seeds])
    measured = torch.cat([measurement_latents(z_dim, 256, draw) for draw in range(3)])
    drawn = set(trained.flatten().tolist())
    for other in (takes, measured):  # not even shifted: a value in common is chance (< 1 %)
        shared = sum(value in drawn for value in other.flatten().tolist())
        assert shared < 0.01 * len(drawn), shared
    with pytest.raises(ValueError, match="draw is in"):
        measurement_latents(z_dim, 4, -1)


def test_a_resumed_run_keeps_its_own_statistics_when_the_dataset_grew(
    data: tuple[Path, Path], tiny_vocoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = tmp_path / "drums"
    shutil.copytree(data[0], dataset)
    settings = GanSettings(**TWO_STEPS)
    run = train_stylegan2(dataset, tmp_path / "run", settings, TINY_GENERATOR, tiny_vocoder)
    own = safetensors.torch.load_file(str(run / "stats.safetensors"))
    grown = {"mean": own["mean"] + 1.0, "std": own["std"] * 2.0}  # as after more loops
    safetensors.torch.save_file(grown, str(dataset / "stats.safetensors"))
    used = []
    set_statistics = MelFrontEnd.set_statistics

    def spy(front: MelFrontEnd, mean: torch.Tensor, std: torch.Tensor) -> None:
        used.append(mean.clone())
        set_statistics(front, mean, std)

    monkeypatch.setattr(MelFrontEnd, "set_statistics", spy)
    train_stylegan2(dataset, run, GanSettings(**{**TWO_STEPS, "steps": 3}), vocoder=tiny_vocoder)
    assert log_steps(run) == [1, 2, 3]
    assert used and all(torch.equal(mean, own["mean"]) for mean in used)
    kept = safetensors.torch.load_file(str(run / "stats.safetensors"))
    assert torch.equal(kept["mean"], own["mean"])  # what export reads


@pytest.mark.parametrize("seed", [0, 1])
def test_the_profile_loss_pulls_the_generated_mean_to_the_datasets(seed: int) -> None:
    """Steps with the profile loss dominating bring the mean of many generated spectrograms
    nearer the dataset's mean, frame by frame (here: a bright column at frame 8), and much
    nearer than the same steps without it."""
    real = torch.randn(4, 1, *TINY_GENERATOR.output_shape)
    profile = torch.zeros(1, 1, *TINY_GENERATOR.output_shape)
    profile[..., 8] = 2.0
    z = torch.randn(256, TINY_GENERATOR.z_dim, generator=torch.Generator().manual_seed(0))

    def distance(G: Generator) -> float:
        with torch.no_grad():
            torch.manual_seed(1)
            return float((G(z, noise="random").mean(0, keepdim=True) - profile).square().mean())

    def train(weight: float) -> tuple[float, float]:
        """(distance before, distance after) 20 steps at ``weight`` from the same start."""
        torch.manual_seed(seed)  # the initial weights: the two runs start alike
        G, D = Generator(TINY_GENERATOR), Discriminator(TINY_GENERATOR)
        opt_g = torch.optim.Adam(G.parameters(), lr=0.01, betas=(0.0, 0.99))
        opt_d = torch.optim.Adam(D.parameters(), lr=0.002, betas=(0.0, 0.99))
        before = distance(G)
        settings, cpu = GanSettings(batch=4, profile_weight=weight), torch.device("cpu")
        for step in range(1, 21):
            rng = training_rng(seed, step)
            _train_step(G, D, opt_g, opt_d, real, step, settings, cpu, rng, profile=profile)
        return before, distance(G)

    before, matched = train(1e6)
    same_start, unmatched = train(0.0)
    assert same_start == before
    assert matched < 0.5 * before and matched < 0.5 * unmatched
    with pytest.raises(ValueError, match="profile weight must be 0"):
        GanSettings(profile_weight=-1.0)


def test_training_on_a_dataset_analysed_the_old_way_warns(
    data: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = tmp_path / "drums"
    shutil.copytree(data[0], dataset)
    no_steps = GanSettings(**{**TWO_STEPS, "steps": 0})
    train_stylegan2(dataset, tmp_path / "new", no_steps, TINY_GENERATOR)
    assert "older rig" not in caplog.text
    summary = json.loads((dataset / "dataset.json").read_text())
    del summary["analysis"]
    (dataset / "dataset.json").write_text(json.dumps(summary))
    train_stylegan2(dataset, tmp_path / "old", no_steps, TINY_GENERATOR)
    assert f"{dataset} was prepared by an older rig" in caplog.text
    assert "learns a click at the loop point" in caplog.text


def test_stylegan2_can_start_from_another_run(
    gan_run: Path, vocoder_run: Path, data: tuple[Path, Path], tmp_path: Path
) -> None:
    source = safetensors.torch.load_file(str(gan_run / "checkpoint" / "checkpoint.safetensors"))
    source_step = json.loads((gan_run / "checkpoint" / "state.json").read_text())["step"]
    no_steps = GanSettings(**{**TWO_STEPS, "steps": 0})
    run = train_stylegan2(data[1], tmp_path / "pads", no_steps, init=gan_run)
    started = safetensors.torch.load_file(str(run / "checkpoint" / "checkpoint.safetensors"))
    weights = [k for k in source if k.split("/")[0] in ("G", "D", "G_ema")]
    assert weights and all(torch.equal(source[k], started[k]) for k in weights)
    assert not any(k.startswith("optimizer") for k in started)  # Adam starts afresh
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == 0
    config = json.loads((run / "config.json").read_text())
    assert config["init"] == {
        "from": str(gan_run.resolve()),
        "step": source_step,
        "data": [{"dataset": str(data[0].resolve())}],
    }
    models = tmp_path / "models"
    vocoder = export_run(vocoder_run, "tiny-vocoder", models)
    one_step = GanSettings(**{**TWO_STEPS, "steps": 1})
    train_stylegan2(data[1], run, one_step, vocoder=vocoder, init=gan_run)  # vocoder previews
    assert log_steps(run) == [1]  # resumed, not started again
    preview, rate = soundfile.read(run / "previews" / "step-000001.wav")
    assert rate == TINY_AUDIO.mel.sr and len(preview) == 8 * TINY_AUDIO.samples
    folder = export_run(run, "pads", models, "tiny-vocoder", notes=("Only 1 step.",))
    card = (folder / "MODEL_CARD.md").read_text()
    assert card.endswith("## Known weaknesses and notes\n\n- Only 1 step.\n")
    assert "not their moving average" not in card
    live = export_run(run, "pads-live", models, "tiny-vocoder", live=True)
    trained = safetensors.torch.load_file(str(run / "checkpoint" / "checkpoint.safetensors"))
    exported = load_loop_model(live).generator.state_dict()
    assert all(torch.equal(trained[f"G/{k}"], v) for k, v in exported.items())
    assert not all(torch.equal(trained[f"G_ema/{k}"], v) for k, v in exported.items())
    assert (
        "the run's last weights, not their moving average" in (live / "MODEL_CARD.md").read_text()
    )
    segments = (data[0] / "manifest.jsonl").read_text().count('"offset_s"')
    assert f"started from the weights of `gan` at step {source_step}" in card
    assert f"itself trained on {segments} loops of drums" in card

    # A release folder (what a fresh clone has): its EMA generator, a fresh discriminator.
    mine = train_stylegan2(data[0], tmp_path / "mine", no_steps, init=folder)
    tensors = safetensors.torch.load_file(str(mine / "checkpoint" / "checkpoint.safetensors"))
    shipped = load_loop_model(folder).generator.state_dict()
    assert all(torch.equal(tensors[f"G/{k}"], v) for k, v in shipped.items())
    assert all(torch.equal(tensors[f"G_ema/{k}"], v) for k, v in shipped.items())
    trained_d = safetensors.torch.load_file(str(run / "checkpoint" / "checkpoint.safetensors"))
    assert not torch.equal(tensors["D/out.weight"], trained_d["D/out.weight"])
    # Stopped before its first save (a power cut): resumed without --init, it still starts from
    # the weights its config names.
    shutil.rmtree(mine / "checkpoint")
    train_stylegan2(data[0], mine, no_steps)
    again = safetensors.torch.load_file(str(mine / "checkpoint" / "checkpoint.safetensors"))
    assert all(torch.equal(again[f"G_ema/{k}"], v) for k, v in shipped.items())
    card = (export_run(mine, "mine", models, "tiny-vocoder") / "MODEL_CARD.md").read_text()
    heldout_segments = (data[1] / "manifest.jsonl").read_text().count('"offset_s"')
    assert json.loads((mine / "config.json").read_text())["init"]["step"] == source_step + 1
    assert f"started from the weights of `pads` at step {source_step + 1}" in card  # in all
    assert f"itself trained on {heldout_segments} loops of drums" in card

    with pytest.raises(TrainError, match="only starts new runs"):
        train_stylegan2(data[1], gan_run, GanSettings(**TWO_STEPS), init=run)
    for wrong in (vocoder_run, models / "tiny-vocoder", tmp_path):
        with pytest.raises(TrainError, match="not a stylegan2 run or a loop model folder"):
            train_stylegan2(data[1], tmp_path / "x", GanSettings(**TWO_STEPS), init=wrong)
    with pytest.raises(TrainError, match="not the one asked for"):
        other = dataclasses.replace(TINY_GENERATOR, w_dim=8)
        train_stylegan2(data[1], tmp_path / "y", GanSettings(**TWO_STEPS), other, init=gan_run)
    other_mels = json.loads((folder / "config.json").read_text())
    other_mels["audio"]["fmin"] += 10.0  # same shapes, other mel bands
    (folder / "config.json").write_text(json.dumps(other_mels))
    with pytest.raises(TrainError, match="made for"):
        train_stylegan2(data[1], tmp_path / "z", GanSettings(**TWO_STEPS), init=folder)


def test_the_ema_ramp_up_counts_the_steps_an_init_had_trained(
    gan_run: Path, tiny_vocoder: Path, data: tuple[Path, Path], tmp_path: Path
) -> None:
    settings = GanSettings(**{**TWO_STEPS, "steps": 1, "ema_rampup": 1.0})
    assert ema_keep(3, settings) == pytest.approx(0.5 ** (2 / 6))  # half-life: the 6 images seen
    assert ema_keep(10_000, settings) == pytest.approx(0.5 ** (2 / 2000))  # ema_kimg caps it
    no_ramp = dataclasses.replace(settings, ema_rampup=0.0)
    assert ema_keep(1, no_ramp) == ema_keep(10_000, settings)
    for bad, message in (({"ema_kimg": 0.0}, "EMA half-life"), ({"ema_rampup": -1}, "ramp-up")):
        with pytest.raises(ValueError, match=message):
            GanSettings(**bad)

    def tensors(run: Path) -> dict[str, torch.Tensor]:
        return safetensors.torch.load_file(str(run / "checkpoint" / "checkpoint.safetensors"))

    before, source_step = tensors(gan_run), log_steps(gan_run)[-1]
    more = train_stylegan2(data[0], tmp_path / "more", settings, vocoder=tiny_vocoder, init=gan_run)
    after = tensors(more)
    names = [name for name, _ in Generator(TINY_GENERATOR).named_parameters()]
    kept = torch.cat([(after[f"G_ema/{k}"] - after[f"G/{k}"]).flatten() for k in names])
    whole = torch.cat([(before[f"G_ema/{k}"] - after[f"G/{k}"]).flatten() for k in names])
    measured = float(kept @ whole / (whole @ whole))  # G_ema ← keep · G_ema + (1 − keep) · G
    assert measured == pytest.approx(ema_keep(source_step + 1, settings), abs=1e-4)
    assert measured != pytest.approx(ema_keep(1, settings), abs=0.05)  # not a fresh ramp-up


def test_vocoder_two_steps_with_discriminators(vocoder_run: Path) -> None:
    rows = [json.loads(line) for line in (vocoder_run / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["adversarial"] == 0.0 and rows[1]["adversarial"] > 0.0  # joins at step 1
    assert rows[1]["discriminator"] > 0.0 and all(r["mel"] > 0 for r in rows)
    preview, rate = soundfile.read(vocoder_run / "previews" / "step-000002.wav")
    assert rate == TINY_AUDIO.mel.sr and len(preview) == 2 * 4 * TINY_AUDIO.samples


def test_the_vocoder_ships_its_weight_average(vocoder_run: Path, tmp_path: Path) -> None:
    tensors = safetensors.torch.load_file(
        str(vocoder_run / "checkpoint" / "checkpoint.safetensors")
    )
    assert int(tensors["vocoder_average/updates"]) == 2
    folder = export_run(vocoder_run, "voc", tmp_path)
    shipped = safetensors.torch.load_file(str(folder / "vocoder.safetensors"))
    averaged = {k.removeprefix("vocoder_average/average."): v for k, v in tensors.items()
                if k.startswith("vocoder_average/average.")}  # fmt: skip
    live = {k.removeprefix("vocoder/"): v for k, v in tensors.items() if k.startswith("vocoder/")}
    moved = [k for k in live if not torch.equal(live[k], averaged[k])]
    assert moved and all(torch.equal(shipped[k], averaged[k]) for k in moved)
    card = (folder / "MODEL_CARD.md").read_text()
    assert "exponential moving average (decay 0.999), kept over the last 2 steps" in card
    # A run that read a few loops of each dataset says so, and one begun before averaging
    # existed (no decay recorded) averaged with the default.
    run = shutil.copytree(vocoder_run, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["settings"]["loops_per_dataset"] = 3
    del config["settings"]["average_decay"]
    (run / "config.json").write_text(json.dumps(config))
    card = (export_run(run, "voc2", tmp_path) / "MODEL_CARD.md").read_text()
    assert re.search(r"- data: 3 of the \d+ loops of drums", card)
    assert "(decay 0.999)" in card


def test_a_vocoder_exports_under_another_magnitude_cap(
    vocoder_run: Path, gan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-magnitude: the same weights, the head's cap set for the release (and the card's
    training facts say which cap it trained under); refused for anything else."""
    plain = export_run(vocoder_run, "voc", tmp_path)
    capped = export_run(vocoder_run, "voc-capped", tmp_path, max_magnitude=1e-3)
    weights = [safetensors.torch.load_file(str(f / "vocoder.safetensors")) for f in (plain, capped)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    config = json.loads((capped / "config.json").read_text())
    assert config["vocoder"]["max_magnitude"] == 1e-3
    trained = TINY_ISTFT.n_fft / 2
    assert config["training"]["max_magnitude"] == {"trained": trained, "exported": 1e-3}
    card = (capped / "MODEL_CARD.md").read_text()
    assert f"magnitude above 0.001 (trained under a cap of {trained:g})" in card
    mel = torch.randn(1, TINY_ISTFT.n_mels, 8)
    with torch.no_grad():
        loud, quiet = (load_vocoder_folder(f)(mel) for f in (plain, capped))
    assert float(quiet.abs().max()) < 0.01 < float(loud.abs().max())  # the cap is in force

    for run, flags, error in (
        (vocoder_run, ["--max-magnitude", "0"], "--max-magnitude 0: must be a positive magnitude"),
        (gan_run, ["--vocoder", "voc", "--max-magnitude", "5"], "only an iSTFT vocoder run"),
    ):
        args = ["export", str(run), "--name", "refused", "--models", str(tmp_path), *flags]
        assert cli.main(args) == 1
        assert error in capsys.readouterr().err
        assert not (tmp_path / "refused").exists()


def test_a_decaying_learning_rate_shrinks_the_later_steps(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    """--decay FROM:UNTIL: a half cosine from the learning rate to 1/20 of it, a function of the
    step alone, so a resumed run takes exactly the step the schedule gives."""
    base = VocoderSettings(steps=1, batch=2, adversarial_from=99, segment_frames=16, log_every=1)
    rates = [learning_rate_at(s, dataclasses.replace(base, decay_from=10, decay_until=20))
             for s in (0, 10, 15, 20, 99)]  # fmt: skip
    assert rates == pytest.approx([2e-4, 2e-4, 2e-4 * 0.525, 1e-5, 1e-5])
    assert learning_rate_at(10**6, base) == 2e-4  # no decay asked: constant

    first = train_vocoder([data[0]], tmp_path / "constant", "istft", base, TINY_ISTFT)
    shutil.copytree(first, tmp_path / "decayed-start")
    decayed = shutil.copytree(first, tmp_path / "decayed")
    two = dataclasses.replace(base, steps=2)
    train_vocoder([data[0]], first, "istft", two)
    train_vocoder([data[0]], decayed, "istft", dataclasses.replace(two, decay_until=1))

    def weights(run: Path) -> dict[str, torch.Tensor]:
        tensors = safetensors.torch.load_file(str(run / "checkpoint" / "checkpoint.safetensors"))
        return {k: v for k, v in tensors.items() if k.startswith("vocoder/")}

    # Both resumed from the same step-1 weights and Adam moments and see the same batch, so the
    # second step's update scales with the learning rate alone: 1/20 of it.
    after_one = weights(tmp_path / "decayed-start")
    moved = [sum(float((w[k] - after_one[k]).abs().sum()) for k in w)
             for w in (weights(first), weights(decayed))]  # fmt: skip
    assert moved[0] > 0 and moved[1] / moved[0] == pytest.approx(0.05, rel=0.02)


def test_a_vocoder_run_can_start_from_a_shipped_vocoder_or_a_run(
    data: tuple[Path, Path], vocoder_run: Path, gan_run: Path, tmp_path: Path
) -> None:
    """--init: a fine-tuning run starts from a shared vocoder folder's weights (the critic
    afresh) or a run's vocoder and critic, takes their shape, and its card says where it began."""
    shipped = export_run(vocoder_run, "voc", tmp_path / "models")
    still = VocoderSettings(**{**TWO_STEPS, "steps": 1}, learning_rate=0.0, adversarial_from=99,
                            segment_frames=16)  # fmt: skip

    def tensors(run: Path, prefix: str) -> dict[str, torch.Tensor]:
        found = safetensors.torch.load_file(str(run / "checkpoint" / "checkpoint.safetensors"))
        return {k.removeprefix(prefix): v for k, v in found.items() if k.startswith(prefix)}

    saved_before = json.loads((shipped / "config.json").read_text())  # before the cap's field:
    del saved_before["vocoder"]["max_magnitude"]  # its weights were trained under a cap of 100
    (shipped / "config.json").write_text(json.dumps(saved_before))
    assert load_vocoder_folder(shipped).cfg.magnitude_cap == LEGACY_MAX_MAGNITUDE == 100.0
    tuned = train_vocoder([data[0]], tmp_path / "tuned", "istft", still, init=shipped)
    weights = safetensors.torch.load_file(str(shipped / "vocoder.safetensors"))
    trained_with = json.loads((tuned / "config.json").read_text())["vocoder"]
    assert trained_with == TINY_ISTFT.to_dict() and trained_with["max_magnitude"] is None
    for prefix in ("vocoder/", "vocoder_average/average."):  # a zero learning rate keeps them
        assert tensors(tuned, prefix).keys() == weights.keys()
        assert all(torch.equal(tensors(tuned, prefix)[k], v) for k, v in weights.items())
    # Stopped before its first save, resumed without --init: it still starts from those weights.
    shutil.rmtree(tuned / "checkpoint")
    train_vocoder([data[0]], tuned, "istft", still)
    assert all(torch.equal(tensors(tuned, "vocoder/")[k], v) for k, v in weights.items())
    card = (export_run(tuned, "tuned", tmp_path / "models") / "MODEL_CARD.md").read_text()
    assert "started from the weights of `voc` at step 2" in card

    from_run = train_vocoder([data[0]], tmp_path / "from-run", "istft", still, init=vocoder_run)
    for prefix in ("vocoder/", "critic/"):
        assert all(torch.equal(tensors(from_run, prefix)[k], v)
                   for k, v in tensors(vocoder_run, prefix).items())  # fmt: skip

    with pytest.raises(TrainError, match="only starts new runs"):
        train_vocoder([data[0]], tuned, "istft", still, init=vocoder_run)
    for wrong in (gan_run, tmp_path):
        with pytest.raises(TrainError, match="not a vocoder run or a shared vocoder folder"):
            train_vocoder([data[0]], tmp_path / "x", "istft", still, init=wrong)
    other = json.loads((shipped / "config.json").read_text())
    other["audio"]["fmin"] += 10.0  # other mel bands
    (shipped / "config.json").write_text(json.dumps(other))
    with pytest.raises(TrainError, match="made for"):
        train_vocoder([data[0]], tmp_path / "y", "istft", still, init=shipped)


def test_griffin_lim_gives_the_same_audio_every_time() -> None:
    """The baseline rig eval compares the vocoder with must not move between runs."""
    front = MelFrontEnd(TINY_AUDIO.mel)
    audio = torch.from_numpy(groove(120.0, 2.0, 220.0, 0, rate=8000)[:, 0].copy())[None]
    mel = log_mel_frames(front, audio)
    first, again = griffin_lim(mel, front, 8), griffin_lim(mel, front, 8)
    assert first.shape == (1, mel.shape[-1] * 125) and torch.equal(first, again)
    noise = torch.randn_like(first) * audio.std()
    distance = [float((log_mel_frames(front, x) - mel).abs().mean()) for x in (first, noise)]
    assert distance[0] < distance[1] / 2  # an inversion of this mel, not any sound


def test_a_preview_without_a_vocoder_is_griffin_lim_under_0_9() -> None:
    front = MelFrontEnd(TINY_AUDIO.mel)
    audio = torch.from_numpy(groove(120.0, 2.0, 220.0, 0, rate=8000)[:, 0].copy())[None]
    loud = log_mel_frames(front, audio * 8)  # a mel whose inversion peaks above 0.9
    inverted, preview = griffin_lim(loud, front, 32), mel_to_audio(loud, front, None)
    assert float(inverted.abs().max()) > 0.9
    assert torch.allclose(preview, inverted * (0.9 / inverted.abs().max()))


def test_a_weight_average_starts_as_the_weights_then_trails_them() -> None:
    network = torch.nn.Linear(3, 1)
    average = WeightAverage(network, 0.999)
    with torch.no_grad():
        network.weight.fill_(1.0)
    average.update(network)  # the first update (or a resumed run's first): a copy
    assert torch.equal(average.average.weight, network.weight)
    with torch.no_grad():
        network.weight.fill_(2.0)
    average.update(network)  # then min(0.999, 2/11) of the old weights stay
    assert torch.allclose(average.average.weight, torch.full((1, 3), 2.0 - 2 / 11))
    with pytest.raises(ValueError, match="decay must be in"):
        WeightAverage(network, 1.0)


def test_full_band_vocoder_reads_the_mel_and_writes_twice_its_rate(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    settings = VocoderSettings(**TWO_STEPS, adversarial_from=1, segment_frames=16, upsample=2)
    run = train_vocoder([data[0]], tmp_path / "full", "istft", settings)
    config = json.loads((run / "config.json").read_text())["vocoder"]
    hop = 2 * TINY_AUDIO.mel.hop
    assert config["upsample"] == 2 and config["hop"] == hop and config["n_fft"] == 4 * hop
    rows = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
    assert all(row["full_mel"] > 0 for row in rows)
    preview, rate = soundfile.read(run / "previews" / "step-000002.wav")
    assert rate == 2 * TINY_AUDIO.mel.sr and len(preview) == 2 * 4 * 2 * TINY_AUDIO.samples
    audio = torch.from_numpy(dataset_audio(data[0], 2, rate=rate))
    assert audio.shape == (2, 2 * TINY_AUDIO.samples)


def test_full_band_eval_on_recorded_loops_with_a_listening_report(
    data: tuple[Path, Path], gan_run: Path, tmp_path: Path
) -> None:
    """A 2× vocoder measured at its own rate, on held-out and recorded loops, and the report's
    players and pictures on disk."""
    settings = VocoderSettings(**TWO_STEPS, adversarial_from=5, segment_frames=16, upsample=2)
    run = train_vocoder([data[0]], tmp_path / "full", "istft", settings)
    models = tmp_path / "models"
    export_run(run, "voc48", models)
    folder = export_run(gan_run, "drums", models, "voc48")
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    for seconds, name in ((1.5, "loop_short.flac"), (9.0, "loop_long.flac")):
        soundfile.write(recorded / name, groove(100.0, seconds, 70.0, 9), RATE)
    rate = 2 * TINY_AUDIO.mel.sr
    excerpts = recorded_audio(sorted(recorded.glob("loop_*")), rate, 4.0, 10)
    assert excerpts.shape == (3, 4 * rate)  # the long file gives two, the short one is repeated
    metrics = evaluate_model(
        folder, data[1], loops=3, recorded=sorted(recorded.glob("*")), report=tmp_path / "page"
    )
    assert metrics["recorded_loops"] == 3 and metrics["heldout_loops"] == 3
    for name in ("vocoder", "vocoder_raw", "griffin_lim"):
        for prefix in ("", "recorded "):
            for metric in (
                "mel_distance",
                "stft_distance",
                "full_mel_distance",
                "inband_mel_distance",
            ):
                assert np.isfinite(metrics[f"{prefix}{name}_{metric}"])
    assert np.isfinite(metrics["fd_ratio"]) and metrics["engine_truncation"] == TRUNCATION == 0.8
    played = metrics["engine_fd_generated"]  # the same latents pulled toward w_avg: other loops
    assert np.isfinite(played) and played != metrics["fd_generated"]
    assert metrics["engine_fd_ratio"] == round(played / metrics["fd_shuffled_frames"], 3)
    low, high = metrics["fd_ratio_min"], metrics["fd_ratio_max"]  # three draws of latents
    assert low <= metrics["fd_ratio"] <= high and low < high
    stored = json.loads((folder / "config.json").read_text())["metrics"]
    assert stored["recorded vocoder_mel_distance"] == metrics["recorded vocoder_mel_distance"]
    page = (tmp_path / "page" / "index.html").read_text()
    links = re.findall(r'src="((?:audio|img)/[^"]+)"', page)
    assert len(links) == 2 * (3 * 4 + 8 + 3 + 3 * 4)  # held-out, generated, tempos, recorded
    assert all((tmp_path / "page" / link).is_file() for link in links)
    info = soundfile.info(tmp_path / "page" / "audio" / "generated-0-90.wav")
    assert info.samplerate == rate and info.frames == round(TINY_AUDIO.samples * 2 * 120 / 90)
    assert "recorded vocoder_mel_distance" in page


def test_inband_mel_distance_measures_only_below_the_mels_nyquist() -> None:
    """What a full-band vocoder adds above 12 kHz is not counted; what it changes below is."""
    rate = 48000
    noise = np.random.default_rng(0).normal(0, 0.1, (1, 24000)).astype(np.float32)
    target = torch.from_numpy(resample(noise, 24000, rate))  # broadband up to 12 kHz
    t = torch.arange(target.shape[1]) / rate
    fade = torch.hann_window(target.shape[1], periodic=False)  # no clicks at the ends

    def plus_sine(hz: float) -> torch.Tensor:
        return target + 0.2 * fade * torch.sin(2 * torch.pi * hz * t)

    analysis = MelFrontEnd(MelSpec(sr=24000, n_fft=1024, hop=256, win=1024, n_mels=80))
    assert inband_mel_distance(target, target, rate, analysis) == 0.0
    assert inband_mel_distance(plus_sine(16000), target, rate, analysis) < 0.002
    assert inband_mel_distance(plus_sine(3000), target, rate, analysis) > 0.01


def test_melgan_trainer_smoke(data: tuple[Path, Path], tmp_path: Path) -> None:
    settings = VocoderSettings(**TWO_STEPS, adversarial_from=0, segment_frames=16)
    run = train_vocoder([data[0]], tmp_path / "melgan", "melgan", settings, TINY_MELGAN)
    assert log_steps(run) == [1, 2]
    assert json.loads((run / "config.json").read_text())["vocoder"]["type"] == "melgan"
    assert upsampling_ratios(375) == (5, 5, 5, 3) and upsampling_ratios(125) == (5, 5, 5)
    with pytest.raises(TrainError, match="hop 34"):
        upsampling_ratios(34)


def test_export_load_generate_and_eval(
    gan_run: Path, vocoder_run: Path, data: tuple[Path, Path], config: Config
) -> None:
    models = config.paths.models[0]
    with pytest.raises(TrainError, match="needs --vocoder"):
        export_run(gan_run, "drums", models)
    export_run(vocoder_run, "tiny-vocoder", models)
    folder = export_run(gan_run, "drums", models, "tiny-vocoder", ("drums", "techno"), data[1])
    model = load_loop_model(folder)
    assert model.shared_vocoder == "tiny-vocoder" and model.tags == ("drums", "techno")
    stats = safetensors.torch.load_file(str(data[0] / "stats.safetensors"))
    assert torch.allclose(model.mel.mean, stats["mean"])
    saved = safetensors.torch.load_file(str(gan_run / "checkpoint" / "checkpoint.safetensors"))
    assert torch.equal(model.generator.mapping.w_avg, saved["G_ema/mapping.w_avg"])
    config_json = json.loads((folder / "config.json").read_text())
    training, metrics = config_json["training"], config_json["metrics"]
    segments = (data[0] / "manifest.jsonl").read_text().count('"offset_s"')
    steps = json.loads((gan_run / "checkpoint" / "state.json").read_text())["step"]
    assert training["steps"] == steps and training["data"][0]["segments"] == segments
    assert training["data"][0]["licences"] == {"CC0": segments}
    for key in (
        "vocoder_mel_distance",
        "griffin_lim_mel_distance",
        "griffin_lim_own_mel_distance",
        "vocoder_stft_distance",
        "vocoder_raw_mel_distance",
        "fd_generated",
        "fd_train",
        "fd_train_vocoded",
    ):
        assert np.isfinite(metrics[key])
    assert metrics["fd_train_vocoded"] > metrics["fd_train"]  # a tiny vocoder costs FD
    assert metrics["heldout_loops"] == len(dataset_audio(data[1]))
    card = (folder / "MODEL_CARD.md").read_text()
    assert f"{segments} under CC0" in card and "griffin_lim_mel_distance" in card
    ratio_met = metrics["fd_ratio"] <= 0.25  # the drums bar
    assert f"{'met' if ratio_met else 'NOT met'}: feature FD at most 25%" in card
    assert f", {metrics['fd_ratio_min']}-{metrics['fd_ratio_max']} over three draws" in card
    out = GanEngine(config).generate(
        Request(parse_prompt("techno"), "gan", seed=3), lambda *a: None
    )
    assert out.audio.shape[0] == 2 and out.metadata["model"] == "drums"
    shared = evaluate_model(models / "tiny-vocoder", data[1], loops=3)
    assert shared["drums heldout_loops"] == 3 and np.isfinite(shared["drums vocoder_mel_distance"])
    beats = shared["drums vocoder_mel_distance"] < shared["drums griffin_lim_mel_distance"]
    card = (models / "tiny-vocoder" / "MODEL_CARD.md").read_text()
    assert (
        f"{'met' if beats else 'NOT met'}: the vocoder beats Griffin-Lim on mel distance on drums"
        in card
    )


def test_cli_train_directions_and_eval(
    gan_run: Path, vocoder_run: Path, data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    for args in (  # in this process (a fresh interpreter per command costs seconds of imports)
        ["export", str(vocoder_run), "--name", "voc", "--models", str(models)],
        ["export", str(gan_run), "--name", "d", "--models", str(models), "--vocoder", "voc"],
        ["train", "directions", str(models / "d"), "--samples", "24", "--components", "2"],
    ):
        assert cli.main(args) == 0
    capsys.readouterr()
    eval_args = ["eval", str(models / "d"), "--data", str(data[1]), "--loops", "4", "--json"]
    assert cli.main(eval_args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["heldout_loops"] == 4 and metrics["fd_ratio"] >= 0
    config = json.loads((models / "d" / "config.json").read_text())
    assert set(config["directions"]) == {"complexity", "bass", "brightness", "pc1", "pc2"}
    assert config["directions"]["brightness"]["check"]["feature"] == "centroid"
    assert config["directions"]["brightness"]["check"]["latents"] == 96  # CHECK_LATENTS
    assert " % of 96 latents" in (models / "d" / "MODEL_CARD.md").read_text()
    assert load_loop_model(models / "d").directions["pc1"].vector.norm() == pytest.approx(1.0)
    _check_keeps_the_directions(models / "d", config)
    bad = subprocess.run(  # the console entry point's exit code and message
        [
            sys.executable,
            "-m",
            "rig",
            "train",
            "stylegan2",
            str(tmp_path),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "is not a prepared dataset" in bad.stderr


def _check_keeps_the_directions(folder: Path, fitted: dict) -> None:
    """``rig train directions --check`` on a fitted folder whose stored checks were spoilt:
    the vectors and ranges stay bit for bit, the checks are measured again (the fit's own values,
    on the same latents)."""
    vectors = safetensors.torch.load_file(str(folder / "directions.safetensors"))
    spoilt = json.loads((folder / "config.json").read_text())
    for entry in spoilt["directions"].values():
        if "check" in entry:
            entry["check"].update(change=-1.0, rises=0.0, latents=3)
    (folder / "config.json").write_text(json.dumps(spoilt))
    assert cli.main(["train", "directions", str(folder), "--samples", "24", "--check"]) == 0
    checked = json.loads((folder / "config.json").read_text())["directions"]
    assert checked.keys() == fitted["directions"].keys()
    for name, entry in fitted["directions"].items():
        assert checked[name]["range"] == entry["range"]
        if "check" in entry:
            ours, theirs = checked[name]["check"], entry["check"]
            assert ours["feature"] == theirs["feature"] and ours["rises"] == theirs["rises"]
            assert ours["latents"] == theirs["latents"] == 96
            assert ours["change"] == pytest.approx(theirs["change"], rel=1e-4)
    again = safetensors.torch.load_file(str(folder / "directions.safetensors"))
    assert again.keys() == vectors.keys()
    assert all(torch.equal(again[name], vectors[name]) for name in vectors)
    assert "rising on" in (folder / "MODEL_CARD.md").read_text()
    spoilt["directions"] = {}
    (folder / "config.json").write_text(json.dumps(spoilt))
    (folder / "directions.safetensors").unlink()
    with pytest.raises(TrainError, match="has no directions to check"):
        check_directions(folder)


def test_direction_fitting_recovers_a_planted_direction() -> None:
    """A toy generator whose brightness follows w · planted: the fitted "brightness" direction
    must point along the planted one, and moving along it must brighten every loop."""
    rate, samples, dim = 8000, 8000, 16
    planted = torch.randn(dim)
    planted /= planted.norm()
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(samples).astype(np.float32))
    spectrum = torch.fft.rfft(noise)
    freqs = torch.fft.rfftfreq(samples, 1 / rate)

    def render(ws: torch.Tensor) -> np.ndarray:
        cutoff = 1000.0 * torch.exp(0.5 * (ws @ planted))  # [B] Hz, brighter along `planted`
        shaped = spectrum[None] * torch.sigmoid((cutoff[:, None] - freqs[None]) / 50.0)
        return torch.fft.irfft(shaped, samples).numpy()

    ws = torch.randn(200, dim, generator=torch.Generator().manual_seed(1))
    values = np.array([centroid(loop, rate) for loop in render(ws)])
    fitted = regression_direction(ws, values)
    assert float(fitted @ planted) > 0.95
    direction = FittedDirection(fitted, -2.0, 2.0, "brightness", "centroid")
    change, rises = check_direction(render, ws[:10], direction, centroid, rate)
    assert change > 0 and rises == 1.0
    backwards = FittedDirection(-fitted, -2.0, 2.0, "darkness", "centroid")
    assert check_direction(render, ws[:10], backwards, centroid, rate)[1] == 0.0
    axes = principal_directions(ws * torch.tensor([5.0] + [1.0] * (dim - 1)), 2)
    assert abs(float(axes[0][0][0])) > 0.9 and axes[0][1] > axes[1][1]  # axis 0 has the variance


def test_ridge_is_chosen_by_cross_validation() -> None:
    """A noisy feature of w whose variance sits in a few axes (as in a trained mapping network):
    least squares chases the noise into the many low-variance axes, the cross-validated ridge
    finds the planted direction; pure noise gets the strongest ridge, a clean signal a weak one."""
    rng = torch.Generator().manual_seed(0)
    scales = torch.tensor([3.0] * 8 + [0.3] * 120)  # 8 loud axes of w, 120 quiet ones
    ws = torch.randn(256, 128, generator=rng) * scales
    planted = torch.zeros(128)
    planted[:8] = 1 / np.sqrt(8)
    signal = ws @ planted
    noisy = (signal + 2.0 * signal.std() * torch.randn(256, generator=rng)).numpy()
    fitted = regression_direction(ws, noisy)
    x = ws - ws.mean(dim=0)
    least_squares = torch.linalg.lstsq(x, torch.from_numpy(noisy - noisy.mean())[:, None]).solution
    least_squares = least_squares[:, 0] / least_squares.norm()
    assert float(fitted @ planted) > 0.8 and float(least_squares @ planted) < 0.5

    x = x.double()
    scale = float((x**2).sum()) / 128
    pure_noise = torch.randn(256, generator=rng, dtype=torch.float64)
    assert choose_ridge(x, pure_noise) == pytest.approx(RIDGE_GRID[-1] * scale)
    clean = (signal - signal.mean()).double()
    assert choose_ridge(x, clean / clean.std()) < RIDGE_GRID[len(RIDGE_GRID) // 2] * scale


def test_frechet_distance() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 5))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = frechet_distance(a, a + 2.0)
    assert shifted == pytest.approx(5 * 4.0, rel=1e-6)  # ‖μ‖² of a shift by 2 in 5 dimensions
    assert frechet_distance(a, rng.standard_normal((400, 5))) < 0.5


def test_card_says_which_shipping_bars_are_met() -> None:
    config = {
        "name": "x",
        "metrics": {"vocoder_mel_distance": 0.3, "griffin_lim_mel_distance": 0.22, "fd_ratio": 0.4},
        "directions": {
            "bass": {
                "range": [-1, 1],
                "check": {"feature": "bass_energy", "change": 1.2, "rises": 0.9},
            },
            "brightness": {
                "range": [-1, 1],
                "check": {"feature": "centroid", "change": 5, "rises": 0.5, "latents": 96},
            },
            "pc1": {"range": [-2, 2], "description": "principal component 1"},
        },
    }
    assert [(bar.what.split()[0], bar.met, bar.direction) for bar in shipping_bars(config)] == [
        ("the", False, ""),  # 0.3 is not below Griffin-Lim's 0.22
        ("feature", False, ""),  # 0.4 is above 30 %
        ("bass", True, "bass"),
        ("brightness", False, "brightness"),  # rises on only half the latents
    ]
    card = render_card(config)
    assert "NOT met: the vocoder beats Griffin-Lim on mel distance (0.3 vs 0.22)" in card
    assert "NOT met: feature FD at most 30% of the shuffled-frame baseline (ratio 0.4)" in card
    assert "+5, rising on 50 % of 96 latents" in card
    assert "+1.2, rising on 90 % of 24 latents" in card  # stored before the count was
    drums = {"material": "drums", "metrics": {"fd_ratio": 0.25}}
    assert shipping_bars(drums) == [
        Bar("feature FD at most 25% of the shuffled-frame baseline", True, "ratio 0.25")
    ]
    drums["metrics"] |= {"fd_ratio": 0.26, "engine_fd_ratio": 0.24, "engine_truncation": 0.8}
    assert shipping_bars(drums) == [  # the bar stays on ψ = 1; the played figure is told beside
        Bar(
            "feature FD at most 25% of the shuffled-frame baseline",
            False,
            "ratio 0.26; 0.24 as the engine plays it, at ψ 0.8",
        )
    ]
    drums["metrics"] |= {"fd_ratio_min": 0.22, "fd_ratio_max": 0.27}  # the bar stays on seed 0's
    bar = shipping_bars(drums)[0]
    assert (bar.met, bar.figures) == (
        False,
        "ratio 0.26, 0.22-0.27 over three draws of latents; 0.24 as the engine plays it, at ψ 0.8",
    )
    measured = {"vocoder": (0.2, 1.1), "vocoder_raw": (0.3, 1.5), "griffin_lim": (0.25, 1.2)}
    recorded = {
        f"recorded {who}_{d}_distance": value
        for who, values in measured.items()
        for d, value in zip(("mel", "stft"), values, strict=True)
    }
    assert [bar.met for bar in shipping_bars({"kind": "vocoder", "metrics": recorded})] == [
        True,  # 0.2 < 0.25
        True,  # 1.1 < 1.2
        False,  # the network alone: 0.3 > 0.25
    ]
    assert "sonic-pi-samples" in render_card({"kind": "vocoder", "metrics": recorded})
    assert shipping_bars({"name": "fresh"}) == [] and "Bars" not in render_card({"name": "fresh"})


def test_edges_at_the_loop_point_and_beat_lines_are_told_apart() -> None:
    rate, beats = 8000, 4
    t = np.arange(2 * rate) / rate
    rng = np.random.default_rng(0)
    smooth = np.sin(2 * np.pi * 3 * t)[None] + 0.01 * rng.standard_normal((10, t.size))
    assert edge_rates(smooth, rate, beats) == (0.0, 0.0)
    ramp = smooth + np.linspace(0.0, 2.0, t.size)[None]  # its end is 2 above its start
    assert edge_rates(ramp, rate, beats) == (1.0, 0.0)
    hits = smooth.copy()
    for k in range(1, beats):  # a step up at beat lines 1 and 3, none at line 2
        if k != 2:
            hits[:, k * t.size // beats :] += 1.0 if k == 1 else -1.0
    assert edge_rates(hits, rate, beats) == (0.0, pytest.approx(2 / 3))
    clicks = {"loop_point_edges": 0.4, "beat_line_edges": 0.05}
    assert shipping_bars({"metrics": clicks}) == [
        Bar(
            "no more hard edges at the loop point than at the beat lines (+5 points)",
            False,
            "40.0% of generated loops at the loop point, 5.0% at a beat line",
        )
    ]
    assert shipping_bars({"metrics": {**clicks, "loop_point_edges": 0.1}})[0].met


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_a_stopped_run_saves_where_it_was(tmp_path: Path, stop: str) -> None:
    net = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(net.parameters())
    checkpoints = Checkpointer(
        tmp_path / "checkpoint", {"net": net}, {"net": optimizer}, torch.device("cpu")
    )

    def train_step(step: int) -> dict[str, float]:
        if step == 3:
            if stop == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler raises before this returns
            raise KeyboardInterrupt
        loss = net(torch.ones(1, 2)).square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": float(loss)}

    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        run_steps(
            tmp_path,
            Schedule(10, log_every=1, save_every=100),
            checkpoints,
            train_step,
            lambda step: None,
            "t",
        )
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["step"] == 3
    logged = (tmp_path / "loss.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3]
    assert (tmp_path / "loss.png").is_file()
    weights = net.weight.detach().clone()
    again = torch.nn.Linear(2, 2)
    resumed = Checkpointer(
        tmp_path / "checkpoint",
        {"net": again},
        {"net": torch.optim.Adam(again.parameters())},
        torch.device("cpu"),
    )
    assert resumed.resume()[0] == 3 and torch.equal(again.weight, weights)
    assert signal.getsignal(signal.SIGTERM) is handler  # the handler is put back
