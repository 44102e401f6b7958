"""``rig bench``: speed figures, printed (never asserted by tests).

``rig bench loops`` times the loop tools (warm) on a 4-s stereo 44.1 kHz loop, in the common case
(the engine made the content at the asked tempo with a short tail: crop, seam, loudness, limit) and
with a tempo change (time-stretch first), and the OSC round trip to a stand-in device on 127.0.0.1.

``rig bench gan`` times the GAN engine's four-latent stereo loop end to end (``generate``: mapping,
synthesis, vocoder, mix, repeat to bars) for the default network sizes and for a tiny config, with
random weights (speed does not depend on training), and the plain MelGAN vocoder for comparison.

``rig bench train`` times training steps on random data at the default sizes: StyleGAN2 (batch 8,
one generator and one discriminator update, with and without the lazy R1 step) and the iSTFT
vocoder (batch 8 of 0.5-s crops, reconstruction losses alone and with the discriminators).

``rig bench lora`` times a LoRA training step on the tiny pipeline, and projects Stable Audio
Open's full-size step from one full-size transformer block (10 s crops and the whole window).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from rig.config import Config
from rig.link import Link, LinkEvent
from rig.loops import loop_length, make_loop, warm_up
from rig.testing.signals import drum_signal
from rig.testing.standin import StandInDevice


def _median_ms(run: Callable[[], object], repeats: int) -> float:
    return 1000.0 * statistics.median(_seconds(run) for _ in range(repeats))


def bench_loops(config: Config) -> dict[str, float]:
    """Median warm milliseconds of :func:`make_loop` in the common and the stretch case."""
    settings, rate = config.audio, config.audio.sample_rate
    warm_up(settings)
    length = loop_length(120.0, 2, 4, rate)
    tail = int(settings.seam_ms * rate / 1000)
    source = drum_signal((length + tail) / rate, rate)
    common = _median_ms(lambda: make_loop(source, rate, 120.0, 2, 4, settings, 120.0, False), 20)
    stretched = _median_ms(lambda: make_loop(source, rate, 107.0, 2, 4, settings, 120.0, False), 5)
    trimmed = _median_ms(lambda: make_loop(source, rate, 120.0, 2, 4, settings, None, True), 5)
    return {
        "loop_tools_ms": round(common, 2),
        "loop_tools_stretch_ms": round(stretched, 2),
        "loop_tools_trim_fit_ms": round(trimmed, 2),
    }


def bench_osc(config: Config, pings: int = 200) -> dict[str, float]:
    """OSC round trip ``/rig/ping`` → ``/rig/pong`` to a stand-in device over UDP on 127.0.0.1."""
    pong = threading.Event()

    def on_event(event: LinkEvent) -> None:
        if event.kind == "pong":
            pong.set()

    device = StandInDevice(rig_port=0)  # bound now; told the rig's port once the link listens
    osc = dataclasses.replace(config.osc, host="127.0.0.1", port=device.port, listen_port=0)
    with tempfile.TemporaryDirectory() as root, Link(osc, Path(root)) as link:
        link.subscribe(on_event)
        device.rig_port = link.port
        with device:
            times = []
            for token in range(pings):
                pong.clear()
                start = time.perf_counter()
                link.ping(token)
                if pong.wait(1.0):
                    times.append(time.perf_counter() - start)
    if not times:
        raise RuntimeError("the stand-in device never answered on 127.0.0.1")
    times.sort()
    return {
        "osc_rtt_ms": round(1000 * statistics.median(times), 3),
        "osc_rtt_p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 3),
        "osc_lost": pings - len(times),
    }


def bench_gan(config: Config, repeats: int = 7) -> dict[str, Any]:
    """Real-time factor of the GAN engine (default and tiny sizes, and the default generator
    with the full-band 48 kHz vocoder) and peak memory.

    ``realtime_factor`` = seconds of stereo loop made per second of wall time (median of
    ``repeats`` warm generations); the ``*_ms`` figures split one generation into its stages.
    """
    import resource

    import torch

    from rig.engines.gan import GanEngine
    from rig.loop_model import LoopAudio, new_loop_model, save_loop_model
    from rig.nn.istft import IstftConfig
    from rig.nn.mel import MelSpec
    from rig.nn.melgan import MelGANConfig, remove_weight_norm
    from rig.nn.stylegan2 import GeneratorConfig
    from rig.nn.vocoder import build_vocoder
    from rig.synthesis import WRAP_FRAMES
    from rig.train.vocoder import default_vocoder

    if config.session.threads:
        torch.set_num_threads(config.session.threads)
    tiny_audio = LoopAudio(MelSpec(sr=8000, n_fft=500, hop=125, win=500, n_mels=20, fmax=4000.0))
    full_band = default_vocoder("istft", LoopAudio(), upsample=2)
    sizes = {
        "": (LoopAudio(), GeneratorConfig(), IstftConfig()),
        "full_band_": (LoopAudio(), GeneratorConfig(), full_band),  # 24 kHz mels → 48 kHz
        "tiny_": (
            tiny_audio,
            GeneratorConfig(
                z_dim=16, w_dim=16, mapping_layers=2, start=(5, 64), channels=(16, 8, 8)
            ),
            IstftConfig(n_mels=20, hop=125, n_fft=500, dim=16, layers=1, mlp_ratio=2),
        ),
    }
    figures: dict[str, Any] = {"threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        for prefix, (audio, gen_cfg, voc_cfg) in sizes.items():
            model = new_loop_model("bench", audio, gen_cfg, voc_cfg, {"bass": (-2, 2, "")})
            folder = save_loop_model(model, Path(tmp) / f"{prefix}model")
            paths = dataclasses.replace(config.paths, models=(folder,))
            engine = GanEngine(dataclasses.replace(config, paths=paths))
            figures |= {f"{prefix}{k}": v for k, v in _time_engine(engine, repeats).items()}
    melgan = remove_weight_norm(build_vocoder(MelGANConfig())).eval()
    mel = torch.randn(4, 80, LoopAudio().frames + 2 * WRAP_FRAMES)
    with torch.inference_mode():
        figures["plain_melgan_vocoder_ms"] = round(_median_ms(lambda: melgan(mel), 2), 1)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def _time_engine(engine: Any, repeats: int) -> dict[str, float]:
    """Median figures of ``repeats`` warm generations of the engine's only model."""
    import torch

    from rig.engines import Request
    from rig.prompt import Prompt

    model = engine.models["bench"]
    audio = model.audio
    request = Request(Prompt("bench", tempo=audio.bpm, bars=audio.bars), "gan", seed=1)
    total = statistics.median(
        _seconds(lambda: engine.generate(request, _no_progress)) for _ in range(repeats)
    )
    z = torch.randn(4, model.generator.cfg.z_dim)
    with torch.inference_mode():
        ws = model.generator.mapping(z)
        mapping_ms = _median_ms(lambda: model.generator.mapping(z), repeats)
    splits = [engine._render(model, ws, 0.7).seconds for _ in range(repeats)]
    stage = {k: 1000 * statistics.median(s[k] for s in splits) for k in splits[0]}
    return {
        "realtime_factor": round(audio.samples / audio.mel.sr / total, 2),
        "seconds_per_loop": round(total, 4),
        "mapping_ms": round(mapping_ms, 2),
        "synthesis_ms": round(stage["synthesis"], 1),
        "vocoder_ms": round(stage["vocoder"], 1),
        "mix_ms": round(stage["mix"], 2),
        "generator_mparams": round(_mparams(model.generator), 3),
        "vocoder_mparams": round(_mparams(model.vocoder), 3),
    }


def bench_diffusion(config: Config, repeats: int = 3) -> dict[str, Any]:
    """Where a diffusion take's time goes, on tiny random pipelines of both kinds (8 steps).

    Per kind: text encoding, one denoising step, VAE decode, the loop tools, the seconds of
    latent denoised, and the share of ``generate`` spent outside the pipeline call
    (``overhead_pct``, goal ≤ 5 %). ``sao_full_window_*``: Stable Audio Open denoising its whole
    window, as it does without ``diffusion.short_latents``.
    """
    from rig.engines import Request
    from rig.engines.diffusion import DiffusionEngine
    from rig.prompt import Prompt
    from rig.testing.tiny_pipelines import write_tiny

    figures: dict[str, Any] = {}
    request = Request(Prompt("dusty drums", tempo=120.0, bars=2), "sao", seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        folders = {kind: write_tiny(kind, Path(tmp) / kind) for kind in ("sao", "sa3")}
        for name, kind, short in (
            ("sao", "sao", True),
            ("sao_full_window", "sao", False),
            ("sa3", "sa3", True),
        ):
            changes: dict[str, Any] = {
                f"{kind}_steps": 8,
                f"{kind}_model": str(folders[kind]),
                "short_latents": short,
            }
            settings = dataclasses.replace(config.diffusion, **changes)
            engine = DiffusionEngine(dataclasses.replace(config, diffusion=settings), kind)
            figures |= {
                f"{name}_{k}": v
                for k, v in _time_diffusion(engine, request, config, repeats).items()
            }
    return figures


def _time_diffusion(engine: Any, request: Any, config: Config, repeats: int) -> dict[str, float]:
    pipe = engine.pipeline(None)
    spent: dict[str, float] = {"text": 0.0, "denoise": 0.0, "decode": 0.0}
    calls = {"denoise": 0}
    _time_module(pipe.text_encoder, spent, "text")
    _time_module(pipe.transformer, spent, "denoise", calls)
    decode = pipe.vae.decode

    def timed_decode(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return decode(*args, **kwargs)
        finally:
            spent["decode"] += time.perf_counter() - start

    pipe.vae.decode = timed_decode
    engine.generate(request, _no_progress)  # warm
    for key in spent:
        spent[key] = 0.0
    calls["denoise"] = 0
    totals, pipeline, tools = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        output = engine.generate(request, _no_progress)
        totals.append(time.perf_counter() - start)
        pipeline.append(engine.last_pipeline_s)
        loop = partial(
            make_loop,
            output.audio,
            output.sample_rate,
            120.0,
            2,
            4,
            config.audio,
            source_bpm=output.source_bpm,
        )
        tools.append(_seconds(loop))
    total = statistics.median(totals)
    return {
        "seconds_per_take": round(total + statistics.median(tools), 4),
        "text_encoding_ms": round(1000 * spent["text"] / repeats, 2),
        "denoise_step_ms": round(1000 * spent["denoise"] / max(1, calls["denoise"]), 2),
        "vae_decode_ms": round(1000 * spent["decode"] / repeats, 2),
        "loop_tools_ms": round(1000 * statistics.median(tools), 2),
        "overhead_pct": round(100 * (total - statistics.median(pipeline)) / total, 2),
        "latent_seconds": float(output.metadata["latent_seconds"]),
    }


def _time_module(
    module: Any, spent: dict[str, float], key: str, calls: dict[str, int] | None = None
) -> None:
    """Add each forward pass of ``module`` to ``spent[key]`` (and count it in ``calls``)."""
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(*_: Any) -> None:
        spent[key] += time.perf_counter() - started.pop()
        if calls is not None:
            calls[key] += 1

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _mparams(module: Any) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def _no_progress(step: int, total: int, note: str = "") -> None:
    pass


def bench_lora(config: Config, repeats: int = 3) -> dict[str, Any]:
    """Seconds per LoRA training step: the tiny random pipeline's whole step (batch 2, its
    window), and Stable Audio Open at full size projected from one full-size transformer block
    (1536 wide, 24 heads, LoRA on its attention) forward and backward at batch 2 — for the
    default 10 s crops and the whole 47.55 s window — times the model's 24 blocks (the
    embeddings and projections around them are left out)."""
    import numpy as np
    import soundfile
    import torch
    from diffusers import StableAudioDiTModel
    from peft import LoraConfig, inject_adapter_in_model

    from rig.testing.tiny_pipelines import write_tiny
    from rig.train import lora

    if config.session.threads:
        torch.set_num_threads(config.session.threads)
    figures: dict[str, Any] = {"threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = write_tiny("sao", root / "sao")
        noise = np.random.default_rng(0).standard_normal((8 * 8000, 2)).astype(np.float32)
        soundfile.write(root / "a.wav", 0.1 * noise, 8000)
        (root / "data.csv").write_text("file,caption\na.wav,noise, Tempo: 120, Key: A minor\n")
        settings = lora.LoraSettings(steps=2 + repeats, batch=2, rank=16, seconds=10.0)
        lora.train_lora(root / "data.csv", base, root / "run", settings)
        log = (root / "run" / "loss.jsonl").read_text().splitlines()
        times = [json.loads(line)["time"] for line in log]  # each step's end (first: warm-up)
        figures["tiny_step_s"] = statistics.median(np.diff(times[1:]))
    torch.manual_seed(0)
    block: Any = StableAudioDiTModel(num_layers=1)
    inject_adapter_in_model(
        LoraConfig(r=16, lora_alpha=16, target_modules=list(lora.TARGETS)), block
    )
    block.requires_grad_(False)
    for name, param in block.named_parameters():
        param.requires_grad_("lora_" in name)
    for label, seconds in (("10s", 10.0), ("47s", 47.55)):
        frames = math.ceil(seconds * 44100 / 2048)
        run = partial(_full_block_step, block, frames)
        figures[f"full_block_{label}_s"] = _median_ms(run, repeats) / 1000
        figures[f"full_projected_step_{label}_s"] = 24 * figures[f"full_block_{label}_s"]
    return {f"lora_{k}" if k != "threads" else k: round(v, 3) if isinstance(v, float) else v
            for k, v in figures.items()}  # fmt: skip


def _full_block_step(block: Any, frames: int) -> None:
    """One forward and backward of a one-block full-size Stable Audio DiT at batch 2."""
    import torch
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    rotary = get_1d_rotary_pos_embed(32, frames + 1, use_real=True, repeat_interleave_real=False)
    out = block(
        torch.randn(2, 64, frames),
        torch.rand(2),
        encoder_hidden_states=torch.randn(2, 130, 768),
        global_hidden_states=torch.randn(2, 1, 1536),
        rotary_embedding=rotary,
        return_dict=False,
    )[0]
    out.square().mean().backward()


def bench_train(config: Config, repeats: int = 5) -> dict[str, Any]:
    """Seconds per training step of StyleGAN2 and the vocoder (see the module docstring)."""
    import torch

    from rig.latents import training_rng
    from rig.loop_model import LoopAudio
    from rig.nn.mel import MelFrontEnd
    from rig.nn.melgan import MultiScaleDiscriminator
    from rig.nn.stylegan2 import Discriminator, Generator, GeneratorConfig
    from rig.nn.vocoder import build_vocoder
    from rig.train import gan, vocoder

    if config.session.threads:
        torch.set_num_threads(config.session.threads)
    device = torch.device("cpu")
    cfg = GeneratorConfig()
    G, D = Generator(cfg), Discriminator(cfg)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    settings = gan.GanSettings(batch=8)
    real = torch.randn(settings.batch, 1, *cfg.output_shape)
    figures: dict[str, Any] = {"threads": torch.get_num_threads()}
    for name, step in (("stylegan2_step_s", 1), ("stylegan2_r1_step_s", 0)):
        latents = training_rng(0, step)
        run = partial(gan._train_step, G, D, opt_g, opt_d, real, step, settings, device, latents)
        figures[name] = _median_ms(run, repeats) / 1000
    audio = LoopAudio()
    defaults = vocoder.VocoderSettings()
    rate = audio.mel.sr * defaults.upsample  # the shipped full-band vocoder
    fronts = (MelFrontEnd(audio.mel, rate), vocoder.full_band_mel(rate))
    net = build_vocoder(vocoder.default_vocoder("istft", audio, defaults.upsample))
    critic = MultiScaleDiscriminator()
    opt_v, opt_c = torch.optim.Adam(net.parameters()), torch.optim.Adam(critic.parameters())
    crops = torch.randn(8, defaults.segment_frames * fronts[0].spec.hop) * 0.1
    for name, adversarial_from in (("vocoder_step_s", 10**9), ("vocoder_adversarial_step_s", 0)):
        voc_settings = vocoder.VocoderSettings(adversarial_from=adversarial_from)
        run = partial(
            vocoder._train_step, net, critic, opt_v, opt_c, fronts, crops, 1, voc_settings
        )
        figures[name] = _median_ms(run, repeats) / 1000
    figures["stylegan2_steps_per_hour"] = round(3600 / figures["stylegan2_step_s"])
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}


def _sound(config: Config) -> dict[str, Any]:
    """``rig bench sound`` (:mod:`rig.bench_sound`, imported only when asked)."""
    from rig.bench_sound import bench_sound

    return bench_sound(config)


def _companion(config: Config) -> dict[str, Any]:
    """``rig bench companion`` (:mod:`rig.bench_remote`, imported only when asked)."""
    from rig.bench_remote import bench_companion

    return bench_companion(config)


def _evolve(config: Config) -> dict[str, Any]:
    """``rig bench evolve`` (:mod:`rig.bench_evolve`, imported only when asked)."""
    from rig.bench_evolve import bench_evolve

    return bench_evolve(config)


BENCHES: dict[str, Callable[[Config], dict[str, Any]]] = {
    "loops": lambda config: {**bench_loops(config), **bench_osc(config)},
    "gan": bench_gan,
    "diffusion": bench_diffusion,
    "train": bench_train,
    "lora": bench_lora,
    "sound": _sound,
    "companion": _companion,
    "evolve": _evolve,
}


def run_bench(what: str, config: Config, as_json: bool = False) -> int:
    """Run one benchmark and print its figures (one JSON object with ``as_json``)."""
    figures = BENCHES[what](config)
    if as_json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:<24} {value}")
    return 0
