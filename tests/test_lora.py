"""LoRA fine-tuning on a tiny Stable Audio Open pipeline: a 2-step run, resume, and loading the
adapter back with a strength."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import soundfile
import torch
from PIL import Image

from rig.adapters import adapter_control
from rig.config import Config, DiffusionConfig
from rig.engines.base import EngineError, Request
from rig.engines.diffusion import DiffusionEngine
from rig.engines.diffusion_kind import SAO
from rig.prompt import parse_prompt
from rig.testing.tiny_pipelines import write_tiny
from rig.train.lora import (
    LoraError,
    LoraSettings,
    encode_once,
    fill_caption,
    read_captions,
    train_lora,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny("sao", tmp_path_factory.mktemp("base") / "tiny-sao")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rate = 8000
    t = np.arange(3 * rate) / rate
    for name, pitch in (("a.wav", 220.0), ("b.wav", 330.0)):
        tone = 0.3 * np.sin(2 * np.pi * pitch * t) * (np.sin(2 * np.pi * 2 * t) > 0)
        soundfile.write(tmp_path / name, np.stack([tone, tone], axis=1), rate)
    listing = tmp_path / "data.csv"
    listing.write_text("file,caption\na.wav,dusty drums Tempo: 120\nb.wav,warm pad\n")
    return listing


def test_captions_are_read_and_filled(data: Path, tmp_path: Path) -> None:
    pairs = read_captions(data)
    assert [p.name for p, _ in pairs] == ["a.wav", "b.wav"]
    audio, rate = soundfile.read(pairs[1][0], always_2d=True)
    filled = parse_prompt(fill_caption(pairs[1][1], audio.T, rate))
    assert filled.tempo is not None and 40 <= filled.tempo <= 240
    assert filled.key is not None and filled.key.split()[1] in ("major", "minor")
    kept = parse_prompt(fill_caption("x, Tempo: 97, Key: F minor", audio.T, rate))
    assert (kept.tempo, kept.key) == (97.0, "F minor")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"file": "nope.wav", "caption": "x"}\n')
    with pytest.raises(LoraError, match="entry 1: no file"):
        read_captions(bad)


def test_the_reference_recipe_crops_drops_masks_and_draws_t_uniformly(
    base: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rig.train import lora

    pipe = lora._load_base(base, torch.float32)
    pairs = read_captions(data)
    cache = encode_once(pipe, data, pairs, tmp_path / "cache", 1.0)  # 3 s recordings, 1 s crops
    assert cache.crop == math.ceil(8000 / 256) and len(cache.latents) == 2
    with monkeypatch.context() as patched:
        patched.setattr(lora, "_encode", lambda *a: pytest.fail("encoded again"))
        again = encode_once(pipe, data, pairs, tmp_path / "cache", 1.0)  # a resume reads it
    assert all(torch.equal(a, b) for a, b in zip(again.latents, cache.latents, strict=True))
    rng = torch.Generator().manual_seed(0)
    starts, dropped = set(), 0
    for _ in range(200):
        batch = cache.batch(4, rng, dropout=0.1)
        assert batch.x0.shape == (4, cache.latents[0].shape[0], cache.crop) and bool(
            (batch.mask == 1).all()
        )
        dropped += int((batch.text.abs().sum(dim=(1, 2)) == 0).sum())
        for crop in batch.x0:  # where each crop starts in its recording (random, not fixed)
            for latents in cache.latents:
                for start in range(latents.shape[-1] - cache.crop + 1):
                    if torch.equal(latents[:, start : start + cache.crop], crop):
                        starts.add(start)
    assert len(starts) > 20 and 0.06 < dropped / 800 < 0.14  # measured 10 % dropped
    long_crops = encode_once(pipe, data, pairs, tmp_path / "long", 5.0)
    short = long_crops.batch(2, torch.Generator().manual_seed(1), dropout=0.0)
    real = long_crops.latents[0].shape[-1]  # 3 s of latent in a 5 s crop: the rest is masked
    assert short.mask[0, 0].sum() == real and short.seconds[0] == pytest.approx(real * 256 / 8000)
    sigma = lora.noise_levels(20000, torch.Generator().manual_seed(2), pipe.scheduler.config)
    t = torch.atan(sigma / pipe.scheduler.config.sigma_data) * 2 / math.pi
    assert abs(float((t >= 0.9).float().mean()) - 0.1) < 0.02  # log-uniform σ put 59 % there


def test_training_lowers_the_loss_and_resumes_batch_exactly(
    base: Path, data: Path, tmp_path: Path
) -> None:
    from rig.adapters import AdapterMix
    from rig.train import lora

    settings = LoraSettings(
        steps=12, batch=4, learning_rate=3e-2, rank=4, alpha=4, seconds=1.0, save_every=100
    )
    whole = train_lora(data, base, tmp_path / "whole", settings)
    train_lora(data, base, tmp_path / "split", dataclasses.replace(settings, steps=5))
    split = train_lora(data, base, tmp_path / "split", settings)  # resumed at step 5
    tensors = [safetensors.torch.load_file(str(f / "adapter.safetensors")) for f in (whole, split)]
    assert tensors[0].keys() == tensors[1].keys()
    assert all(torch.equal(tensors[0][k], tensors[1][k]) for k in tensors[0])

    def held_out_loss(adapter: Path | None) -> float:
        pipe = lora._load_base(base, torch.float32)
        if adapter is not None:
            AdapterMix(pipe.transformer, [(adapter, 1.0)])
        cache = encode_once(pipe, data, read_captions(data), tmp_path / "cache", 1.0)
        rng = torch.Generator().manual_seed(99)
        with torch.no_grad():
            return float(sum(lora.lora_loss(pipe, cache.batch(8, rng, 0.0), rng) for _ in range(4)))

    before, after = held_out_loss(None), held_out_loss(whole)
    assert after < 0.9 * before, (before, after)


def test_two_steps_resume_and_the_adapter_changes_the_output(
    config: Config, base: Path, data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    settings = LoraSettings(
        steps=2, batch=2, learning_rate=5e-2, rank=4, alpha=4, seconds=2.0, save_every=1
    )
    adapter = train_lora(data, base, run, settings)
    assert sorted(p.name for p in adapter.iterdir()) == ["adapter.json", "adapter.safetensors"]
    log = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2] and all(np.isfinite(e["loss"]) for e in log)
    assert Image.open(run / "loss.png").size == (640, 240)
    train_lora(data, base, run, dataclasses.replace(settings, steps=3))  # resumes at step 2
    log = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3]

    request = Request(parse_prompt("dusty drums, Tempo: 120, Bars: 1"), "sao", seed=3)
    quiet = lambda *a, **k: None  # noqa: E731

    def engine(loras: tuple[str, ...]) -> DiffusionEngine:
        settings = DiffusionConfig(sao_model=str(base), sao_steps=2, loras=loras)
        return DiffusionEngine(dataclasses.replace(config, diffusion=settings), "sao")

    plain = engine(()).generate(request, quiet).audio
    merged = engine((f"{adapter}:1.0",))
    full = merged.generate(request, quiet)
    assert not np.allclose(full.audio, plain)
    assert full.replay.settings["loras"] == [f"{adapter}:1"]
    assert np.allclose(engine((f"{adapter}:0",)).generate(request, quiet).audio, plain, atol=1e-6)
    # the strength is a live control: no reload, and 0 gives back the base model's take
    control = adapter_control(adapter)
    with_lora = dataclasses.replace(config, diffusion=DiffusionConfig(loras=(f"{adapter}:1.0",)))
    assert control == "lora_adapter" and control in {p.name for p in SAO.params(with_lora)}
    off = merged.generate(dataclasses.replace(request, controls={control: 0.0}), quiet)
    assert np.allclose(off.audio, plain, atol=1e-6) and off.replay.settings["loras"] == [
        f"{adapter}:0"
    ]
    again = merged.generate(Request.of(full.replay, 9), quiet)  # recorded strength 1 wins
    np.testing.assert_allclose(again.audio, full.audio, atol=1e-6)
    with pytest.raises(EngineError, match=r"made with the LoRA .* which is not loaded"):
        engine(()).generate(Request.of(full.replay, 10), quiet)
    with pytest.raises(EngineError, match="cannot be read"):
        engine((str(tmp_path / "missing"),)).generate(request, quiet)


def test_only_stable_audio_open_bases(tmp_path: Path, data: Path) -> None:
    from rig.testing.tiny_pipelines import write_tiny

    sa3 = write_tiny("sa3", tmp_path / "sa3")
    with pytest.raises(LoraError, match="StableAudio3Pipeline bases are not supported yet"):
        train_lora(data, sa3, tmp_path / "run", LoraSettings(steps=1))


def test_cli_names_bad_input(tmp_path: Path, base: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rig",
            "train",
            "lora",
            str(tmp_path / "x.csv"),
            "--base",
            str(base),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "x.csv: cannot be read" in out.stderr
    assert "Traceback" not in out.stderr


def test_bench_figures(config: Config) -> None:
    from rig.bench import bench_lora

    figures = bench_lora(config, repeats=1)
    for name in ("tiny_step_s", "full_block_10s_s", "full_projected_step_47s_s"):
        assert figures[f"lora_{name}"] > 0, name  # printed, never judged here
