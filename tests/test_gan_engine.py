"""The GAN engine: seeds, morph, directions, stereo spread, prompt mapping, replay, errors."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import TINY_MELGAN, write_tiny_model

from rig.compute import DeviceError
from rig.config import Config
from rig.engines.base import EngineError, Request
from rig.engines.gan import GanEngine, rendered_tempo
from rig.engines.gan_prompt import word_amounts, words
from rig.loops import make_loop
from rig.mix import pan_gains, stereo_mix
from rig.nn.mel import MelFrontEnd, MelSpec
from rig.nn.vocoder import build_vocoder, vocoder_config
from rig.params import Param, ParamError, check_controls
from rig.prompt import parse_prompt
from rig.synthesis import (
    fold_tail,
    repeat_to,
    retime,
    timing_positions,
    vocode_loops,
    wrap_frames,
)


def quiet(step: int, total: int, note: str = "") -> None:
    pass


@pytest.fixture
def gan_config(config: Config) -> Config:
    root = config.paths.models[0]
    write_tiny_model(root / "drums", name="drums", tags=("drums", "techno", "house"))
    write_tiny_model(
        root / "pads", name="pads", tags=("pads", "ambient"), vocoder=TINY_MELGAN, seed=1
    )
    return config


@pytest.fixture
def engine(gan_config: Config) -> GanEngine:
    return GanEngine(gan_config)


def ask(text: str, seed: int = 1, **kwargs) -> Request:
    return Request(parse_prompt(text), "gan", seed=seed, **kwargs)


def test_output_is_stereo_bars_at_the_model_tempo_plus_tail(engine: GanEngine) -> None:
    out = engine.generate(ask("techno, Bars: 4"), quiet)
    assert out.sample_rate == 8000 and out.source_bpm == 120.0 and out.bar_aligned
    assert out.audio.shape == (2, 4 * 4 * 4000 + 800)  # 4 bars of 4 beats at 120 BPM + 0.1 s
    assert out.audio.dtype == np.float32 and np.isfinite(out.audio).all()
    assert out.spectrogram is not None and out.spectrogram.shape == (20, 256)
    loop = out.audio[:, :32000]  # the model's 2-bar loop repeats exactly
    assert np.array_equal(out.audio[:, 32000:64000], loop)
    assert np.array_equal(out.audio[:, 64000:], loop[:, : out.audio.shape[1] - 64000])


def test_same_seed_same_audio_in_a_fresh_engine(gan_config: Config) -> None:
    first = GanEngine(gan_config).generate(ask("techno", seed=7), quiet)
    again = GanEngine(gan_config).generate(ask("techno", seed=7), quiet)
    other = GanEngine(gan_config).generate(ask("techno", seed=8), quiet)
    assert np.array_equal(first.audio, again.audio)
    assert first.metadata["w"] == again.metadata["w"]
    assert not np.allclose(first.audio, other.audio)


def test_morph_moves_w_monotonically_toward_its_target(engine: GanEngine) -> None:
    engine.generate(ask("techno", seed=1), quiet)  # the first generation jumps
    target = None
    distances = []
    for _ in range(5):
        out = engine.generate(ask("techno", seed=2, controls={"morph": 0.3}), quiet)
        target = np.array(out.metadata["target"])
        distances.append(np.linalg.norm(np.array(out.metadata["w"]) - target))
    assert all(b < a for a, b in itertools.pairwise(distances))
    assert distances[-1] == pytest.approx(distances[0] * 0.7**4, rel=1e-4)
    out = engine.generate(ask("techno", seed=2, controls={"morph": 1.0}), quiet)
    assert np.allclose(out.metadata["w"], target)
    still = engine.generate(ask("techno", seed=3, controls={"morph": 0.0}), quiet)
    assert still.metadata["w"] == out.metadata["w"]


def test_a_take_regenerates_from_its_sidecar(engine: GanEngine) -> None:
    controls = {"morph": 0.5, "variation": 0.4, "spread": 0.3, "bass": 1.0}
    engine.generate(ask("techno", seed=11), quiet)
    made = engine.generate(ask("very complex techno", seed=12, controls=controls), quiet)
    engine.generate(ask("techno", seed=13), quiet)  # the latent moves on
    info = made.metadata
    replay = ask(
        "very complex techno",
        seed=info["seed"],
        controls={**controls, "morph": 1.0},
        target=tuple(info["w"]),
    )
    again = engine.generate(replay, quiet)
    assert np.array_equal(again.audio, made.audio)
    assert again.metadata["directions"] == info["directions"] == {"complexity": 3.0, "bass": 1.0}


def test_spread_zero_is_mono_and_pan_law_keeps_energy(engine: GanEngine) -> None:
    out = engine.generate(ask("techno", controls={"spread": 0.0, "variation": 0.5}), quiet)
    assert np.array_equal(out.audio[0], out.audio[1])
    wide = engine.generate(ask("techno", controls={"spread": 1.0, "variation": 0.5}), quiet)
    assert not np.allclose(wide.audio[0], wide.audio[1])
    for spread in (0.0, 0.4, 1.0):
        left, right = pan_gains(4, spread)
        assert np.allclose(left**2 + right**2, 0.5)
    left, right = pan_gains(4, 1.0)
    assert left[0] > right[0] and np.allclose(left, right[::-1])
    sources = np.random.default_rng(0).standard_normal((4, 48000))
    mixed = stereo_mix(sources, 0.8)
    assert np.sum(mixed**2) == pytest.approx(np.sum(sources**2) / 2, rel=0.02)


def test_variation_zero_makes_four_equal_latents(engine: GanEngine) -> None:
    flat = engine.generate(ask("techno", controls={"variation": 0.0, "spread": 1.0}), quiet)
    assert np.allclose(flat.audio[0], flat.audio[1], atol=1e-6)


def test_prompt_picks_the_model_by_tags(engine: GanEngine) -> None:
    assert engine.generate(ask("slow ambient swell"), quiet).metadata["model"] == "pads"
    assert engine.generate(ask("kick, Genre: House"), quiet).metadata["model"] == "drums"
    # nothing matches: stay with the model used last
    assert engine.generate(ask("something else"), quiet).metadata["model"] == "drums"
    named = engine.generate(ask("techno", model="pads"), quiet)
    assert named.metadata["model"] == "pads"


def test_words_become_direction_amounts(engine: GanEngine) -> None:
    dirs = engine.models["drums"].directions  # complexity ±3, bass ±2, brightness ±3
    assert word_amounts(words("complex groove"), dirs) == {"complexity": 1.5}
    assert word_amounts(words("very sparse, heavy bass"), dirs) == {"complexity": -3.0, "bass": 2.0}
    assert word_amounts(words("a bass loop"), dirs) == {}  # "bass" alone names an instrument
    assert word_amounts(words("less bright, slightly dark"), dirs) == {"brightness": -2.25}
    assert word_amounts(words("no bass"), dirs) == {"bass": -2.0}
    out = engine.generate(ask("dark techno", controls={"brightness": -2.0}), quiet)
    assert out.metadata["directions"] == {"brightness": -3.0}  # clamped to the range


def test_schema_and_bad_controls(engine: GanEngine) -> None:
    names = [p.name for p in engine.params("drums")]
    assert names == [
        "morph",
        "variation",
        "spread",
        "truncation",
        "complexity",
        "bass",
        "brightness",
    ]
    with pytest.raises(EngineError, match=r"unknown control\(s\) wobble; known: bass"):
        engine.generate(ask("techno", controls={"wobble": 1.0}), quiet)
    with pytest.raises(EngineError, match=r"spread = 2.0 is outside 0 to 1"):
        engine.generate(ask("techno", controls={"spread": 2.0}), quiet)
    with pytest.raises(ParamError, match=r"morph must be a number"):
        check_controls([Param("morph", 0, 1, 0.5)], {"morph": "lots"})
    param = Param("variation", 0.0, 1.0, 0.1, "square")
    assert param.from_unit(0.5) == 0.25 and param.to_unit(0.25) == 0.5


def test_a_direction_of_another_model_is_accepted_and_not_applied(
    gan_config: Config, tmp_path: Path
) -> None:
    from tiny_models import tiny_model

    from rig.loop_model import save_loop_model

    other = tiny_model(name="strings", tags=("strings",), seed=5)
    other.directions = {"warmth": other.directions.pop("bass")}
    save_loop_model(other, gan_config.paths.models[0] / "strings")
    engine = GanEngine(gan_config)
    assert "warmth" in [p.name for p in engine.params()]
    out = engine.generate(ask("techno", controls={"warmth": 2.0, "bass": 1.0}), quiet)
    assert out.metadata["model"] == "drums" and out.metadata["directions"] == {"bass": 1.0}
    with pytest.raises(EngineError, match=r"warmth = 9\.0 is outside"):
        engine.generate(ask("techno", controls={"warmth": 9.0}), quiet)


def test_models_by_name_or_folder(engine: GanEngine, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"no gan model named 'strings'; loaded: drums, pads"):
        engine.generate(ask("x", model="strings"), quiet)
    folder = write_tiny_model(tmp_path / "extra", name="extra", tags=("bass",), seed=3)
    out = engine.generate(ask("x", model=str(folder)), quiet)
    assert out.metadata["model"] == "extra" and "extra" in engine.models
    with pytest.raises(EngineError, match=r"latent \(target, from_w\) must be 16 finite numbers"):
        engine.generate(ask("x", model="extra", target=(1.0, 2.0)), quiet)


def test_no_models_and_broken_models(config: Config, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"found no loadable loop model in .*models"):
        GanEngine(config).generate(ask("techno"), quiet)
    root = config.paths.models[0]
    write_tiny_model(root / "good", name="good")
    broken = write_tiny_model(root / "broken", name="broken")
    (broken / "generator.safetensors").unlink()
    engine = GanEngine(config)
    assert list(engine.models) == ["good"]
    assert "generator.safetensors is missing" in engine.problems[0]
    cuda = dataclasses.replace(config, gan=dataclasses.replace(config.gan, device="cuda"))
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match=r"no CUDA GPU"):
            GanEngine(cuda)


def test_repeat_to() -> None:
    loop = np.arange(10, dtype=np.float32)[None]
    assert repeat_to(loop, 25)[0].tolist() == [*range(10), *range(10), *range(5)]
    assert repeat_to(loop, 4)[0].tolist() == [0, 1, 2, 3]


def test_session_to_take_and_device(gan_config: Config) -> None:
    """The real registry entry, in the spawned worker, to a WAV on disk and a /rig/load."""
    import soundfile
    from conftest import step_p95, wait_until, wrap_jump

    from rig.link import Link
    from rig.loops import loop_length
    from rig.session import Session
    from rig.testing.standin import StandInDevice

    device = StandInDevice(rig_port=gan_config.osc.listen_port)
    osc = dataclasses.replace(gan_config.osc, port=device.port)
    config = dataclasses.replace(gan_config, osc=osc)
    config.paths.takes.mkdir(parents=True)
    broken = write_tiny_model(config.paths.models[0] / "broken", name="broken")
    (broken / "vocoder.safetensors").write_bytes(b"")
    with device, Link(config.osc, config.paths.takes) as link:
        session = Session(config, link).start(preload=["gan"])
        try:
            wait_until(lambda: session.warnings, timeout=60)
            assert "broken/vocoder.safetensors is not a readable safetensors" in session.warnings[0]
            request = ask("ambient pad, Tempo: 100, Bars: 4", seed=4, slot=3)
            job = session.wait(session.submit(request).request.id, timeout=120)
            assert job.status == "done", job.error
            data, rate = soundfile.read(job.take.wav, always_2d=True)
            assert (rate, data.shape) == (44100, (loop_length(100, 4, 4, 44100), 2))
            assert (wrap_jump(data.T) <= step_p95(data.T)).all()  # the wrap is no click
            (args,) = device.wait_for("/rig/load")
            assert args[:6] == (3, str(job.take.wav), 100.0, 4, 16, job.take.id)
            info = job.take.engine_info
            assert info["model"] == "pads" and len(info["w"]) == 16 and info["seed"] == 4
            assert job.total == 3 and job.step == 3
            assert job.take.spectrogram.shape == (20, 256)  # the engine's own, for the UI
        finally:
            session.close()


@pytest.mark.parametrize("kind", ["istft", "melgan"])
def test_vocoded_loops_are_circular_at_the_default_sizes(kind: str) -> None:
    """Rolling the mel by k frames rolls the audio by k hops: the wrapped context covers the
    vocoder's receptive field, so the loop point is computed like any other point (no click)."""
    torch.manual_seed(0)
    vocoder = build_vocoder(vocoder_config({"type": kind})).eval()
    front = MelFrontEnd(MelSpec())
    mel = torch.randn(1, 80, 40) * 0.5 - 4.0
    with torch.no_grad():
        audio = vocode_loops(vocoder, front, mel)
        rolled = vocode_loops(vocoder, front, mel.roll(10, dims=-1))
    assert audio.shape == (1, 40 * 375)
    scale = float(audio.abs().max())
    assert scale > 0
    assert torch.allclose(rolled, audio.roll(10 * 375, dims=-1), atol=1e-4 * scale)
    assert torch.equal(
        wrap_frames(mel[..., :3], 4)[0, 0], mel[0, 0, [2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]]
    )


def test_a_loop_at_another_tempo_is_rendered_there_not_stretched(engine: GanEngine) -> None:
    """Tiny model: 2 bars of 4/4 at 120 BPM, 8 kHz. At 100 BPM the loop lasts 1.2x as long."""
    out = engine.generate(ask("techno, Tempo: 100, Bars: 2"), quiet)
    assert out.source_bpm == 100.0 and out.bar_aligned
    loop = round(32000 * 1.2)
    assert out.audio.shape == (2, loop + 800)
    assert np.array_equal(out.audio[:, loop:], out.audio[:, :800])  # the tail repeats the loop
    at_model_tempo = engine.generate(ask("techno, Bars: 2"), quiet)
    assert at_model_tempo.audio.shape == (2, 32000 + 800)


def test_a_faster_loop_is_rendered_at_the_models_tempo_for_rubber_band() -> None:
    """Speed-ups are stretched by the loop tools (measured sharper than a squeezed re-timing)."""
    assert rendered_tempo(100.0, 120.0) == 100.0 and rendered_tempo(None, 120.0) == 120.0
    assert rendered_tempo(150.0, 120.0) == 120.0


def test_a_faster_take_is_stretched_to_its_bars(engine: GanEngine, gan_config: Config) -> None:
    out = engine.generate(ask("techno, Tempo: 150, Bars: 2"), quiet)
    assert out.source_bpm == 120.0 and out.audio.shape == (2, 32000 + 800)
    loop = make_loop(out.audio, out.sample_rate, 150.0, 2, 4, gan_config.audio,
                     source_bpm=out.source_bpm, trim=False)  # fmt: skip
    assert loop.audio.shape[1] == round(gan_config.audio.sample_rate * 8 * 60 / 150)


def test_timing_positions_keep_onsets_on_the_new_grid() -> None:
    frames, steps = 64, 8  # 8 source frames per step
    identity = timing_positions(frames, steps, 1.0, -3, 70)
    assert torch.equal(identity, torch.remainder(torch.arange(-3, 67, dtype=torch.float64), 64))
    slow = timing_positions(frames, steps, 1.5, 0, 96)  # 12 output frames per step
    step_starts = slow[::12]
    assert torch.allclose(step_starts, torch.arange(0, 64, 8, dtype=torch.float64))
    assert torch.allclose(slow[1:2], torch.tensor([1.0], dtype=torch.float64))  # attack as is
    within = slow.reshape(8, 12)
    assert (within.diff(dim=1) > 0).all()  # time runs forward inside every step
    assert (within[:, -1] < torch.arange(8, 72, 8)).all()  # and never into the next one
    fast = timing_positions(frames, steps, 0.75, 0, 48)  # 6 output frames per step
    assert torch.allclose(fast[::6], torch.arange(0, 64, 8, dtype=torch.float64))


def test_retime_interpolates_log_mel_and_is_identity_at_stretch_one() -> None:
    mel = torch.randn(2, 5, 16)
    assert torch.equal(retime(mel, 1.0, 4, -3, 22), wrap_frames(mel, 3))
    half = retime(mel, 2.0, 16, 0, 32)  # 1 source frame per step → each held for 2 frames
    assert torch.allclose(half[..., ::2], mel)


def test_fold_tail_makes_the_loop_circular() -> None:
    audio = torch.arange(12, dtype=torch.float32)[None]  # a ramp: 8 loop samples + 4 beyond
    looped = fold_tail(audio, 8)
    assert looped.shape == (1, 8)
    assert looped[0, 0] == audio[0, 8]  # right after the loop's end comes what the render had
    assert torch.equal(looped[0, 4:], audio[0, 4:8])  # beyond the fade, untouched


class SineVocoder(torch.nn.Module):
    """A vocoder whose phase runs on regardless of the loop: a 437 Hz sine whose level follows
    the mel's mean (24 kHz, hop 375). A loop cut without care clicks where the phase jumps."""

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        level = mel.mean(dim=1, keepdim=True).exp()  # [B, 1, frames]
        level = torch.nn.functional.interpolate(level, scale_factor=375, mode="linear")
        n = torch.arange(level.shape[-1], dtype=torch.float32)
        return level * torch.sin(2 * torch.pi * 437 * n / 24000)


@pytest.mark.parametrize("stretch", [0.85, 1.25, 1.1])
def test_retimed_loops_have_exact_length_and_no_click(stretch: float) -> None:
    """The sample after the loop's last one is what the render had there: no phase jump."""
    torch.manual_seed(0)
    front = MelFrontEnd(MelSpec())
    mel = torch.randn(1, 80, 64) * 0.1 - 1.0
    audio = vocode_loops(SineVocoder(), front, mel, 0, stretch=stretch, steps=16)[0].numpy()
    assert audio.shape == (round(64 * stretch * 375),)
    largest_step = np.abs(np.diff(audio)).max()
    assert abs(audio[0] - audio[-1]) <= 1.2 * largest_step
