"""Loop tools: invariants on synthetic signals (length, seam, peak, loudness, guards)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import step_p95, wrap_jump

from rig.config import AudioConfig
from rig.loops import (
    LoopError,
    check_audio,
    fold_seam,
    limit,
    loop_length,
    loudness,
    make_loop,
    trim_silence,
)
from rig.testing.signals import drum_signal

RATE = 44100
SETTINGS = AudioConfig()


def unlooped(seconds: float, rate: int = RATE, seed: int = 1) -> np.ndarray:
    """A tone + hits signal whose own wrap jumps (the tone is not whole periods long)."""
    audio = drum_signal(seconds, rate, seed)
    t = np.arange(audio.shape[1]) / rate
    audio += (0.3 * np.sin(2 * np.pi * 97.3 * t + 0.7)).astype(np.float32)
    return audio


@pytest.mark.parametrize("bpm", [60, 73, 90, 107, 120, 128, 145, 174, 200])
@pytest.mark.parametrize("bars", [1, 2, 4, 8, 16])
def test_exact_length_for_every_tempo_and_bar_count(bpm: int, bars: int) -> None:
    length = loop_length(bpm, bars, 4, RATE)
    assert length == round(bars * 4 * 60 / bpm * RATE)
    source = unlooped(length / RATE + 0.05)  # made at the asked tempo, with a tail
    loop = make_loop(source, RATE, bpm, bars, 4, SETTINGS, source_bpm=bpm, trim=False)
    assert loop.audio.shape == (2, length)
    assert loop.audio.dtype == np.float32
    assert np.isfinite(loop.audio).all()


@pytest.mark.parametrize(
    ("bpm", "bars", "beats", "source_bpm", "seconds", "rate"),
    [
        (107, 2, 4, 120, 4.05, 22050),  # tempo change: stretched, resampled
        (120, 2, 4, None, 3.1, 44100),  # unknown tempo: the file is the bars
        (95, 4, 3, None, 1.0, 48000),  # too short: repeated, then stretched; 3/4 time
        (140, 1, 4, 140, 0.9, 44100),  # shorter than the loop: repeated
        (120, 2, 4, 120, 4.0, 24000),  # exactly the loop, no tail: stretched by the seam
    ],
)
def test_exact_length_and_seamless_wrap_on_every_path(
    bpm: float, bars: int, beats: int, source_bpm: float | None, seconds: float, rate: int
) -> None:
    source = unlooped(seconds, rate)
    loop = make_loop(source, rate, bpm, bars, beats, SETTINGS, source_bpm=source_bpm)
    assert loop.audio.shape == (2, loop_length(bpm, bars, beats, RATE))
    assert (wrap_jump(loop.audio) <= step_p95(loop.audio)).all()


def test_a_source_whose_ends_differ_clicks_without_the_seam_and_not_with_it() -> None:
    source = unlooped(4.1)
    source += np.linspace(-0.5, 0.5, source.shape[1], dtype=np.float32)  # end ≠ start
    raw = make_loop(source, RATE, 120, 2, 4, AudioConfig(seam_ms=0), source_bpm=None)
    loop = make_loop(source, RATE, 120, 2, 4, SETTINGS, source_bpm=None)
    assert (wrap_jump(raw.audio) > 3 * step_p95(raw.audio)).all()
    assert (wrap_jump(loop.audio) <= step_p95(loop.audio)).all()


def test_fold_seam_continues_the_source_across_the_wrap() -> None:
    source = unlooped(1.0)
    folded = fold_seam(source, 40000)
    assert folded.shape == (2, 40000)
    np.testing.assert_array_equal(folded[:, 0], source[:, 40000])  # the tail starts the wrap
    np.testing.assert_array_equal(folded[:, -1], source[:, 39999])
    np.testing.assert_array_equal(folded[:, 5000:], source[:, 5000:40000])  # body untouched


def test_loudness_normalised_and_peaks_limited() -> None:
    hot = drum_signal(4.1, RATE) * 8.0  # very peaky: the limiter must work
    loop = make_loop(hot, RATE, 120, 2, 4, SETTINGS, source_bpm=120, trim=False)
    ceiling = 10 ** (SETTINGS.peak_dbfs / 20)
    assert np.max(np.abs(loop.audio)) <= ceiling + 1e-6
    assert loop.peak_dbfs <= SETTINGS.peak_dbfs + 1e-4
    assert loop.lufs == pytest.approx(loudness(loop.audio, RATE), abs=1e-6)
    assert -17.0 < loop.lufs <= SETTINGS.target_lufs + 0.01

    pad = np.tile(np.sin(2 * np.pi * 220 * np.arange(RATE * 4.1) / RATE), (2, 1)) * 0.01
    quiet = make_loop(pad.astype(np.float32), RATE, 120, 2, 4, SETTINGS, 120, trim=False)
    assert quiet.lufs == pytest.approx(SETTINGS.target_lufs, abs=0.05)
    assert loudness(quiet.audio, RATE) == pytest.approx(SETTINGS.target_lufs, abs=0.05)


def test_a_loop_off_zero_comes_out_centred_with_its_wrap_unchanged() -> None:
    """DC removal: each channel's offset (+0.3 and -0.2 here) is gone, the seam is not moved."""
    audio = drum_signal(4.1, RATE) + np.array([[0.3], [-0.2]], dtype=np.float32)
    loop = make_loop(audio, RATE, 120, 2, 4, SETTINGS, source_bpm=120, trim=False)
    rms = np.sqrt(np.mean(loop.audio**2, axis=1))
    assert (np.abs(loop.audio.mean(axis=1)) < 0.01 * rms).all()
    kept = make_loop(drum_signal(4.1, RATE), RATE, 120, 2, 4, SETTINGS, source_bpm=120, trim=False)
    assert wrap_jump(loop.audio) == pytest.approx(wrap_jump(kept.audio), rel=0.05, abs=1e-4)
    assert (wrap_jump(loop.audio) <= step_p95(loop.audio)).all()


def test_limiter_keeps_the_wrap_continuous() -> None:
    audio = np.tile(np.linspace(-3.0, 3.0, 2000, dtype=np.float32), (2, 1))
    audio[:, :10] = 2.9  # the peaks straddle the wrap
    audio[:, -10:] = 2.9
    limited = limit(audio, RATE, -1.0)
    assert np.max(np.abs(limited)) <= 10 ** (-1 / 20) + 1e-6
    assert wrap_jump(limited).max() < 0.05


def test_silence_trimmed_with_fades() -> None:
    signal = drum_signal(2.0, RATE)
    padded = np.concatenate([np.zeros((2, RATE)), signal, np.zeros((2, RATE))], axis=1)
    trimmed = trim_silence(padded.astype(np.float32), RATE, top_db=40, fade_ms=5)
    assert abs(trimmed.shape[1] - signal.shape[1]) < 0.1 * RATE
    assert trimmed[0, 0] == 0.0  # faded in from the cut
    loop = make_loop(padded.astype(np.float32), RATE, 120, 1, 4, SETTINGS)
    window = RATE // 20
    head_rms = np.sqrt(np.mean(loop.audio[:, window : 2 * window] ** 2))
    assert head_rms > 0.01  # the loop starts with sound, not the second of silence


def test_mono_becomes_two_identical_channels() -> None:
    mono = drum_signal(4.1, RATE)[0]
    loop = make_loop(mono, RATE, 120, 2, 4, SETTINGS, source_bpm=120, trim=False)
    assert loop.audio.shape[0] == 2
    np.testing.assert_array_equal(loop.audio[0], loop.audio[1])


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.full((2, RATE), np.nan, dtype=np.float32), "NaN or infinite"),
        (np.array([[0.1] * RATE + [np.inf]], dtype=np.float32), "1 NaN or infinite"),
        (np.zeros((2, RATE), dtype=np.float32), "silent"),
        (np.ones((2, 100), dtype=np.float32) * 0.1, "too short"),
        (np.ones((6, RATE), dtype=np.float32) * 0.1, "1, 2 or 4 channels"),
        (np.ones((3, RATE), dtype=np.float32) * 0.1, "1, 2 or 4 channels"),
        (np.ones((2, RATE), dtype=np.int16), "floating-point"),
    ],
)
def test_bad_audio_rejected(audio: np.ndarray, message: str) -> None:
    with pytest.raises(LoopError, match=message):
        make_loop(audio, RATE, 120, 2, 4, SETTINGS)


def test_impossible_stretch_rejected() -> None:
    with pytest.raises(LoopError, match="time-stretch"):
        make_loop(drum_signal(4.0, RATE), RATE, 200, 16, 4, SETTINGS, source_bpm=40)


def test_check_audio_returns_stereo_float32() -> None:
    out = check_audio(np.ones(RATE, dtype=np.float64) * 0.5, RATE)
    assert out.shape == (2, RATE)
    assert out.dtype == np.float32
