"""Audio features of loops, for naming directions and for the Fréchet distance in ``rig eval``.

No downloaded embedding model: hand-made features from librosa (onset strength, MFCCs, spectral
centroid and contrast) and one STFT. Every function takes mono ``[samples]`` float audio at
``rate`` Hz.
"""

from __future__ import annotations

import warnings

import numpy as np

N_FFT, HOP = 1024, 256
BASS_HZ = 150.0  # upper edge of the "bass" band
MFCCS = 20
CONTRAST_FMIN = 200.0  # Hz, lowest spectral-contrast band edge (6 octave bands above it)


def _power(audio: np.ndarray) -> np.ndarray:
    """``[bins, frames]`` power spectrogram (Hann, 1024-point FFT, hop 256)."""
    import librosa

    return np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP)) ** 2


def onset_density(audio: np.ndarray, rate: int) -> float:
    """Onsets per second (librosa's spectral-flux onset detector): the "complexity" of a loop."""
    import librosa

    onsets = librosa.onset.onset_detect(y=audio, sr=rate, hop_length=HOP, units="time")
    return len(onsets) / (len(audio) / rate)


def bass_energy(audio: np.ndarray, rate: int) -> float:
    """Share of the energy below 150 Hz, in dB (≤ 0): the "bass" of a loop."""
    power = _power(audio)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / rate)
    low = float(power[freqs < BASS_HZ].sum())
    return 10 * np.log10((low + 1e-10) / (float(power.sum()) + 1e-10))


def centroid(audio: np.ndarray, rate: int) -> float:
    """Mean spectral centroid in Hz, weighted by frame energy: the "brightness" of a loop."""
    power = _power(audio)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / rate)
    return float((freqs[:, None] * power).sum() / (power.sum() + 1e-10))


NAMED_FEATURES = {
    "complexity": (onset_density, "onset density (onsets per second)"),
    "bass": (bass_energy, f"energy below {BASS_HZ:g} Hz (dB of the total)"),
    "brightness": (centroid, "spectral centroid (Hz)"),
}


def feature_vector(audio: np.ndarray, rate: int) -> np.ndarray:
    """The fixed feature set of ``rig eval``: MFCC means and standard deviations (2 × 20),
    onset density, spectral centroid mean and std (kHz), spectral contrast means (7): 50 values
    at 24 kHz (fewer contrast bands at rates whose Nyquist the top band would pass)."""
    import librosa

    mfcc = librosa.feature.mfcc(y=audio, sr=rate, n_mfcc=MFCCS, n_fft=N_FFT, hop_length=HOP)
    spec = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP))
    cent = librosa.feature.spectral_centroid(S=spec, sr=rate)[0] / 1000.0
    bands = min(6, int(np.floor(np.log2(rate / 2 / CONTRAST_FMIN - 1e-9))) + 1)  # below Nyquist
    contrast = librosa.feature.spectral_contrast(S=spec, sr=rate, fmin=CONTRAST_FMIN, n_bands=bands)
    return np.concatenate(
        [
            mfcc.mean(axis=1),
            mfcc.std(axis=1),
            [onset_density(audio, rate), cent.mean(), cent.std()],
            contrast.mean(axis=1),
        ]
    )


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to ``[N, D]`` and ``[M, D]`` feature sets:
    ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½)."""
    from scipy import linalg

    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # a singular product (few loops) still has a usable root
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = np.real(linalg.sqrtm(cov_a @ cov_b))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def edge_rates(loops: np.ndarray, rate: int, beats: int) -> tuple[float, float]:
    """How often circular loops have a hard edge at the loop point, and at their beat lines.

    An edge at a position: a sample step within ±1/6 ms of it (8 samples at 48 kHz) larger than
    the loop's 99.9th-percentile step. At the loop point that is a click; at a beat line it is
    mostly an onset, so the beat lines' rate is what the music itself gives (the demo corpus's
    own loops: 0-2 % at the loop point, 1-6 % at the beat lines).

    Args:
        loops: ``[N, samples]`` mono circular loops at ``rate`` Hz.
        beats: beats per loop; beat line k lies at sample ``round(k · samples / beats)``.

    Returns:
        (share of loops with an edge at the loop point, mean share over the other beat lines).
    """
    samples = loops.shape[1]
    steps = np.abs(np.diff(loops, axis=1, append=loops[:, :1]))  # step i: sample i → i + 1
    hot = steps > np.percentile(steps, 99.9, axis=1, keepdims=True)
    half = max(1, rate // 6000)

    def share(position: int) -> float:
        window = np.arange(position - 1 - half, position - 1 + half + 1) % samples
        return float(hot[:, window].any(axis=1).mean())

    lines = [share(round(k * samples / beats)) for k in range(1, beats)]
    return share(samples), float(np.mean(lines)) if lines else 0.0
