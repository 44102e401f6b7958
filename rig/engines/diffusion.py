"""Text-to-audio diffusion engines through diffusers: Stable Audio Open 1.0 (``sao``,
``StableAudioPipeline``) and Stable Audio 3 (``sa3``, ``StableAudio3Pipeline``).

Weights are the user's: a local diffusers folder (``model_index.json`` + components) or a hub id
they have access to, named by ``diffusion.sao_model`` / ``diffusion.sa3_model`` or by the request's
``model``. Nothing is bundled or fetched by the tests. One generation:

* text: the structured prompt formatted by ``diffusion.template`` (the performer's Tempo, Key,
  Genre and Instrument stay in the text, as fine-tunes are trained that way);
* length: the asked bars at the asked tempo plus ``diffusion.tail_s``, which the loop tools trim.
  Stable Audio Open's pipeline denoises its full 47 s latent whatever the length asked; with
  ``diffusion.short_latents`` (the default) the engine hands it latents of the asked length
  instead (the rotary embedding is sized from them), 6-10x less work for a 2-bar loop. Stable
  Audio 3 denoises only the asked duration itself. The take records ``latent_seconds``;
* sampling: each engine its own steps, guidance and negative prompt (``diffusion.sao_*``,
  ``diffusion.sa3_*``), the live controls ``guidance`` and ``steps`` over them, and a take's
  recorded settings over both (Regenerate makes the same take);
* ``diffusion.variations`` waveforms per call; with four and ``diffusion.spread`` > 0 they are
  mixed to one stereo loop like the GAN engine's four latents;
* progress after every denoising step; a cancelled request stops at the next step.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rig.compute import pick_device, pick_dtype
from rig.engines.audio_init import check_strength, read_init_audio, sao_start
from rig.engines.base import (
    CHANNELS,
    EngineError,
    EngineOutput,
    ProgressFn,
    Request,
    output_channels,
)
from rig.mix import stereo_mix
from rig.prompt import Prompt, format_prompt

if TYPE_CHECKING:
    from rig.config import Config, DiffusionConfig

log = logging.getLogger(__name__)

PIPELINES = {"sao": "StableAudioPipeline", "sa3": "StableAudio3Pipeline"}
NAMES = {"sao": "Stable Audio Open 1.0", "sa3": "Stable Audio 3"}
# The schedulers that feed each model the noise conditioning it was trained with. Stable Audio
# Open's transformer takes the cosine scheduler's time atan(σ)·2/π in [0, 1]; an EDM scheduler
# feeds it c_noise = ¼·ln σ (1.55 … −0.30), which it never saw. Stable Audio 3's pipeline sets
# flow-matching sigmas, which only the flow-match Euler scheduler accepts.
COMPATIBLE_SCHEDULERS = {
    "sao": ("CosineDPMSolverMultistepScheduler",),
    "sa3": ("FlowMatchEulerDiscreteScheduler",),
}


def prompt_text(prompt: Prompt, template: str) -> str:
    """The text sent to the model: ``template`` with ``{prompt}`` (the structured prompt without
    its length: Bars and Meter say how long the loop is, not how it sounds, and are in the text
    only where the template asks for them), ``{text}``, ``{tempo}``, ``{key}``, ``{genre}``,
    ``{instrument}``, ``{bars}`` and ``{meter}``."""
    fields = {
        "prompt": format_prompt(replace(prompt, bars=None, meter=None)),
        "text": prompt.text,
        "tempo": f"{prompt.tempo:g}" if prompt.tempo else "",
        "key": prompt.key or "",
        "genre": prompt.genre or "",
        "instrument": prompt.instrument or "",
        "bars": prompt.bars or "",
        "meter": prompt.meter or "",
    }
    try:
        return template.format(**fields).strip(" ,")
    except (KeyError, IndexError, ValueError) as error:
        raise EngineError(
            f"diffusion.template {template!r} is not valid: {error}; use "
            f"{', '.join('{' + k + '}' for k in fields)}"
        ) from None


def make_scheduler(kind: str, name: str, config: Any) -> Any:
    """A diffusers scheduler class by name for engine ``kind``, built from the pipeline
    scheduler's config.

    Raises:
        EngineError: no scheduler of that name, or one that would feed the model noise levels
            it was not trained with.
    """
    import diffusers

    compatible = COMPATIBLE_SCHEDULERS[kind]
    cls = getattr(diffusers, name, None)
    if cls is None or not name.endswith("Scheduler"):
        raise EngineError(
            f"diffusion.scheduler {name!r} is not a diffusers scheduler; "
            f"{NAMES[kind]} samples with {', '.join(compatible)}"
        )
    if name not in compatible:
        raise EngineError(
            f"diffusion.scheduler {name!r} does not give {NAMES[kind]} the noise levels it was "
            f"trained with; use {' or '.join(compatible)} (or leave the setting empty)"
        )
    return cls.from_config(config)


def is_local(model: str) -> bool:
    """A filesystem path rather than a hub id."""
    return model.startswith(("/", ".", "~")) or Path(model).expanduser().exists()


def load_pipeline(kind: str, model: str, dtype: torch.dtype) -> Any:
    """Load a diffusers pipeline of ``kind`` from a folder or hub id.

    Raises:
        EngineError: what to put where — missing folder, not a pipeline folder, not in the cache
            while offline, a gated or unknown repository, or diffusers missing.
    """
    try:
        import diffusers
        import transformers
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    except ImportError as error:
        raise EngineError(
            f"the {kind} engine needs diffusers ({error}); run `make run` or "
            "pip install -e '.[diffusion]'"
        ) from None
    diffusers.utils.logging.disable_progress_bar()  # the rig reports progress itself
    transformers.utils.logging.disable_progress_bar()
    name, setting = NAMES[kind], f"diffusion.{kind}_model"
    if is_local(model):
        folder = Path(model).expanduser()
        if not (folder / "model_index.json").is_file():
            what = (
                "is not a diffusers pipeline folder (no model_index.json)"
                if folder.is_dir()
                else "does not exist"
            )
            raise EngineError(
                f"{name} weights: {folder} {what}. Put the pipeline folder there "
                f"(save_pretrained / huggingface-cli download) or set {setting}"
            )
        model = str(folder)
    try:
        return getattr(diffusers, PIPELINES[kind]).from_pretrained(model, dtype=dtype)
    except GatedRepoError:
        raise EngineError(
            f"{name}: {model} is gated. Accept its licence on "
            f"https://huggingface.co/{model}, run `huggingface-cli login`, download "
            f"it once, or point {setting} at a local folder"
        ) from None
    except RepositoryNotFoundError:
        raise EngineError(
            f"{name}: no repository {model!r} (or no access to it); set "
            f"{setting} to a hub id you can read or a local folder"
        ) from None
    except (OSError, ValueError) as error:
        raise EngineError(
            f"{name}: {model} could not be loaded ({error}). Offline, a hub id "
            "must already be in the cache (huggingface-cli download it once with a "
            f"network) — or point {setting} at a local diffusers folder"
        ) from None


class DiffusionEngine:
    """One engine kind (``sao`` or ``sa3``); pipelines load on first use and stay loaded."""

    def __init__(self, config: Config, kind: str) -> None:
        if kind not in PIPELINES:
            raise EngineError(f"unknown diffusion engine {kind!r}; known: {', '.join(PIPELINES)}")
        self.kind = kind
        self.settings: DiffusionConfig = config.diffusion
        self.device = pick_device(self.settings.device)
        self.dtype = engine_dtype(kind, self.device, self.settings.precision)
        if config.session.threads:
            torch.set_num_threads(config.session.threads)
        if self.device.type == "cpu":
            log.warning("%s runs on the CPU: it works, slowly (minutes a loop)", NAMES[kind])
        self._pipelines: dict[str, Any] = {}
        self.last_pipeline_s = 0.0  # wall time of the last pipeline call (for rig bench)

    def pipeline(self, model: str | None) -> Any:
        """The loaded pipeline for ``model`` (default: the configured one)."""
        model = model or self._model_name()
        if model not in self._pipelines:
            self._pipelines[model] = self._prepare(load_pipeline(self.kind, model, self.dtype))
        return self._pipelines[model]

    def _prepare(self, pipe: Any) -> Any:
        pipe.set_progress_bar_config(disable=True)
        if self.settings.scheduler:
            pipe.scheduler = make_scheduler(
                self.kind, self.settings.scheduler, pipe.scheduler.config
            )
        if self.settings.cpu_offload and self.device.type == "cuda":
            pipe.enable_model_cpu_offload(device=self.device)  # cuda:N, not always cuda:0
        else:
            pipe.to(self.device)
        if self.settings.loras:
            from rig.adapters import AdapterError, AdapterMix, parse_loras

            try:
                pipe.rig_adapters = AdapterMix(pipe.transformer, parse_loras(self.settings.loras))
            except AdapterError as error:
                raise EngineError(str(error)) from None
        if self.settings.compile:
            pipe.transformer = torch.compile(pipe.transformer)
        return pipe

    def generate(self, request: Request, progress: ProgressFn) -> EngineOutput:
        """Stereo (or quad) audio for ``request`` (before the loop tools): the first waveform,
        the others as :attr:`EngineOutput.variations` — or, with four and a spread, one stereo
        mix."""
        prompt = request.prompt
        if prompt.tempo is None or prompt.bars is None:
            raise EngineError("the diffusion engines need the prompt's tempo and bars")
        pipe = self.pipeline(request.model)
        loras = self._set_adapter_strengths(pipe, request)
        seconds = prompt.bars * prompt.beats_per_bar * 60.0 / prompt.tempo + self.settings.tail_s
        text = prompt_text(prompt, self.settings.template)
        seed = request.seed if request.seed is not None else 0
        choices = self._choices(request)
        # quad: two stereo generations per take, the second for the rear pair
        choices["pairs"] = output_channels(request.recipe) // 2
        arguments = self._arguments(pipe, text, seconds, seed, choices, progress)
        runner, scheduler = pipe, None
        if choices["init_audio"]:
            runner, scheduler = self._from_audio(pipe, arguments, seconds, choices, progress)
        start = time.perf_counter()
        audios = _run(runner, arguments, scheduler)  # [N, channels, samples]
        self.last_pipeline_s = time.perf_counter() - start
        # the steps that ran: asked, or the pipeline's own choice (SA3: from its scheduler)
        ran_steps = arguments.get("num_inference_steps") or int(getattr(runner, "num_timesteps", 0))
        metadata = {
            "model": request.model or getattr(pipe, "name_or_path", ""),
            "pipeline": PIPELINES[self.kind],
            "text": text,
            "seed": seed,
            "steps": ran_steps,
            "guidance": choices["guidance"],
            "negative_prompt": choices["negative_prompt"],
            "variations": choices["variations"],
            "spread": choices["spread"],
            "seconds": round(seconds, 4),
            "latent_seconds": round(self._latent_seconds(pipe, arguments, seconds), 4),
            **(
                {"init_audio": choices["init_audio"], "strength": choices["strength"]}
                if choices["init_audio"]
                else {}
            ),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        replay = replace(
            request.recipe,
            model=request.model or self._model_name(),
            seed=seed,
            settings={
                **{k: v for k, v in choices.items() if k not in ("variation", "pairs")},
                **({CHANNELS: 4} if choices["pairs"] == 2 else {}),
                "steps": ran_steps,
                "scheduler": type(pipe.scheduler).__name__,
                "loras": loras,
            },
        )
        output = EngineOutput(
            np.zeros((2, 0), np.float32),
            int(pipe.vae.config.sampling_rate),
            metadata,
            source_bpm=prompt.tempo,
            bar_aligned=False,
            replay=replay,
        )
        return self._split(audios, output, choices)

    def _arguments(
        self,
        pipe: Any,
        text: str,
        seconds: float,
        seed: int,
        choices: dict[str, Any],
        progress: ProgressFn,
    ) -> dict[str, Any]:
        """The pipeline call's arguments."""
        generator = torch.Generator().manual_seed(seed)
        arguments = {
            "prompt": text,
            "negative_prompt": choices["negative_prompt"] or None,
            "guidance_scale": choices["guidance"],
            "num_waveforms_per_prompt": choices["variations"] * choices["pairs"],
            "generator": generator,
            "output_type": "pt",
            **self._length_and_steps(pipe, seconds, choices["steps"] or None, progress),
        }
        if self.kind == "sao" and self.settings.short_latents:
            count = choices["variations"] * choices["pairs"]
            arguments["latents"] = short_latents(pipe, seconds, count, generator)
        return arguments

    def _from_audio(
        self,
        pipe: Any,
        arguments: dict[str, Any],
        seconds: float,
        choices: dict[str, Any],
        progress: ProgressFn,
    ) -> tuple[Any, Any]:
        """Start from the take ``choices["init_audio"]``: edits ``arguments``; returns the
        pipeline to call and the scheduler to call it with (None: its own)."""
        rate, channels = int(pipe.vae.config.sampling_rate), int(pipe.vae.config.audio_channels)
        path, strength = Path(choices["init_audio"]), choices["strength"]
        if self.kind == "sa3":
            arguments.pop("guidance_scale")
            arguments.pop("negative_prompt")
            arguments["audio"] = read_init_audio(path, rate, round(seconds * rate), channels)
            arguments["init_noise_level"] = strength
            return self._audio_to_audio(pipe), None
        frames = (
            arguments["latents"].shape[-1]
            if "latents" in arguments
            else pipe.transformer.config.sample_size
        )
        audio = read_init_audio(path, rate, frames * pipe.vae.hop_length, channels)
        steps = int(arguments["num_inference_steps"])
        latents, scheduler, run = sao_start(
            pipe,
            audio,
            steps,
            strength,
            choices["variations"] * choices["pairs"],
            arguments["generator"],
        )

        def step(index: int, timestep: Any, latents: Any) -> None:
            progress(index + 1, run, "denoising from the take")

        arguments.update(latents=latents, callback=step)
        return pipe, scheduler

    def _audio_to_audio(self, pipe: Any) -> Any:
        """Stable Audio 3's audio-to-audio pipeline on ``pipe``'s components (made once)."""
        if getattr(pipe, "rig_audio_to_audio", None) is None:
            import diffusers

            a2a: Any = diffusers.StableAudio3AudioToAudioPipeline(**pipe.components)
            a2a.set_progress_bar_config(disable=True)
            pipe.rig_audio_to_audio = a2a
        return pipe.rig_audio_to_audio

    def _split(
        self, audios: np.ndarray, template: EngineOutput, choices: dict[str, Any]
    ) -> EngineOutput:
        """``[N·pairs, C, T]`` waveforms → the output: four stereo ones with a spread mixed to one
        stereo loop; otherwise each its own take (variation k of N, its replay picks k; quad:
        waveforms 2k-1 and 2k as the front and rear pair), the first for the slot — or only the
        recorded variation when a take is made again."""
        pairs = choices["pairs"]
        audios = np.stack([
            np.concatenate([_stereo(w) for w in audios[i : i + pairs]])
            for i in range(0, audios.shape[0], pairs)
        ])  # fmt: skip
        count = audios.shape[0]
        if count == 4 and choices["spread"] > 0 and pairs == 1:
            return replace(template, audio=stereo_mix(audios.mean(axis=1), choices["spread"]))
        if count == 1:
            return replace(template, audio=audios[0])
        assert template.replay is not None
        picks = [choices["variation"]] if choices["variation"] else range(1, count + 1)
        outputs = [
            replace(
                template,
                audio=audios[k - 1],
                metadata={**template.metadata, "variation": k},
                replay=replace(
                    template.replay, settings={**template.replay.settings, "variation": k}
                ),
            )
            for k in picks
        ]
        return replace(outputs[0], variations=tuple(outputs[1:]))

    def _choices(self, request: Request) -> dict[str, Any]:
        """Steps, guidance and negative prompt: the request's recorded settings (a take made
        again) over its live controls over this engine's configured defaults; variations and
        spread: recorded over configured; the variation a take made again picks (0: all).

        Raises:
            EngineError: a recorded variation outside 1…variations.
        """
        defaults = {
            name: getattr(self.settings, f"{self.kind}_{name}")
            for name in ("steps", "guidance", "negative_prompt")
        }
        chosen = {**defaults, **dict(request.controls), **dict(request.settings)}
        recorded = request.settings
        choices: dict[str, Any] = {
            "steps": round(float(chosen["steps"] or 0)),
            "guidance": float(chosen["guidance"]),
            "negative_prompt": str(chosen["negative_prompt"] or ""),
            "variations": int(recorded.get("variations", self.settings.variations)),
            "spread": float(recorded.get("spread", self.settings.spread)),
            "variation": int(recorded.get("variation", 0)),
            "init_audio": str(recorded.get("init_audio") or ""),
            "strength": check_strength(float(recorded.get("strength", 1.0))),
        }
        if not 0 <= choices["variation"] <= choices["variations"]:
            raise EngineError(
                f"variation {choices['variation']} of a take made with "
                f"{choices['variations']} variations"
            )
        return choices

    def _set_adapter_strengths(self, pipe: Any, request: Request) -> list[str]:
        """Re-merge the LoRAs at this request's strengths: recorded ones (a take made again) over
        the live controls (``lora_<folder>``) over ``diffusion.loras``; returns them as
        ``"folder:strength"``."""
        from rig.adapters import adapter_control, parse_loras

        mix = getattr(pipe, "rig_adapters", None)
        loaded = mix.folders if mix is not None else []
        recorded = dict(parse_loras(tuple(request.settings.get("loras") or ())))
        missing = [f"{f}" for f, strength in recorded.items() if strength and f not in loaded]
        if missing:
            raise EngineError(
                f"this take was made with the LoRA {', '.join(missing)}, which is not loaded: "
                "add it to diffusion.loras to make the take again"
            )
        if mix is None:
            return []
        strengths = tuple(
            recorded.get(folder, request.controls.get(adapter_control(folder), configured))
            for folder, configured in zip(mix.folders, mix.configured, strict=True)
        )
        mix.set_strengths(strengths)
        return [
            f"{folder}:{strength:g}"
            for folder, strength in zip(mix.folders, strengths, strict=True)
        ]

    def _latent_seconds(self, pipe: Any, arguments: dict[str, Any], seconds: float) -> float:
        """Seconds of audio the sampler denoised: the given latents', Stable Audio Open's full
        window, or Stable Audio 3's asked duration."""
        if self.kind == "sa3":
            return seconds
        frames = (
            arguments["latents"].shape[-1]
            if "latents" in arguments
            else pipe.transformer.config.sample_size
        )
        return float(frames * pipe.vae.hop_length / pipe.vae.config.sampling_rate)

    def _model_name(self) -> str:
        return self.settings.sao_model if self.kind == "sao" else self.settings.sa3_model

    def _length_and_steps(
        self, pipe: Any, seconds: float, steps: int | None, progress: ProgressFn
    ) -> dict[str, Any]:
        """The engine-specific arguments: length, step count and the per-step callback."""
        if self.kind == "sao":
            longest = (
                pipe.transformer.config.sample_size
                * pipe.vae.hop_length
                / pipe.vae.config.sampling_rate
            )
            if seconds > longest:
                raise EngineError(
                    f"{seconds:.1f} s is longer than Stable Audio Open's "
                    f"{longest:.1f} s: ask fewer bars or a faster tempo"
                )
            total = steps or 100

            def step(index: int, timestep: Any, latents: Any) -> None:
                progress(index + 1, total, "denoising")

            return {
                "audio_end_in_s": seconds,
                "num_inference_steps": total,
                "callback": step,
                "callback_steps": 1,
            }

        def on_step_end(pipeline: Any, index: int, timestep: Any, state: dict) -> dict:
            progress(index + 1, int(pipeline.num_timesteps), "denoising")
            return state

        arguments = {"duration": seconds, "callback_on_step_end": on_step_end}
        if steps:
            arguments["num_inference_steps"] = steps
        return arguments


def _run(runner: Any, arguments: dict[str, Any], scheduler: Any) -> np.ndarray:
    """Call the pipeline ``runner`` (with ``scheduler`` in place of its own for this call);
    returns ``[N, channels, samples]`` float32."""
    own = runner.scheduler
    if scheduler is not None:
        runner.scheduler = scheduler
    try:
        with torch.inference_mode():
            return runner(**arguments).audios.float().cpu().numpy()
    finally:
        runner.scheduler = own


def _stereo(waveform: np.ndarray) -> np.ndarray:
    """``[C, T]`` → ``[2, T]``: mono doubled, more channels cut to the first two."""
    return np.repeat(waveform, 2, axis=0) if waveform.shape[0] == 1 else waveform[:2]


def short_latents(
    pipe: Any, seconds: float, variations: int, generator: torch.Generator
) -> torch.Tensor:
    """Initial noise for ``seconds`` of Stable Audio Open audio: ``[variations, channels,
    frames]`` with frames = ⌈seconds · rate / hop⌉ latent frames (not the model's full window),
    drawn from ``generator`` on the CPU so a seed gives the same take on any device."""
    frames = math.ceil(seconds * pipe.vae.config.sampling_rate / pipe.vae.hop_length)
    shape = (variations, pipe.transformer.config.in_channels, frames)
    return torch.randn(shape, generator=generator).to(pipe.transformer.dtype)


def engine_dtype(kind: str, device: torch.device, precision: str) -> torch.dtype:
    """Compute dtype: as :func:`rig.compute.pick_dtype`, except that ``"auto"`` runs Stable
    Audio Open in fp16 on CUDA, as diffusers' own example for it does."""
    if kind == "sao" and precision == "auto" and device.type == "cuda":
        return torch.float16
    return pick_dtype(device, precision)


def sao(config: Config) -> DiffusionEngine:
    """The ``sao`` engine (Stable Audio Open 1.0)."""
    return DiffusionEngine(config, "sao")


def sa3(config: Config) -> DiffusionEngine:
    """The ``sa3`` engine (Stable Audio 3)."""
    return DiffusionEngine(config, "sa3")
