"""Mel front end matching librosa, plus per-bin normalisation statistics.

The filterbank is ``librosa.filters.mel`` (Slaney scale and norm, librosa's defaults); the STFT is
``torch.stft`` with a periodic Hann window, ``center=True`` and zero padding, i.e. what
``librosa.feature.melspectrogram(..., power=1.0)`` computes. Values are natural-log magnitudes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import librosa
import torch
from torch import nn

LOG_FLOOR = 1e-5  # magnitude floor before the log (≈ -100 dB)


@dataclass(frozen=True)
class MelSpec:
    """STFT and mel parameters of a model's spectrograms."""

    sr: int = 24000  # sample rate, Hz
    n_fft: int = 1500  # samples per FFT frame
    hop: int = 375  # samples between frames: 24000 / 375 = 64 frames per second
    win: int = 1500  # Hann window length (≤ n_fft)
    n_mels: int = 80
    fmin: float = 0.0  # Hz
    fmax: float = 12000.0  # Hz (≤ sr / 2)

    def __post_init__(self) -> None:
        if not 0 < self.win <= self.n_fft:
            raise ValueError(f"win must be in 1..n_fft ({self.n_fft}), got {self.win}")
        if not 0 <= self.fmin < self.fmax <= self.sr / 2:
            raise ValueError(f"need 0 ≤ fmin < fmax ≤ sr/2, got fmin={self.fmin} fmax={self.fmax}")
        if self.hop <= 0 or self.n_mels <= 0:
            raise ValueError(f"hop and n_mels must be positive, got {self.hop}, {self.n_mels}")

    def to_dict(self) -> dict[str, float]:
        """The JSON form (config.json ``audio`` section)."""
        return asdict(self)

    def at_rate(self, sr: int) -> MelSpec:
        """The same analysis for audio at ``sr`` (a whole multiple of ``self.sr``): FFT size,
        hop and window scaled so that frames, bins (Hz) and bands stay where they were."""
        factor = sr // self.sr
        if factor < 1 or factor * self.sr != sr:
            raise ValueError(f"{sr} Hz is not a whole multiple of the mel's {self.sr} Hz")
        return MelSpec(
            sr, self.n_fft * factor, self.hop * factor, self.win * factor, self.n_mels,
            self.fmin, self.fmax,
        )  # fmt: skip


class MelFrontEnd(nn.Module):
    """Audio → log-mel, and the per-bin statistics that normalise it.

    Buffers: ``filterbank`` [n_mels, n_fft/2+1], ``band_to_bin`` [n_fft/2+1, n_mels] (each row the
    bin's filter weights normalised to sum 1, zero for a bin no filter covers), ``uncovered``
    [n_fft/2+1, 1] (1 for those bins), ``window`` [win],
    ``mean`` and ``std`` [n_mels] (0 and 1 until a dataset's statistics are set).
    """

    filterbank: torch.Tensor
    band_to_bin: torch.Tensor
    uncovered: torch.Tensor
    window: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, spec: MelSpec, sr: int | None = None) -> None:
        """``spec``: the mel the values are on. ``sr``: the rate of the audio this front end
        reads, a whole multiple k of ``spec.sr`` (default: ``spec.sr``): it then analyses with
        :meth:`MelSpec.at_rate` and scales the filterbank by 1/k, so a band-limited signal gives
        the mel it gives at ``spec.sr`` (an STFT magnitude grows with the window's samples). A
        48 kHz vocoder thus reads and matches the mels of 24 kHz models."""
        super().__init__()
        self.spec = spec.at_rate(sr) if sr else spec
        self.mel_spec = spec  # the rate and analysis the mel values refer to
        bank = librosa.filters.mel(
            sr=self.spec.sr,
            n_fft=self.spec.n_fft,
            n_mels=spec.n_mels,
            fmin=spec.fmin,
            fmax=spec.fmax,
        ) * (spec.sr / self.spec.sr)
        filterbank = torch.from_numpy(bank).float()
        self.register_buffer("filterbank", filterbank, persistent=False)
        weight = filterbank.T.sum(dim=1, keepdim=True)
        band_to_bin = torch.where(weight > 0, filterbank.T / weight.clamp(min=1e-12), 0.0)
        self.register_buffer("band_to_bin", band_to_bin, persistent=False)
        self.register_buffer("uncovered", (weight == 0).float(), persistent=False)  # [bins, 1]
        window = torch.hann_window(self.spec.win, periodic=True)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mean", torch.zeros(spec.n_mels))
        self.register_buffer("std", torch.ones(spec.n_mels))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Log-mel magnitudes.

        Args:
            audio: ``[B, samples]`` float at ``spec.sr``.

        Returns:
            ``[B, n_mels, samples // hop + 1]`` natural-log magnitudes (floored at 1e-5).
        """
        mel = torch.matmul(self.filterbank, self._stft(audio).abs())
        return torch.log(torch.clamp(mel, min=LOG_FLOOR))

    def loop(self, audio: torch.Tensor) -> torch.Tensor:
        """Log-mel of circular loops, the analysis a loop model's training segments get.

        Frame t is centred on sample ``t · hop`` like :meth:`forward`'s, but the windows of the
        first and last frames wrap around the loop's ends instead of reading zeros. With zeros,
        those frames hold a step from silence to the signal: about 1 nat more energy above
        6 kHz in the texture corpus's frames 0 and 255 than in its inner frames. A generator
        learns that bright column, and the engine, which vocodes its loops circularly, plays it
        as a click at the loop point (the texture and pads models shipped before this analysis
        clicked there in 13 of 30 takes).

        Args:
            audio: ``[B, samples]`` float at ``spec.sr``, each row one loop (at least
                ``n_fft / 2`` samples).

        Returns:
            ``[B, n_mels, samples // hop]`` natural-log magnitudes (floored at 1e-5); a loop
            rolled by k hops gives these frames rolled by k.
        """
        s = self.spec
        half = s.n_fft // 2
        if audio.shape[-1] < half:
            raise ValueError(
                f"a loop of {audio.shape[-1]} samples is shorter than n_fft/2 ({half})"
            )
        wrapped = torch.cat([audio[..., -half:], audio, audio[..., :half]], dim=-1).float()
        spectrum = torch.stft(
            wrapped, s.n_fft, s.hop, s.win, self.window, center=False, return_complex=True
        )
        mel = torch.matmul(self.filterbank, spectrum.abs())[..., : audio.shape[-1] // s.hop]
        return torch.log(torch.clamp(mel, min=LOG_FLOOR))

    def match(
        self, audio: torch.Tensor, log_mel: torch.Tensor, iterations: int, max_boost: float = 2.0
    ) -> torch.Tensor:
        """Reshape ``audio``'s spectrum, keeping its phase, until its log-mel approaches
        ``log_mel``.

        Each iteration takes the STFT, a gain per (band, frame) = target mel / current mel,
        spreads it to the linear bins through :attr:`band_to_bin` (bins no filter covers keep
        gain 1) and inverts the STFT. A neural vocoder's overlapping frames carry slightly
        inconsistent phases, which smears energy into the quiet bins between events; this
        projection puts the energy back where the mel says it belongs.

        The target may lower a band by any amount but raise it at most ``max_boost`` (2 = 6 dB)
        above the input audio: a generator's out-of-range spike (a sub-bass bin 4 nats above
        anything in its training data, say) stays as tame as the network made it. Measured on
        the drums model's loops: peaks up to 31 without the cap, up to 2.9 with it, at the same
        held-out mel distance (0.158).

        Args:
            audio: ``[B, samples]`` float at ``spec.sr``.
            log_mel: ``[B, n_mels, frames]`` natural-log mel, frame t centred on sample t · hop
                (``frames`` = ``samples // hop`` or one more; a missing last frame repeats the one
                before it).
            iterations: projections to run (0 returns ``audio`` itself).
            max_boost: the largest factor by which a band may rise above the input's.

        Returns:
            ``[B, samples]`` float32.
        """
        if iterations == 0:
            return audio
        frames = audio.shape[-1] // self.spec.hop + 1
        target = torch.exp(log_mel.float())
        if target.shape[-1] < frames:
            missing = frames - target.shape[-1]
            target = torch.cat([target, target[..., -1:].expand(-1, -1, missing)], -1)
        with torch.autocast(audio.device.type, enabled=False):  # gains need float32
            spectrum = self._stft(audio)
            start = torch.matmul(self.filterbank, spectrum.abs())
            target = torch.minimum(target[..., :frames], start * max_boost)
            for step in range(iterations):
                if step:
                    spectrum = self._stft(audio)
                audio = self._project(spectrum, target, audio.shape[-1])
        return audio

    def _project(self, spectrum: torch.Tensor, target: torch.Tensor, samples: int) -> torch.Tensor:
        """One projection of :meth:`match`: ``spectrum`` (the STFT of the current audio) with
        each band scaled to ``target`` ``[B, n_mels, samples // hop + 1]``, back to
        ``[B, samples]``."""
        s = self.spec
        current = torch.matmul(self.filterbank, spectrum.abs()).clamp(min=LOG_FLOOR)
        gain = (target / current).clamp(max=100.0)  # 40 dB: a band that went silent
        spectrum = spectrum * (torch.matmul(self.band_to_bin, gain) + self.uncovered)
        return torch.istft(
            spectrum, s.n_fft, s.hop, s.win, self.window, center=True, length=samples
        )

    def _stft(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, samples]`` → ``[B, n_fft/2+1, samples // hop + 1]`` complex, centred frames."""
        s = self.spec
        return torch.stft(
            audio.float(),
            s.n_fft,
            s.hop,
            s.win,
            self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )

    def normalize(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, frames]`` log-mel → per-bin zero-mean, unit-variance."""
        return (log_mel - self.mean[:, None]) / self.std[:, None]

    def denormalize(self, normalized: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`, ``[B, n_mels, frames]``."""
        return normalized * self.std[:, None] + self.mean[:, None]

    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store a dataset's per-bin ``[n_mels]`` mean and std (std floored at 1e-3)."""
        self.mean.copy_(mean)
        self.std.copy_(torch.clamp(std, min=1e-3))
