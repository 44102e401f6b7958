"""Quad takes (music.channels = 4): the loop tools on every channel, the engines' four-speaker
output, and a quad take end to end through the session to the device."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import step_p95, wrap_jump
from perf_fixtures import Rig, running_session
from tiny_models import write_tiny_model

from rig.config import AudioConfig, Config, MusicConfig, OscConfig, SessionConfig
from rig.engines.base import ENGINES, Recipe
from rig.link import Link
from rig.loops import LoopError, check_audio, loop_length, loudness, make_loop
from rig.mix import quad_gains, spatial_mix
from rig.performance import Performance
from rig.prompt import parse_prompt
from rig.takes import TakeStore
from rig.testing.signals import drum_signal
from rig.testing.standin import StandInDevice

RATE = 44100
SETTINGS = AudioConfig()


def quad_signal(seconds: float = 5.0) -> np.ndarray:
    """Four different channels: the drum signal's pair in front, shifted and quieter behind."""
    a = drum_signal(seconds, RATE)
    return np.stack([a[0], a[1], 0.5 * np.roll(a[0], 7001), 0.3 * np.roll(a[1], 13003)])


@pytest.mark.parametrize(("bpm", "source"), [(107.0, 120.0), (120.0, None), (140.0, 120.0)])
def test_a_quad_loop_is_exact_and_seamless_on_every_channel(bpm, source) -> None:
    loop = make_loop(quad_signal(), RATE, bpm, 2, 4, SETTINGS, source_bpm=source)
    assert loop.audio.shape == (4, loop_length(bpm, 2, 4, RATE))
    assert np.all(wrap_jump(loop.audio) <= step_p95(loop.audio) * 1.5)  # each channel
    assert loop.peak_dbfs <= SETTINGS.peak_dbfs + 1e-3
    assert loudness(loop.audio, RATE) == pytest.approx(SETTINGS.target_lufs, abs=0.6)


def test_quad_loudness_counts_the_rear_pair_as_surround() -> None:
    stereo = drum_signal(4.0, RATE)
    silent = np.zeros_like(stereo)
    front_only = np.concatenate([stereo, silent])
    rear_only = np.concatenate([silent, stereo])
    assert loudness(front_only, RATE) == pytest.approx(loudness(stereo, RATE), abs=1e-6)
    assert loudness(rear_only, RATE) - loudness(stereo, RATE) == pytest.approx(1.49, abs=0.02)


def test_the_limiter_is_linked_over_all_four_channels() -> None:
    loud = quad_signal(4.0)
    loud[2] *= 6.0  # one hot rear channel
    loop = make_loop(loud, RATE, 120.0, 2, 4, dataclasses.replace(SETTINGS, target_lufs=-6.0),
                     source_bpm=120.0, trim=False)  # fmt: skip
    unlimited = make_loop(loud, RATE, 120.0, 2, 4, dataclasses.replace(
        SETTINGS, target_lufs=-6.0, peak_dbfs=0.0), source_bpm=120.0, trim=False)  # fmt: skip
    active = np.abs(unlimited.audio).max(axis=0) > 10 ** (SETTINGS.peak_dbfs / 20)
    assert active.any()
    ratios = loop.audio[:, active] / np.where(unlimited.audio[:, active] == 0, 1,
                                              unlimited.audio[:, active])  # fmt: skip
    big = np.abs(unlimited.audio[:, active]) > 1e-3
    gains = np.where(big, ratios, np.nan)
    spread = np.nanmax(gains, axis=0) - np.nanmin(gains, axis=0)
    assert np.nanmax(spread) < 0.02  # one gain for every channel at each sample


def test_stereo_and_quad_convert_as_documented() -> None:
    stereo = drum_signal(2.0, RATE)
    quad = check_audio(stereo, RATE, channels=4)
    np.testing.assert_array_equal(quad[:2], quad[2:])
    down = check_audio(quad_signal(2.0), RATE, channels=2)
    np.testing.assert_allclose(down, (quad_signal(2.0)[:2] + quad_signal(2.0)[2:]) / np.sqrt(2),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    with pytest.raises(LoopError, match="2 or 4 channels, not 3"):
        check_audio(stereo, RATE, channels=3)


def test_quad_gains_keep_each_sources_power_and_place_it() -> None:
    for spread in (0.0, 0.4, 1.0):
        gains = quad_gains(4, spread)
        np.testing.assert_allclose((gains**2).sum(axis=0), 1.0)
    np.testing.assert_allclose(quad_gains(4, 1.0), np.eye(4))
    np.testing.assert_allclose(quad_gains(4, 0.0), np.full((4, 4), 0.5))
    sources = np.random.default_rng(0).standard_normal((4, 1000)).astype(np.float32)
    assert spatial_mix(sources, 1.0, 4).shape == (4, 1000)
    np.testing.assert_allclose(spatial_mix(sources, 1.0, 4), sources, atol=1e-6)


@pytest.fixture
def quad_rig(config: Config) -> Iterator[Rig]:
    """The perf_rig set-up with music.channels = 4 (the worker reads it at start)."""
    config = dataclasses.replace(config, music=MusicConfig(channels=4))
    write_tiny_model(config.paths.models[0] / "drums", name="drums")
    engines = {"gan": ENGINES["gan"]}
    with running_session(config, engines, SessionConfig(timeout_s=60.0, warm=False)) as running:
        config, session, link, device = running
        yield Rig(config, session, link, device, Performance(config, session, link))


def test_a_quad_take_end_to_end_through_session_and_device(quad_rig: Rig) -> None:
    rig = quad_rig
    rig.perf.update(engine="gan", text="dusty drums, Tempo: 100, Bars: 2", slot=2)
    job = rig.session.wait(rig.perf.generate().request.id, timeout=120)
    assert job.status == "done", job.error
    take = job.take
    audio, rate = soundfile.read(take.wav, dtype="float32", always_2d=True)
    assert audio.shape == (loop_length(100.0, 2, 4, RATE), 4) and rate == RATE
    loop = audio.T
    assert np.all(wrap_jump(loop) <= step_p95(loop) * 1.5)
    assert not np.allclose(loop[0], loop[2])  # the rear pair is its own, not a copy
    assert take.loop.channels == 4 and take.recipe.settings["channels"] == 4
    (load,) = rig.device.wait_for("/rig/load")
    assert load[:2] == (2, str(take.wav))
    again = rig.session.wait(rig.perf.regenerate(take).request.id, timeout=120).take
    replayed, _ = soundfile.read(again.wav, dtype="float32", always_2d=True)
    np.testing.assert_allclose(replayed, audio, atol=1e-4)  # the replay is quad too


def test_quad_loads_reach_the_rear_pair_device_too(tmp_path: Path) -> None:
    store = TakeStore(tmp_path)
    recipe = Recipe(parse_prompt("dusty drums, Tempo: 120, Bars: 1"), "word", seed=1)
    quad = store.write(make_loop(quad_signal(), RATE, 120.0, 1, 4, SETTINGS), recipe)
    stereo = store.write(make_loop(drum_signal(3.0, RATE), RATE, 120.0, 1, 4, SETTINGS), recipe)
    with StandInDevice(rig_port=0) as front, StandInDevice(rig_port=0) as rear:
        osc = OscConfig(port=front.port, listen_port=0, rear_port=rear.port)
        with Link(osc, tmp_path) as link:
            front.rig_port = rear.rig_port = link.port
            link.send_take(1, quad)
            link.send_take(2, stereo)
            for device in (front, rear):
                loads = device.wait_for("/rig/load", count=2)
                assert loads[0][7:] == (4,) and len(loads[1]) == 7  # stereo: the old 7 args
            rear.send("/rig/hello", "2", 8, rear.port)  # the rear device reloaded
            again = rear.wait_for("/rig/load", count=4)[2:]
            assert sorted((a[0], len(a)) for a in again) == [(1, 8), (2, 7)]
