"""The GAN loop engine: StyleGAN2 spectrogram generators + vocoders, one latent state per model.

A generation for model M:

1. seed → z ``[1, z_dim]`` → mapping (truncation ψ) → target w, or ``Request.target`` when given;
2. morph: ``w ← w + morph · (target − w)`` (the first generation of a model jumps to the target),
   so repeated generations drift instead of jumping;
3. directions: ``w' = w + Σ amount_d · v_d`` from prompt words plus the controls of the same name;
4. four latents ``w' + variation · σ_w · ε_i`` (ε from the seed, σ_w the model's typical spread
   of w), four spectrograms, four vocoded loops, mixed to stereo with ``spread`` — or, for a
   quad recipe (``settings["channels"] = 4``), each latent toward its own speaker.

The sidecar gets every number needed to redo it: a request with ``target`` = the recorded ``w``,
``controls["morph"] = 1`` and the same seed, prompt and controls regenerates the same audio on the
same device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rig.compute import autocast, pick_device, pick_dtype
from rig.engines.base import EngineError, EngineOutput, ProgressFn, Request, output_channels
from rig.engines.gan_kind import CORE_PARAMS, merge_direction
from rig.engines.gan_prompt import choose_model, prompt_words, word_amounts
from rig.latents import measurement_latents
from rig.loop_model import CheckpointError, LoopModel, load_loop_model
from rig.params import Param, ParamError, check_controls
from rig.release import find_model_folders
from rig.synthesis import Rendered, render, repeat_to

if TYPE_CHECKING:
    from rig.config import Config

log = logging.getLogger(__name__)
FROM_W = "from_w"  # a recipe setting: the w a morph starts from (w_dim numbers)

LATENTS = 4  # spectrograms per stereo loop
TAIL_S = 0.1  # seconds of the loop's own start appended, for the loop tools' seam search
SPREAD_SAMPLES = 64  # latents drawn at load to measure a model's typical spread of w


@dataclass
class LatentState:
    """Where a model's latent w is now (None until its first generation)."""

    w: torch.Tensor | None = None  # [w_dim]
    generations: int = 0


class GanEngine:
    """Holds every loop model at once, each with its own :class:`LatentState`."""

    def __init__(self, config: Config, warm: bool = True) -> None:
        if config.session.threads:
            torch.set_num_threads(config.session.threads)
        self.device = pick_device(config.gan.device)
        self.dtype = pick_dtype(self.device, config.gan.precision)
        self.models: dict[str, LoopModel] = {}
        self.states: dict[str, LatentState] = {}
        self.w_spread: dict[str, float] = {}
        self.problems: list[str] = []
        self.current: str | None = None
        for folder in find_model_folders(config.paths.models):
            try:
                self.add_model(folder, warm)
            except (CheckpointError, OSError) as error:
                self.problems.append(str(error))
                log.warning("model %s skipped: %s", folder, error)
        self.roots = config.paths.models

    def add_model(self, folder: Path, warm: bool = True) -> str:
        """Load a release folder; its name must be new. Returns the name."""
        model = load_loop_model(folder, self.device)
        if model.name in self.models:
            raise CheckpointError(
                f"{folder}: a model named {model.name!r} is already loaded "
                f"from {self.models[model.name].folder}"
            )
        clash = sorted(set(model.directions) & {p.name for p in CORE_PARAMS})
        if clash:
            raise CheckpointError(f"{folder}: direction names {clash} clash with core controls")
        self.models[model.name] = model
        self.states[model.name] = LatentState()
        self.w_spread[model.name] = self._measure_spread(model)
        if warm:
            self._render(model, model.generator.mapping.w_avg[None].expand(LATENTS, -1), 0.5)
        return model.name

    def params(self, model: str | None = None) -> list[Param]:
        """The control schema: core controls, then the directions of ``model`` (or of all)."""
        directions: dict[str, Param] = {}
        for name in [model] if model else sorted(self.models):
            for key, d in self.models[name].directions.items():
                merge_direction(directions, key, d.low, d.high, d.description)
        return [*CORE_PARAMS, *directions.values()]

    def generate(self, request: Request, progress: ProgressFn) -> EngineOutput:
        """One stereo loop for ``request`` (see the module docstring)."""
        name = self._model_for(request)
        model = self.models[name]
        controls = self._controls(request, name)
        seed = request.seed if request.seed is not None else 0
        progress(0, 3, f"{name}: mapping")
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(1, model.generator.cfg.z_dim, generator=rng)
        eps = torch.randn(LATENTS, model.generator.cfg.w_dim, generator=rng)
        target = self._target(model, z, request.target, controls["truncation"])
        state = self.states[name]
        start = self._start(model, request, state)
        w = target if start is None else torch.lerp(start, target, controls["morph"])
        asked = word_amounts(prompt_words(request.prompt), model.directions)
        amounts = {
            key: _clamp_amount(model, key, asked.get(key, 0.0) + controls[key])
            for key in model.directions
        }
        shifted = w.clone()
        for key, amount in amounts.items():
            shifted += amount * model.directions[key].vector
        scale = controls["variation"] * self.w_spread[name]
        ws = shifted[None] + scale * eps.to(self.device)
        progress(1, 3, f"{name}: synthesis and vocoder")
        tempo = rendered_tempo(request.prompt.tempo, model.audio.bpm)
        channels = output_channels(request.recipe)
        rendered = self._render(model, ws, controls["spread"], tempo, channels)
        progress(2, 3, f"{name}: mix")
        state.w, state.generations = w, state.generations + 1
        self.current = name
        audio = self._fit(model, rendered.audio, request, tempo)
        progress(3, 3, f"{name}: done")
        metadata = {
            "model": name,
            "w": [float(x) for x in w.cpu()],
            "target": [float(x) for x in target.cpu()],
            "directions": {k: v for k, v in amounts.items() if v},
            "seed": seed,
            "latents": LATENTS,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "generation": state.generations,
            **{k: controls[k] for k in ("morph", "variation", "spread", "truncation")},
        }
        # Landing on w exactly (morph 1) with the same seed, controls and prompt makes this again.
        replay = replace(
            request.recipe,
            model=name,
            seed=seed,
            controls={**controls, "morph": 1.0},
            target=tuple(float(x) for x in w.cpu()),
            settings={k: v for k, v in request.recipe.settings.items() if k != FROM_W},
        )
        return EngineOutput(
            audio,
            model.sample_rate,
            metadata,
            source_bpm=tempo,  # the loop tools stretch only a faster tempo (rendered_tempo)
            bar_aligned=True,
            spectrogram=rendered.spectrogram,
            replay=replay,
        )

    # -- steps ---------------------------------------------------------------------------------
    def _model_for(self, request: Request) -> str:
        if request.model is None and not self.models:
            where = ", ".join(str(p) for p in self.roots)
            found = "; ".join(self.problems) or "no model folders there"
            raise EngineError(
                f"the gan engine found no loadable loop model in {where} ({found}); "
                "put release folders (config.json + *.safetensors) there, set paths.models, "
                "or name a folder with --model"
            )
        if request.model is None:
            return choose_model(self.models, request.prompt, self.current)[0]
        if request.model in self.models:
            return request.model
        folder = Path(request.model)
        if (folder / "config.json").is_file():
            for name, model in self.models.items():
                if model.folder is not None and model.folder.resolve() == folder.resolve():
                    return name
            try:
                return self.add_model(folder)
            except (CheckpointError, OSError) as error:
                raise EngineError(str(error)) from None
        raise EngineError(
            f"no gan model named {request.model!r}; loaded: "
            f"{', '.join(sorted(self.models))} (or give a release folder's path)"
        )

    def _controls(self, request: Request, name: str) -> dict[str, float]:
        """The request's controls checked against every loaded model's schema (the UI shows
        them all); directions the chosen model lacks are then simply not applied."""
        try:
            return check_controls(self.params(), request.controls)
        except ParamError as error:
            raise EngineError(f"model {name!r}: {error}") from None

    def _start(self, model: LoopModel, request: Request, state: LatentState) -> torch.Tensor | None:
        """Where the morph starts: ``settings["from_w"]`` when given (an evolving slot's path,
        independent of other generations), else the model's last w (None before its first)."""
        given = request.recipe.settings.get(FROM_W)
        if given is None:
            return state.w
        if not isinstance(given, list | tuple):
            raise EngineError(f"{FROM_W} must be a list of {model.generator.cfg.w_dim} numbers")
        return self._target(model, torch.empty(0), tuple(given), 0.0)

    def _target(
        self, model: LoopModel, z: torch.Tensor, given: tuple[float, ...] | None, psi: float
    ) -> torch.Tensor:
        if given is None:
            with autocast(self.device, torch.float32):
                return model.generator.mapping(z.to(self.device), psi)[0]
        target = torch.tensor(given, dtype=torch.float32, device=self.device)
        if target.shape != (model.generator.cfg.w_dim,) or not torch.isfinite(target).all():
            raise EngineError(
                f"a latent (target, {FROM_W}) must be {model.generator.cfg.w_dim} finite numbers "
                f"for model {model.name!r}, got {len(given)}"
            )
        return target

    def _render(
        self,
        model: LoopModel,
        ws: torch.Tensor,
        spread: float,
        bpm: float | None = None,
        channels: int = 2,
    ) -> Rendered:
        return render(model, ws.to(self.device), spread, "const", self.dtype, bpm, channels)

    def _fit(self, model: LoopModel, loop: np.ndarray, request: Request, bpm: float) -> np.ndarray:
        """The loop (rendered at ``bpm``) repeated to the asked bars and meter plus a short
        tail."""
        prompt = request.prompt
        bars = prompt.bars or model.audio.bars
        beats = bars * (prompt.beats_per_bar if prompt.meter else model.audio.beats_per_bar)
        seconds = beats * 60.0 / bpm + TAIL_S
        return repeat_to(loop, round(seconds * model.sample_rate))

    def _measure_spread(self, model: LoopModel) -> float:
        """RMS per-dimension distance of mapped latents from ``w_avg`` (measurement draw 0)."""
        z = measurement_latents(model.generator.cfg.z_dim, SPREAD_SAMPLES)
        with autocast(self.device, torch.float32):
            w = model.generator.mapping(z.to(self.device))
        spread = float((w - model.generator.mapping.w_avg).square().mean().sqrt())
        return spread if np.isfinite(spread) and spread > 0 else 1.0


def rendered_tempo(asked: float | None, model_bpm: float) -> float:
    """The tempo a loop is rendered at, BPM: the asked one when it is the model's or slower
    (re-timed as a spectrogram, :func:`rig.synthesis.timing_positions`), the model's own when
    it is faster (the loop tools then stretch it with Rubber Band).

    Chosen by measurement (``rig bench sound``, drums, transient sharpness against 120 BPM):
    re-timing wins when slowing down (90 / 100 BPM: 1.10 / 1.20 against Rubber Band's 0.99 /
    1.15 with the full-band vocoder), Rubber Band when speeding up (140 / 170 BPM: 1.13 / 1.03
    against re-timing's 1.00 / 0.82; with the 24-kHz vocoder 1.12 / 0.98 against 1.04 / 0.95):
    squeezing a sixteenth's tail into fewer frames softens the onsets the vocoder makes.
    """
    return min(asked, model_bpm) if asked else model_bpm


def _clamp_amount(model: LoopModel, key: str, amount: float) -> float:
    direction = model.directions[key]
    return min(direction.high, max(direction.low, amount))
