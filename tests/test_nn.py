"""Networks: shapes from configs, determinism, style mixing, vocoder lengths, the mel front end."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import torch
from tiny_models import TINY_AUDIO, TINY_GENERATOR, TINY_ISTFT, TINY_MELGAN

from rig.nn.istft import IstftVocoder
from rig.nn.mel import MelFrontEnd, MelSpec
from rig.nn.melgan import MelGANGenerator, MultiScaleDiscriminator, remove_weight_norm
from rig.nn.stylegan2 import Discriminator, Generator, GeneratorConfig
from rig.nn.vocoder import build_vocoder, for_training, vocoder_config


@pytest.fixture
def generator() -> Generator:
    torch.manual_seed(0)
    return Generator(TINY_GENERATOR).eval()


def test_generator_shape_follows_the_config(generator: Generator) -> None:
    z = torch.randn(3, TINY_GENERATOR.z_dim)
    out = generator(z)
    assert out.shape == (3, 1, 20, 256) and torch.isfinite(out).all()
    assert GeneratorConfig().output_shape == (80, 256)  # the default: 4 s at 64 frames/s
    assert TINY_GENERATOR.num_ws == 6


def test_generator_is_a_function_of_z_with_const_noise(generator: Generator) -> None:
    z = torch.randn(2, TINY_GENERATOR.z_dim)
    with torch.no_grad():
        for layer in generator.synthesis.modules():
            if hasattr(layer, "noise_strength"):
                layer.noise_strength.fill_(0.5)  # trained models use their noise
        a, b = generator(z), generator(z)
        assert torch.equal(a, b)
        r1 = generator(z, noise="random", generator=torch.Generator().manual_seed(1))
        r2 = generator(z, noise="random", generator=torch.Generator().manual_seed(2))
    assert not torch.equal(r1, r2) and not torch.equal(a, r1)
    with pytest.raises(ValueError, match="noise must be one of"):
        generator(z, noise="loud")


def test_truncation_and_style_mixing(generator: Generator) -> None:
    z = torch.randn(4, TINY_GENERATOR.z_dim)
    generator.mapping.w_avg.copy_(torch.randn(TINY_GENERATOR.w_dim))
    w0 = generator.mapping(z, psi=0.0)
    assert torch.allclose(w0, generator.mapping.w_avg.expand(4, -1))
    other = torch.randn(4, TINY_GENERATOR.z_dim)
    plain, mixed = generator(z), generator(z, mix_z=other, mix_layer=3)
    assert not torch.allclose(plain, mixed)
    assert torch.equal(generator(z, mix_z=other, mix_layer=TINY_GENERATOR.num_ws), plain)


def test_generator_wraps_in_time(generator: Generator) -> None:
    """Rolling the const input and const noise by whole coarse steps rolls the output: every
    time axis pads circularly, so the loop has no edge."""
    z = torch.randn(1, TINY_GENERATOR.z_dim)
    with torch.no_grad():
        base = generator(z, noise="none")
        generator.synthesis.const.copy_(torch.roll(generator.synthesis.const, 8, dims=2))
        rolled = generator(z, noise="none")
    scale = 2 ** (TINY_GENERATOR.levels - 1)
    assert torch.allclose(torch.roll(base, 8 * scale, dims=3), rolled, atol=1e-5)


def test_discriminator_scores_each_sample(generator: Generator) -> None:
    disc = Discriminator(TINY_GENERATOR)
    for batch in (4, 3, 1):  # minibatch-stddev groups fall back to a divisor
        mel = generator(torch.randn(batch, TINY_GENERATOR.z_dim))
        assert disc(mel).shape == (batch,)
    scores = disc(torch.cat([mel, -mel]))
    assert scores.shape == (2,) and scores[0] != scores[1]


@pytest.mark.parametrize("cfg", [TINY_ISTFT, TINY_MELGAN], ids=["istft", "melgan"])
def test_vocoders_make_exactly_frames_times_hop(cfg) -> None:
    torch.manual_seed(0)
    vocoder = build_vocoder(cfg).eval()
    mel = torch.randn(2, 20, 37)
    with torch.no_grad():
        audio = vocoder(mel)
    assert audio.shape == (2, 1, 37 * 125) and torch.isfinite(audio).all()


@pytest.mark.parametrize("cap", [None, 100.0], ids=["default", "saved-before"])
def test_the_istft_head_writes_loud_lows_up_to_its_cap(cap: float | None) -> None:
    """A head asking for magnitude 200 in one low bin gets it under the default cap (n_fft / 2
    = 250); a vocoder saved under the old cap of 100 writes half of it."""
    cfg = dataclasses.replace(TINY_ISTFT, max_magnitude=cap)
    vocoder = IstftVocoder(cfg).eval()
    bins, k = cfg.n_fft // 2 + 1, 4  # 4 turns per window, one per hop: phase 0 is one sine
    with torch.no_grad():
        vocoder.head.weight.zero_()
        vocoder.head.bias.zero_()
        vocoder.head.bias[:bins] = -30.0  # log magnitude: silence, phase 0 everywhere
        vocoder.head.bias[k] = float(np.log(200.0))
        audio = vocoder(torch.zeros(1, cfg.n_mels, 40))[0, 0, cfg.n_fft : -cfg.n_fft]
    written = min(200.0, cfg.magnitude_cap)
    # A lone bin of magnitude M is a cosine of 2M / n_fft per frame; the window-normalised
    # overlap-add (Hann at hop n_fft / 4: Σw = 2, Σw² = 3/2) scales it by 4/3.
    amplitude = 2 * written / cfg.n_fft * 4 / 3
    assert cfg.magnitude_cap == (cfg.n_fft / 2 if cap is None else cap)
    assert float(audio.abs().max()) == pytest.approx(amplitude, rel=0.02)


def test_vocoder_configs_saved_before_the_cap_keep_the_cap_they_were_trained_under() -> None:
    saved_before = {k: v for k, v in TINY_ISTFT.to_dict().items() if k != "max_magnitude"}
    assert vocoder_config(saved_before).magnitude_cap == 100.0
    assert vocoder_config(TINY_ISTFT.to_dict()) == TINY_ISTFT  # None: n_fft / 2
    assert for_training(vocoder_config(saved_before)) == TINY_ISTFT
    assert for_training(TINY_MELGAN) == TINY_MELGAN


def test_melgan_weight_norm_folds_without_changing_the_output() -> None:
    torch.manual_seed(0)
    melgan = MelGANGenerator(TINY_MELGAN).eval()
    assert any("parametrizations" in k for k in melgan.state_dict())
    mel = torch.randn(1, 20, 16)
    with torch.no_grad():
        before = melgan(mel)
        after = remove_weight_norm(melgan)(mel)
    assert not any("parametrizations" in k for k in melgan.state_dict())
    assert torch.allclose(before, after, atol=1e-5) and before.abs().max() <= 1.0


def test_multiscale_discriminator_features() -> None:
    audio = torch.randn(2, 1, 8000)
    scales = MultiScaleDiscriminator()(audio)
    assert len(scales) == 3 and all(len(features) == 7 for features in scales)
    lengths = [features[-1].shape[-1] for features in scales]
    assert lengths[0] > lengths[1] > lengths[2]


def test_mel_front_end_matches_librosa() -> None:
    spec = MelSpec(sr=8000, n_fft=500, hop=125, win=400, n_mels=20, fmin=30.0, fmax=3500.0)
    y = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    ours = MelFrontEnd(spec)(torch.from_numpy(y)[None])[0].numpy()
    theirs = librosa.feature.melspectrogram(
        y=y,
        sr=8000,
        n_fft=500,
        hop_length=125,
        win_length=400,
        n_mels=20,
        fmin=30.0,
        fmax=3500.0,
        power=1.0,
        center=True,
        pad_mode="constant",
    )
    assert ours.shape == theirs.shape == (20, 8000 // 125 + 1)
    assert np.allclose(np.exp(ours), np.maximum(theirs, 1e-5), rtol=1e-3, atol=1e-6)


def test_loop_analysis_wraps_around_the_loop_ends() -> None:
    spec = MelSpec(sr=8000, n_fft=500, hop=125, win=400, n_mels=20, fmin=30.0, fmax=3500.0)
    front = MelFrontEnd(spec)
    t = torch.arange(8000) / 8000
    loop = (torch.sin(2 * torch.pi * 220.0 * t) * 0.3)[None]  # whole periods: a seamless loop
    mel = front.loop(loop)
    assert mel.shape == (1, 20, 64)
    inner = front(loop)[..., 2:62]  # frames whose windows lie inside the loop agree
    assert torch.allclose(mel[..., 2:62], inner)
    rolled = front.loop(torch.roll(loop, 125 * 5, -1))  # a loop rolled by whole hops
    assert torch.allclose(rolled, torch.roll(mel, 5, -1), atol=1e-4)
    top = slice(12, 20)  # bands above 1.5 kHz, where a steady 220 Hz tone has no energy
    padded_edge = front(loop)[0, top, 0].mean()  # zero padding: a step from silence to the tone
    assert padded_edge - mel[0, top, 0].mean() > 1.0
    assert (mel[0, top, 0] - mel[0, top, 32]).abs().max() < 0.05  # the wrapped edge is inner-like
    with pytest.raises(ValueError, match="shorter than n_fft/2"):
        front.loop(loop[:, :200])


def _bursts(spec: MelSpec, seconds: float = 2.0) -> torch.Tensor:
    """``[1, samples]``: decaying noise bursts every 0.25 s with near silence between them."""
    rng = np.random.default_rng(1)
    t = np.arange(int(spec.sr * seconds)) / spec.sr
    envelope = np.exp(-40.0 * (t % 0.25))
    return torch.from_numpy((rng.standard_normal(t.size) * envelope * 0.3).astype(np.float32))[None]


def test_mel_match_pulls_smeared_audio_back_to_its_mel() -> None:
    spec = MelSpec(sr=8000, n_fft=500, hop=125, win=500, n_mels=20, fmin=30.0, fmax=3500.0)
    front = MelFrontEnd(spec)
    clean = _bursts(spec)
    target = front(clean)[..., : clean.shape[-1] // spec.hop]  # frames · hop = samples
    # Scramble the phases: the energy smears from the bursts into the quiet between them.
    stft = torch.stft(clean, 500, 125, 500, front.window, return_complex=True)
    phase = torch.rand(stft.shape, generator=torch.Generator().manual_seed(0)) * 2 * np.pi
    smeared = torch.istft(
        stft.abs() * torch.exp(1j * phase), 500, 125, 500, front.window, length=clean.shape[-1]
    )

    def distance(audio: torch.Tensor) -> float:
        return float((front(audio)[..., : target.shape[-1]] - target).abs().mean())

    assert torch.equal(front.match(smeared, target, 0), smeared)
    distances = [distance(front.match(smeared, target, n)) for n in (0, 1, 4)]
    assert distances[0] > 0.5  # the smearing is real
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] < 0.5 * distances[0]
    assert front.match(smeared, target, 4).shape == clean.shape


def test_mel_match_leaves_uncovered_bins_and_caps_a_boost() -> None:
    spec = MelSpec(sr=8000, n_fft=500, hop=125, win=500, n_mels=20, fmin=30.0, fmax=3000.0)
    front = MelFrontEnd(spec)
    t = torch.arange(8000) / 8000
    above = 0.2 * torch.sin(2 * np.pi * 3600 * t)  # above fmax: no mel band sees it
    inside = 0.2 * torch.sin(2 * np.pi * 500 * t)
    quieter = front(inside[None] * 0.1)[..., :64]  # ask for the 500 Hz tone 20 dB down
    out = front.match((above + inside)[None], quieter, 2)[0]
    spectrum = torch.stft(out, 500, 125, 500, front.window, return_complex=True).abs()
    reference = torch.stft(above + inside, 500, 125, 500, front.window, return_complex=True).abs()
    middle = slice(4, -4)  # frames away from the zero-padded ends
    bin_above, bin_inside = round(3600 / 16), round(500 / 16)  # 16 Hz per bin
    ratio_above = spectrum[bin_above, middle] / reference[bin_above, middle]
    ratio_inside = spectrum[bin_inside, middle] / reference[bin_inside, middle]
    assert torch.allclose(ratio_above, torch.ones_like(ratio_above), atol=0.02)
    assert torch.allclose(ratio_inside, torch.full_like(ratio_inside, 0.1), atol=0.02)
    louder = front(inside[None] * 10.0)[..., :64]  # 20 dB up: capped at max_boost (6 dB)
    out = front.match((above + inside)[None], louder, 4)[0]
    spectrum = torch.stft(out, 500, 125, 500, front.window, return_complex=True).abs()
    ratio_inside = spectrum[bin_inside, middle] / reference[bin_inside, middle]
    assert torch.allclose(ratio_inside, torch.full_like(ratio_inside, 2.0), atol=0.05)


def test_mel_statistics_normalise_and_restore() -> None:
    front = MelFrontEnd(TINY_AUDIO.mel)
    log_mel = torch.randn(2, 20, 10) * 3 - 5
    front.set_statistics(log_mel.mean(dim=(0, 2)), log_mel.std(dim=(0, 2)))
    normal = front.normalize(log_mel)
    assert torch.allclose(normal.mean(dim=(0, 2)), torch.zeros(20), atol=1e-5)
    assert torch.allclose(front.denormalize(normal), log_mel, atol=1e-5)
    assert {"mean", "std"} == set(front.state_dict())  # the filterbank is rebuilt, not stored


def test_configs_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown vocoder type 'wavenet'"):
        vocoder_config({"type": "wavenet"})
    with pytest.raises(ValueError, match="unknown istft vocoder fields: width"):
        vocoder_config({"type": "istft", "width": 3})
    assert vocoder_config(TINY_MELGAN.to_dict()) == TINY_MELGAN
    with pytest.raises(ValueError, match="fmax"):
        MelSpec(sr=8000, fmax=6000.0)
    assert IstftVocoder(TINY_ISTFT).cfg.hop == 125
