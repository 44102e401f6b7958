"""The diffusion engines on a tiny random pipeline saved with save_pretrained (no download)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from rig.config import Config, DiffusionConfig
from rig.engines.base import Cancelled, EngineError, Request
from rig.engines.diffusion import DiffusionEngine, prompt_text
from rig.loops import loop_length
from rig.prompt import parse_prompt
from rig.session import produce_take
from rig.takes import TakeStore
from rig.testing.tiny_pipelines import write_tiny


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny("sao", tmp_path_factory.mktemp("sao") / "tiny-sao")


@pytest.fixture(scope="module")
def tiny_sa3_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny("sa3", tmp_path_factory.mktemp("sa3") / "tiny-sa3")


def engine_for(
    config: Config, folder: Path, kind: str = "sao", **settings: object
) -> DiffusionEngine:
    diffusion = DiffusionConfig(**{f"{kind}_model": str(folder)}, steps=3, **settings)  # type: ignore[arg-type]
    return DiffusionEngine(dataclasses.replace(config, diffusion=diffusion), kind)


def ask(text: str, seed: int = 1) -> Request:
    return Request(parse_prompt(text), "sao", seed=seed)


def test_take_of_exact_length_with_progress(config: Config, tiny_folder: Path) -> None:
    engine = engine_for(config, tiny_folder)
    steps: list[tuple[int, int]] = []
    request = ask("dusty drums, Tempo: 100, Bars: 1, Key: A minor, Genre: Techno")
    take = produce_take(
        request,
        engine,
        config,
        TakeStore(config.paths.takes),
        lambda step, total, note="": steps.append((step, total)),
    )
    data, rate = soundfile.read(take.wav, always_2d=True)
    assert (rate, data.shape) == (44100, (loop_length(100, 1, 4, 44100), 2))
    assert steps == [(1, 3), (2, 3), (3, 3)]
    info = take.engine_info
    assert info["text"] == "dusty drums, Tempo: 100, Key: A minor, Genre: Techno"  # no length
    assert info["pipeline"] == "StableAudioPipeline" and info["seconds"] == 2.9


def test_seed_decides_the_audio(config: Config, tiny_folder: Path) -> None:
    engine = engine_for(config, tiny_folder)
    quiet = lambda *a, **k: None  # noqa: E731
    prompt = "airy pad, Tempo: 120, Bars: 1"
    first = engine.generate(ask(prompt, 3), quiet).audio
    again = engine_for(config, tiny_folder).generate(ask(prompt, 3), quiet).audio
    other = engine.generate(ask(prompt, 4), quiet).audio
    assert first.shape == (2, round((2.0 + 0.5) * 8000)) and np.array_equal(first, again)
    assert not np.allclose(first, other)


def test_four_variations_spread_to_stereo(config: Config, tiny_folder: Path) -> None:
    quiet = lambda *a, **k: None  # noqa: E731
    wide = engine_for(config, tiny_folder, variations=4, spread=1.0)
    mixed = wide.generate(ask("dark bass, Tempo: 120, Bars: 1"), quiet).audio
    assert mixed.shape[0] == 2 and not np.allclose(mixed[0], mixed[1])
    mono = engine_for(config, tiny_folder, variations=4, spread=0.0)
    first = mono.generate(ask("dark bass, Tempo: 120, Bars: 1"), quiet).audio
    assert first.shape == mixed.shape


def test_cancel_stops_between_steps(config: Config, tiny_folder: Path) -> None:
    engine = engine_for(config, tiny_folder)
    seen: list[int] = []

    def progress(step: int, total: int, note: str = "") -> None:
        seen.append(step)
        if step == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        engine.generate(ask("dusty drums, Tempo: 120, Bars: 1"), progress)
    assert seen == [1, 2]


def test_scheduler_by_name(config: Config, tiny_folder: Path) -> None:
    quiet = lambda *a, **k: None  # noqa: E731
    engine = engine_for(config, tiny_folder, scheduler="EDMDPMSolverMultistepScheduler")
    out = engine.generate(ask("dusty drums, Tempo: 120, Bars: 1"), quiet)
    assert type(engine.pipeline(None).scheduler).__name__ == "EDMDPMSolverMultistepScheduler"
    assert out.audio.shape[0] == 2 and np.isfinite(out.audio).all()
    with pytest.raises(EngineError, match="'Nope' is not a diffusers scheduler"):
        engine_for(config, tiny_folder, scheduler="Nope").pipeline(None)


def test_clear_errors(config: Config, tiny_folder: Path, tmp_path: Path) -> None:
    quiet = lambda *a, **k: None  # noqa: E731
    with pytest.raises(EngineError, match=r"longer than Stable Audio Open's 8\.2 s"):
        engine_for(config, tiny_folder).generate(ask("pad, Tempo: 60, Bars: 4"), quiet)
    missing = engine_for(config, tmp_path / "nowhere")
    with pytest.raises(EngineError, match=r"nowhere does not exist\. Put the pipeline folder"):
        missing.generate(ask("pad, Tempo: 120, Bars: 1"), quiet)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineError, match="is not a diffusers pipeline folder"):
        engine_for(config, tmp_path / "empty").generate(ask("pad, Tempo: 120, Bars: 1"), quiet)
    with pytest.raises(EngineError, match=r"diffusion\.template"):
        prompt_text(parse_prompt("pad"), "{nope}")


def test_cli_on_a_saved_pipeline_and_offline_hub_id(tiny_folder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "RIG_DIFFUSION_STEPS": "2", "RIG_TAKES": str(tmp_path / "takes")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rig",
            "generate",
            "dusty drums, Tempo: 120, Bars: 1",
            "--engine",
            "sao",
            "--model",
            str(tiny_folder),
            "--no-send",
            "--seed",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    wav = Path(out.stdout.strip().splitlines()[-1])
    assert soundfile.info(str(wav)).frames == loop_length(120, 1, 4, 44100)
    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run(
        [sys.executable, "-m", "rig", "generate", "pad", "--engine", "sao", "--no-send"],
        capture_output=True,
        text=True,
        env=offline,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "stabilityai/stable-audio-open-1.0 could not be loaded" in out.stderr
    assert "must already be in the cache" in out.stderr


def test_stable_audio_3_makes_the_asked_duration(config: Config, tiny_sa3_folder: Path) -> None:
    engine = engine_for(config, tiny_sa3_folder, "sa3")
    steps: list[tuple[int, int]] = []
    out = engine.generate(
        ask("dusty drums, Tempo: 120, Bars: 1"),
        lambda step, total, note="": steps.append((step, total)),
    )
    assert out.audio.shape == (2, round(2.5 * 8000)) and out.sample_rate == 8000
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert out.metadata["pipeline"] == "StableAudio3Pipeline"
    take = produce_take(
        ask("airy pad, Tempo: 90, Bars: 2"),
        engine,
        config,
        TakeStore(config.paths.takes),
        lambda *a, **k: None,
    )
    assert soundfile.info(str(take.wav)).frames == loop_length(90, 2, 4, 44100)

    def cancel(step: int, total: int, note: str = "") -> None:
        raise Cancelled()

    with pytest.raises(Cancelled):
        engine.generate(ask("dark bass, Tempo: 120, Bars: 1"), cancel)


def test_bench_figures(config: Config) -> None:
    from rig.bench import bench_diffusion

    figures = bench_diffusion(config, repeats=1)
    for kind in ("sao", "sa3"):
        for name in (
            "seconds_per_take",
            "text_encoding_ms",
            "denoise_step_ms",
            "vae_decode_ms",
            "loop_tools_ms",
        ):
            assert figures[f"{kind}_{name}"] > 0, (kind, name)
        assert 0 <= figures[f"{kind}_overhead_pct"] < 100  # printed, never judged here
