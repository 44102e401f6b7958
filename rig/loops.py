"""Loop tools: pure functions on float32 ``[channels, samples]`` audio.

The pipeline (:func:`make_loop`) is: check → (trim silence) → resample → fit to whole bars with a
tail → fold the tail into the head with an equal-power crossfade (click-free seam) → remove DC →
normalise loudness → limit peaks. Nothing here writes files; errors are :class:`LoopError` naming
the problem.

Sources: loudness is ITU-R BS.1770 through pyloudnorm; time-stretch is Rubber Band (R2, crisp
transients) through pedalboard (pitch kept); resampling is librosa (soxr); the limiter's gain
curve is built from scipy.ndimage min/mean filters in ``wrap`` mode so the loop's own wrap is
treated as continuous.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import pyloudnorm
import scipy.ndimage
import soundfile

from rig.config import AudioConfig

# A stretch closer to 1 than this is skipped: 0.1 % is 1.7 cents and 4 ms in a 4-s loop.
STRETCH_TOLERANCE = 1e-3
# Stretching further than this is refused: the result would not sound like the source.
MAX_STRETCH = 4.0
LIMITER_LOOKAHEAD_S = 0.005
# The loop may start up to this much later than the material, for the smoothest wrap.
SEAM_SEARCH_S = 0.001


class LoopError(ValueError):
    """The audio cannot be made into a loop (bad values, silence, too short, unreadable)."""


@dataclass(frozen=True)
class Loop:
    """A finished loop: exactly ``bars`` bars at ``bpm``, seam-free, loudness-normalised."""

    audio: np.ndarray  # [channels, samples] float32, samples == loop_length(...)
    sample_rate: int  # Hz
    bpm: float
    bars: int
    beats_per_bar: int
    lufs: float  # integrated loudness after processing (LUFS)
    peak_dbfs: float  # sample peak after limiting (dBFS)

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.audio.shape[1] / self.sample_rate


def loop_length(bpm: float, bars: int, beats_per_bar: int, sample_rate: int) -> int:
    """Samples in ``bars`` bars: ``round(bars × beats_per_bar × 60 / bpm × sample_rate)``."""
    if bpm <= 0 or bars <= 0 or beats_per_bar <= 0 or sample_rate <= 0:
        raise LoopError(
            f"bpm, bars, beats per bar and sample rate must be positive "
            f"(got {bpm}, {bars}, {beats_per_bar}, {sample_rate})"
        )
    return round(bars * beats_per_bar * 60.0 / bpm * sample_rate)


def check_audio(
    audio: np.ndarray, sample_rate: int, min_seconds: float = 0.1, channels: int | None = None
) -> np.ndarray:
    """Validate and normalise the layout of engine or file audio.

    Args:
        audio: ``[samples]`` (mono) or ``[channels, samples]`` with 1, 2 or 4 channels (4:
            front left, front right, rear left, rear right).
        sample_rate: Hz.
        min_seconds: shortest accepted duration.
        channels: the channels wanted, 2 or 4 (None: stereo, or quad as it came). Mono goes
            to every channel, stereo to the front and the rear pair, quad to stereo as front
            plus rear at equal power.

    Returns:
        ``[channels, samples]`` float32.

    Raises:
        LoopError: wrong shape, NaN/inf, too short, or silent.
    """
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[np.newaxis]
    if audio.ndim != 2 or audio.shape[0] not in (1, 2, 4):
        raise LoopError(
            f"expected audio shaped [channels, samples] with 1, 2 or 4 channels, got {audio.shape}"
        )
    if not np.issubdtype(audio.dtype, np.floating):
        raise LoopError(f"expected floating-point audio, got {audio.dtype}")
    bad = int(np.count_nonzero(~np.isfinite(audio)))
    if bad:
        raise LoopError(f"audio contains {bad} NaN or infinite sample(s)")
    if sample_rate <= 0:
        raise LoopError(f"sample rate must be positive, got {sample_rate}")
    seconds = audio.shape[1] / sample_rate
    if seconds < min_seconds:
        raise LoopError(f"audio is too short: {seconds:.3f} s (at least {min_seconds:g} s)")
    peak = float(np.max(np.abs(audio)))
    if peak < 1e-6:
        raise LoopError(f"audio is silent (peak {_db(peak):.1f} dBFS)")
    return np.ascontiguousarray(_layout(audio, channels), dtype=np.float32)


def _layout(audio: np.ndarray, channels: int | None) -> np.ndarray:
    """``[1|2|4, S]`` → ``[channels, S]`` (see :func:`check_audio`)."""
    have = audio.shape[0]
    want = channels or max(2, have)
    if want not in (2, 4):
        raise LoopError(f"a loop has 2 or 4 channels, not {want}")
    if have == 1:
        return np.repeat(audio, want, axis=0)
    if have == want:
        return audio
    if have == 2:  # stereo on quad: the same pair front and rear
        return np.concatenate([audio, audio])
    return (audio[:2] + audio[2:]) / np.sqrt(2.0)  # quad on stereo


def trim_silence(
    audio: np.ndarray, sample_rate: int, top_db: float = 40.0, fade_ms: float = 5.0
) -> np.ndarray:
    """Cut leading and trailing silence and fade the cut edges.

    Args:
        audio: ``[channels, samples]``.
        sample_rate: Hz.
        top_db: a frame quieter than the loudest frame by this many dB counts as silence.
        fade_ms: length of the raised-cosine fade put on an edge that was cut.

    Returns:
        ``[channels, kept]`` float32.
    """
    _, (start, end) = librosa.effects.trim(audio, top_db=top_db)
    trimmed = np.array(audio[:, start:end], dtype=np.float32)
    fade = min(int(fade_ms * sample_rate / 1000), trimmed.shape[1] // 2)
    if fade > 0:
        ramp = _fade_in(fade)
        if start > 0:
            trimmed[:, :fade] *= ramp
        if end < audio.shape[1]:
            trimmed[:, -fade:] *= ramp[::-1]
    return trimmed


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample ``[channels, samples]`` from ``source_rate`` to ``target_rate`` Hz (soxr)."""
    if source_rate == target_rate:
        return audio
    out = librosa.resample(audio, orig_sr=source_rate, target_sr=target_rate)
    return np.ascontiguousarray(out, dtype=np.float32)


def stretch(audio: np.ndarray, rate: float, sample_rate: int = 44100) -> np.ndarray:
    """Time-stretch keeping pitch: ``rate`` > 1 is faster (shorter). ``[C, S] → [C, ≈S/rate]``.

    Rubber Band (through Spotify's ``pedalboard``): its R2 engine with crisp transients, chosen
    by measurement on drum loops (onset-strength peak-to-median against the unstretched loop, 90
    and 170 BPM from 120): R2 crisp 0.90 / 1.00, R3 ("high quality", which ignores the transient
    mode) 0.52 / 0.88, librosa's phase vocoder 0.48 / 0.54. Quad goes through as two stereo
    pairs (front, rear): Rubber Band treats a third and fourth channel unlike the first two
    (measured: the same stereo pair on channels 1-2 and 3-4 came out 0.7 apart at peak), so each
    pair gets the stereo treatment and the pairs stay alike.
    """
    if audio.shape[0] > 2:
        pairs = [stretch(audio[i : i + 2], rate, sample_rate) for i in range(0, audio.shape[0], 2)]
        shortest = min(p.shape[1] for p in pairs)
        return np.concatenate([p[:, :shortest] for p in pairs])
    from pedalboard import time_stretch

    if not 1 / MAX_STRETCH <= rate <= MAX_STRETCH:
        raise LoopError(
            f"the loop would need a {rate:.2f}x time-stretch "
            f"(at most {MAX_STRETCH:g}x either way); "
            "give the source tempo or a bar count closer to the audio's length"
        )
    out = time_stretch(
        np.ascontiguousarray(audio, dtype=np.float32),
        float(sample_rate),
        stretch_factor=float(rate),
        high_quality=False,
        transient_mode="crisp",
    )
    return np.ascontiguousarray(out, dtype=np.float32)


def fit_to_bars(
    audio: np.ndarray,
    length: int,
    tail: int = 0,
    source_ratio: float | None = None,
    sample_rate: int = 44100,
) -> np.ndarray:
    """Make exactly ``length + tail`` samples of musical material.

    Args:
        audio: ``[channels, samples]``.
        length: samples of the loop (see :func:`loop_length`).
        tail: extra samples after the loop end, for :func:`fold_seam`.
        source_ratio: target tempo / source tempo when the source's tempo is known (its content
            is then stretched by that ratio and cropped or repeated to length); ``None`` means the
            whole audio is taken as the asked bars (stretched to fit, repeated first when it holds
            less than two thirds of them).
        sample_rate: the audio's rate in Hz (the stretcher's windows are set in time).

    Returns:
        ``[channels, length + tail]`` float32.
    """
    need = length + tail
    rate = sample_rate
    if source_ratio is None:
        if audio.shape[1] < need * 2 / 3:
            audio = np.tile(audio, (1, round(need / audio.shape[1])))
        return _exact(_stretch_if_needed(audio, audio.shape[1] / need, rate), need)
    audio = _stretch_if_needed(audio, source_ratio, rate)
    if audio.shape[1] < length * 2 / 3:
        audio = np.tile(audio, (1, -(-need // audio.shape[1])))
    if audio.shape[1] < need:  # a few samples short is padded, more is stretched
        audio = _stretch_if_needed(audio, audio.shape[1] / need, rate)
    return _exact(audio, need)


def best_offset(audio: np.ndarray, length: int, search: int) -> int:
    """The start offset in ``[0, search]`` whose wrap step is the smallest.

    The wrap of a loop starting at ``d`` joins ``audio[:, d + length - 1]`` to the sample that
    followed it in the source, ``audio[:, d + length]``; of the ``search + 1`` candidates the one
    with the smallest largest-channel step is chosen. ``audio`` must hold ``length + search + 1``.
    """
    steps = np.abs(np.diff(audio[:, length - 1 : length + search + 1], axis=1)).max(axis=0)
    return int(np.argmin(steps))


def fold_seam(audio: np.ndarray, length: int, search: int = 0) -> np.ndarray:
    """Fold the tail past ``length`` into the head with an equal-power crossfade.

    The loop's last sample is followed, on the wrap, by the sample the source had after it, so the
    wrap has no jump; the head fades in under the tail. With ``search`` > 0 the loop starts at the
    offset in ``[0, search]`` samples whose wrap step is smallest (:func:`best_offset`), so the
    wrap is smoother than a typical step of the loop.

    Args:
        audio: ``[channels, length + tail + search]``.
        length: samples of the loop.
        search: samples of start offset to choose from (at most ~1 ms keeps the timing).

    Returns:
        ``[channels, length]`` float32.
    """
    search = max(0, min(search, audio.shape[1] - length - 1))
    offset = best_offset(audio, length, search) if search else 0
    audio = audio[:, offset : audio.shape[1] - search + offset]
    tail = audio.shape[1] - length
    out = np.array(audio[:, :length], dtype=np.float32)
    if tail <= 0:
        return out
    tail = min(tail, length)
    fade_in = _fade_in(tail)
    fade_out = np.sqrt(1.0 - fade_in**2, dtype=np.float32)
    out[:, :tail] = out[:, :tail] * fade_in + audio[:, length : length + tail] * fade_out
    return out


def seamless_cut(audio: np.ndarray, start: int, length: int, fade: int) -> np.ndarray:
    """``audio[:, start : start + length]`` made a seamless loop: its last ``fade`` samples
    cross linearly into ``audio[:, start - fade : start]``, the samples that led into its first
    one, so its end flows into its start. For a cut from audio that goes on at both ends (a
    pattern's second pass, a stretched segment); a linear crossfade because the two sides are
    alike (an equal-power one would swell by up to 3 dB). A periodic ``audio`` comes out
    unchanged.

    Args:
        audio: ``[channels, samples]``.
        start: first sample of the loop; ``fade`` is cut to it when fewer samples precede it.
        length: samples of the loop.
        fade: samples of the crossfade.

    Returns:
        ``[channels, length]`` float32.
    """
    loop = np.array(audio[:, start : start + length], dtype=np.float32)
    fade = min(fade, start, length)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    lead_in = audio[:, start - fade : start]
    loop[:, length - fade :] = loop[:, length - fade :] * (1 - ramp) + lead_in * ramp
    return loop


def remove_dc(audio: np.ndarray) -> np.ndarray:
    """``[channels, samples]`` loop minus each channel's mean: its DC offset, exactly, since the
    loop repeats (a constant shift leaves the wrap step as it was, unlike a high-pass filter).

    The shipped GAN models' takes sat off zero by a median 11-17 % of their RMS (up to 51 %; the
    corpus loops they learnt from: 0.1-1.3 %). A PA gains nothing from DC, and a clip or buffer
    that starts or stops without a fade jumps by it.
    """
    return (audio - audio.mean(axis=1, keepdims=True)).astype(np.float32)


def loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770, pyloudnorm) of ``[channels, samples]``.

    Quad counts all four channels with BS.1770's weights: 1.0 for the front pair, 1.41 (+1.5
    dB) for the rear pair as surround channels — given to pyloudnorm as its 5-channel layout
    (L, R, C, Ls, Rs) with a silent centre.
    """
    meter = _meter(sample_rate, min(0.4, audio.shape[1] / sample_rate))
    if audio.shape[0] == 4:
        audio = np.concatenate([audio[:2], np.zeros_like(audio[:1]), audio[2:]])
    return float(meter.integrated_loudness(audio.T))


@functools.lru_cache(maxsize=8)
def _meter(sample_rate: int, block_size: float) -> pyloudnorm.Meter:
    """A BS.1770 meter (its filter design is reused between calls)."""
    return pyloudnorm.Meter(sample_rate, block_size=block_size)


def normalize_loudness(audio: np.ndarray, sample_rate: int, target_lufs: float) -> np.ndarray:
    """Scale ``[channels, samples]`` to ``target_lufs`` integrated loudness."""
    measured = loudness(audio, sample_rate)
    if not np.isfinite(measured):
        raise LoopError("audio is too quiet to measure its loudness")
    gain = 10.0 ** ((target_lufs - measured) / 20.0)
    return (audio * np.float32(gain)).astype(np.float32)


def limit(audio: np.ndarray, sample_rate: int, ceiling_dbfs: float = -1.0) -> np.ndarray:
    """Look-ahead peak limiter: the sample peak of the result is ≤ ``ceiling_dbfs``.

    The gain needed at each sample is spread over a 5 ms window both ways (a running minimum, then
    a running mean no longer than that window, so the mean never exceeds the gain needed at any
    sample it covers). Filters wrap around the loop, so the seam stays continuous.

    Args:
        audio: ``[channels, samples]``.
        sample_rate: Hz.
        ceiling_dbfs: sample-peak ceiling.

    Returns:
        ``[channels, samples]`` float32.
    """
    ceiling = 10.0 ** (ceiling_dbfs / 20.0)
    peak = np.max(np.abs(audio), axis=0)
    if float(peak.max()) <= ceiling:
        return audio  # untouched: the caller may rely on identity
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    window = max(1, int(LIMITER_LOOKAHEAD_S * sample_rate))
    gain = scipy.ndimage.minimum_filter1d(need, size=2 * window + 1, mode="wrap")
    gain = scipy.ndimage.uniform_filter1d(gain, size=window + 1, mode="wrap")
    gain = np.minimum(gain, need)  # float rounding in the mean must not overshoot
    return (audio * gain).astype(np.float32)


def make_loop(
    audio: np.ndarray,
    sample_rate: int,
    bpm: float,
    bars: int,
    beats_per_bar: int,
    settings: AudioConfig,
    source_bpm: float | None = None,
    trim: bool = True,
    channels: int | None = None,
) -> Loop:
    """Turn raw audio into a bar-exact, click-free, loudness-normalised loop.

    Every channel gets the same cut and seam offset, loudness is measured over all of them and
    the limiter's gain is linked (one gain for every channel at each sample).

    Args:
        audio: ``[samples]`` or ``[channels, samples]`` float, 1, 2 or 4 channels, any rate.
        sample_rate: Hz of ``audio``.
        bpm: target tempo.
        bars: target length in bars.
        beats_per_bar: beats in a bar.
        settings: output rate, loudness target, peak ceiling, silence threshold, seam and fades.
        source_bpm: the tempo the content was made at (engines know it); ``None`` = unknown.
        trim: cut leading/trailing silence first (off for engines whose output is bar-aligned).
        channels: 2 or 4 (see :func:`check_audio`); None: stereo, or quad as it came.

    Returns:
        A :class:`Loop` of ``[channels, loop_length(bpm, bars, beats_per_bar,
        settings.sample_rate)]``.

    Raises:
        LoopError: NaN/inf, silent, too-short input, or an impossible stretch.
    """
    audio = check_audio(audio, sample_rate, settings.min_seconds, channels)
    if trim:
        audio = trim_silence(audio, sample_rate, settings.silence_db, settings.fade_ms)
        check_audio(audio, sample_rate, settings.min_seconds)
    audio = resample(audio, sample_rate, settings.sample_rate)
    rate = settings.sample_rate
    length = loop_length(bpm, bars, beats_per_bar, rate)
    tail = min(int(settings.seam_ms * rate / 1000), length // 4)
    search = int(SEAM_SEARCH_S * rate) if tail else 0
    ratio = None if source_bpm is None else bpm / source_bpm
    audio = fold_seam(
        fit_to_bars(audio, length, tail + search, ratio, settings.sample_rate), length, search
    )
    normalised = normalize_loudness(remove_dc(audio), rate, settings.target_lufs)
    audio = limit(normalised, rate, settings.peak_dbfs)
    # Loudness is only measured again when the limiter changed something.
    lufs = settings.target_lufs if audio is normalised else loudness(audio, rate)
    return Loop(
        audio=audio,
        sample_rate=rate,
        bpm=bpm,
        bars=bars,
        beats_per_bar=beats_per_bar,
        lufs=lufs,
        peak_dbfs=_db(float(np.max(np.abs(audio)))),
    )


def warm_up(settings: AudioConfig) -> None:
    """Run every loop tool once on a short synthetic signal (librosa compiles with numba on its
    first call, which takes seconds): call at start-up, never during a performance."""
    rate = settings.sample_rate
    noise = np.random.default_rng(0).standard_normal((2, rate)).astype(np.float32) * 0.1
    make_loop(noise, rate, 240.0, 1, 4, settings, source_bpm=None, trim=True)
    make_loop(noise, rate, 120.0, 1, 4, settings, source_bpm=120.0, trim=False)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Read WAV/FLAC/OGG/AIFF (soundfile) or MP3 (librosa's fallback) as ``[channels, samples]``.

    Raises:
        LoopError: the file is missing or cannot be decoded.
    """
    if not path.is_file():
        raise LoopError(f"{path}: no such file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(rate)
    except (soundfile.LibsndfileError, RuntimeError):
        pass
    try:
        data, rate = librosa.load(str(path), sr=None, mono=False)
    except Exception as error:  # audioread/soundfile raise many types for corrupt input
        raise LoopError(f"{path}: not a readable audio file ({error})") from None
    return np.atleast_2d(np.asarray(data, dtype=np.float32)), int(rate)


def _stretch_if_needed(audio: np.ndarray, rate: float, sample_rate: int) -> np.ndarray:
    """:func:`stretch` unless ``rate`` is within :data:`STRETCH_TOLERANCE` of 1."""
    if abs(rate - 1.0) <= STRETCH_TOLERANCE:
        return audio
    return stretch(audio, rate, sample_rate)


def _exact(audio: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad ``[C, S]`` to exactly ``length`` samples (stretch output is ±1 frame)."""
    if audio.shape[1] >= length:
        return np.ascontiguousarray(audio[:, :length])
    return np.pad(audio, ((0, 0), (0, length - audio.shape[1])), mode="edge")


def _fade_in(samples: int) -> np.ndarray:
    """Equal-power fade-in curve ``sin(π/2 · t)`` of ``samples`` points, t in [0, 1)."""
    return np.sin(0.5 * np.pi * np.arange(samples, dtype=np.float32) / samples).astype(np.float32)


def _db(amplitude: float) -> float:
    return float(20.0 * np.log10(max(amplitude, 1e-12)))
