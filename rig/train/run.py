"""Run folders shared by every trainer: checkpoints with resume, the JSONL loss log and its plot.

A checkpoint is ``checkpoint/checkpoint.safetensors`` (module weights and optimizer state as
tensors, keys ``<name>/<parameter>`` and ``optimizer/<name>/<index>/<field>``) plus
``checkpoint/state.json`` (step, wall time and anything else JSON). Both are written to a
``.part`` file first and then renamed, so a run killed mid-save keeps its previous checkpoint.
No pickles.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

CHECKPOINT, STATE = "checkpoint.safetensors", "state.json"


class TrainError(ValueError):
    """A dataset or run folder that cannot be trained on; the message names it."""


COLOURS = ((182, 54, 121), (40, 110, 190), (60, 150, 70), (220, 130, 20), (110, 80, 170))


def optimizer_tensors(name: str, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """An optimizer's per-parameter state as ``optimizer/<name>/<index>/<field>`` tensors."""
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for field, value in state.items():
            tensors[f"optimizer/{name}/{index}/{field}"] = torch.as_tensor(value).contiguous()
    return tensors


def load_optimizer(
    name: str, optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor]
) -> None:
    """Inverse of :func:`optimizer_tensors` (hyper-parameters come from the new optimizer)."""
    state = optimizer.state_dict()
    prefix = f"optimizer/{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, field = key.removeprefix(prefix).split("/")
            state["state"].setdefault(int(index), {})[field] = value
    optimizer.load_state_dict(state)


def save_checkpoint(
    folder: Path, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]
) -> None:
    """Atomically write ``tensors`` and ``state`` (JSON) to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (CHECKPOINT + ".part")
    safetensors.torch.save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(part)
    )
    part.replace(folder / CHECKPOINT)
    state_part = folder / (STATE + ".part")
    state_part.write_text(json.dumps(dict(state)) + "\n")
    state_part.replace(folder / STATE)


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds a complete checkpoint (its tensors and its state)."""
    return (folder / STATE).is_file() and (folder / CHECKPOINT).is_file()


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The tensors and state of the checkpoint in ``folder``, or None if there is none."""
    if not has_checkpoint(folder):
        return None
    tensors = safetensors.torch.load_file(str(folder / CHECKPOINT))
    return tensors, json.loads((folder / STATE).read_text())


def unstarted_init(out: Path) -> Path | None:
    """The ``init`` a run recorded but never got to save a checkpoint from (stopped before its
    first save): resuming it without ``--init`` must still start from those weights, not random
    ones under a config that names them."""
    path = out / "config.json"
    if not path.is_file() or has_checkpoint(out / "checkpoint"):
        return None
    init = json.loads(path.read_text()).get("init")
    return Path(init["from"]) if init else None


def module_tensors(name: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict under ``<name>/``."""
    return {f"{name}/{k}": v for k, v in module.state_dict().items()}


def load_module(name: str, module: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Load the ``<name>/`` tensors into ``module`` (strict)."""
    prefix = f"{name}/"
    module.load_state_dict(
        {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
    )


@dataclass
class Checkpointer:
    """The modules and optimizers of a run, by name, saved to and resumed from ``folder``."""

    folder: Path
    modules: Mapping[str, torch.nn.Module]
    optimizers: Mapping[str, torch.optim.Optimizer]
    device: torch.device
    # Modules a checkpoint may lack (state added after a run began): they keep their values.
    optional: frozenset[str] = frozenset()

    def save(self, step: int, wall_seconds: float) -> None:
        """Write every weight and optimizer state with the step, wall time and hardware."""
        tensors: dict[str, torch.Tensor] = {}
        for name, module in self.modules.items():
            tensors.update(module_tensors(name, module))
        for name, optimizer in self.optimizers.items():
            tensors.update(optimizer_tensors(name, optimizer))
        state = {
            "step": step,
            "wall_seconds": round(wall_seconds, 1),
            "device": hardware(self.device),
        }
        save_checkpoint(self.folder, tensors, state)

    def resume(self) -> tuple[int, float]:
        """Load the last checkpoint, if any; returns (step, wall seconds so far), (0, 0) if none."""
        found = load_checkpoint(self.folder)
        if found is None:
            return 0, 0.0
        tensors, state = found
        for name, module in self.modules.items():
            absent = not any(key.startswith(f"{name}/") for key in tensors)
            if not (absent and name in self.optional):
                load_module(name, module, tensors)
        for name, optimizer in self.optimizers.items():
            load_optimizer(name, optimizer, tensors)
        return int(state["step"]), float(state.get("wall_seconds", 0.0))

    def start_from(
        self, tensors: Mapping[str, torch.Tensor], skip: frozenset[str] = frozenset()
    ) -> None:
        """Give a new run its ``--init`` weights: load every module ``tensors`` holds, except
        those named in ``skip``. A run with a checkpoint of its own keeps it (resume wins)."""
        if has_checkpoint(self.folder):
            return
        for name, module in self.modules.items():
            if name not in skip and any(key.startswith(name + "/") for key in tensors):
                load_module(name, module, tensors)


@dataclass(frozen=True)
class Schedule:
    """When a training loop stops, logs, saves and previews (in steps, and minutes of wall time
    in this process: 0 = no limit)."""

    steps: int
    minutes: float = 0.0
    log_every: int = 10
    save_every: int = 500
    preview_every: int = 1000

    @classmethod
    def of(cls, settings: Any) -> Schedule:
        """The schedule fields of a trainer's settings (GanSettings, VocoderSettings)."""
        names = ("steps", "minutes", "log_every", "save_every", "preview_every")
        return cls(**{name: getattr(settings, name) for name in names})


def run_steps(
    out: Path,
    schedule: Schedule,
    checkpoints: Checkpointer,
    train_step: Callable[[int], dict[str, float]],
    preview: Callable[[int], None],
    desc: str,
    plot_keys: tuple[str, ...] = ("loss",),
) -> int:
    """The loop every trainer shares: resume, then ``train_step(step)`` (step = updates done
    before it) until ``schedule.steps`` or its time budget, logging to ``out/loss.jsonl``,
    checkpointing and previewing on schedule; at the end ``out/loss.png`` plots ``plot_keys``.
    Ctrl-C or SIGTERM stops it after saving a checkpoint and the plot (then re-raised as
    KeyboardInterrupt). Returns the step reached."""
    from tqdm import tqdm

    step, wall = checkpoints.resume()
    started = time.monotonic()
    log = LossLog(out / "loss.jsonl")
    bar = tqdm(total=schedule.steps, initial=step, desc=desc, unit="step")
    try:
        with _terminate_as_interrupt():
            while step < schedule.steps:
                if schedule.minutes and time.monotonic() - started > schedule.minutes * 60:
                    break
                losses = train_step(step)
                step += 1
                bar.update(1)
                if step % schedule.log_every == 0:
                    log.write(step, losses)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in list(losses.items())[:2]})
                if step % schedule.save_every == 0:
                    checkpoints.save(step, wall + time.monotonic() - started)
                if step % schedule.preview_every == 0 or step == schedule.steps:
                    preview(step)
    finally:
        bar.close()
        log.close()
        checkpoints.save(step, wall + time.monotonic() - started)
        plot_losses(out / "loss.jsonl", out / "loss.png", plot_keys)
    return step


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """In the main thread, let SIGTERM raise KeyboardInterrupt (so the run saves) while inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class LossLog:
    """``loss.jsonl``: one JSON object per logged step, appended and flushed."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handle = path.open("a", encoding="utf-8")

    def write(self, step: int, values: Mapping[str, float]) -> None:
        """Append ``{"step": step, "time": unix seconds, **values}``."""
        row = {
            "step": step,
            "time": round(time.time(), 3),
            **{k: float(v) for k, v in values.items()},
        }
        self.handle.write(json.dumps(row) + "\n")
        self.handle.flush()

    def close(self) -> None:
        """Close the file."""
        self.handle.close()


def plot_losses(
    log: Path, image: Path, keys: tuple[str, ...] = ("loss",), width: int = 640, height: int = 240
) -> None:
    """The curves ``keys`` of a ``loss.jsonl`` as a PNG, each scaled to its own range and smoothed
    over a window of 1 % of the steps (Pillow, no plotting library)."""
    from PIL import Image, ImageDraw

    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    labels = []
    for colour, key in zip(COLOURS * 4, keys, strict=False):
        values = np.array([row[key] for row in rows if key in row], dtype=np.float64)
        if not len(values):
            continue
        window = max(1, len(values) // 100)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        low, high = float(smooth.min()), float(smooth.max())
        span = (high - low) or 1.0
        points = [
            (
                10 + (width - 20) * i / max(1, len(smooth) - 1),
                height - 10 - (height - 30) * (v - low) / span,
            )
            for i, v in enumerate(smooth)
        ]
        draw.line(points if len(points) > 1 else points * 2, fill=colour, width=2)
        labels.append((colour, f"{key} {values[0]:.4g} → {smooth[-1]:.4g}"))
    x = 12
    for colour, text in labels:
        draw.text((x, 4), text, fill=colour)
        x += 8 + int(draw.textlength(text))
    draw.text((width - 110, height - 14), f"{len(rows)} log rows", fill="black")
    picture.save(image)


def hardware(device: torch.device) -> str:
    """What a run trains on, for the model card: the GPU's name or the CPU thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type.upper()}, {torch.get_num_threads()} threads"
