"""LoRA fine-tuning on a tiny Stable Audio Open pipeline: a 2-step run, resume, and loading the
adapter back with a strength."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from rig.adapters import adapter_control
from rig.config import Config, DiffusionConfig
from rig.engines.base import EngineError, Request
from rig.engines.diffusion import DiffusionEngine
from rig.engines.diffusion_kind import SAO
from rig.prompt import parse_prompt
from rig.testing.tiny_pipelines import write_tiny
from rig.train.lora import LoraError, LoraSettings, fill_caption, read_captions, train_lora


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
