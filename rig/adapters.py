"""LoRA adapters of the diffusion transformers, on disk and merged into a model: written by the
LoRA trainer (:mod:`rig.train.lora`), read by the diffusion engine.

An adapter folder holds ``adapter.safetensors`` (PEFT's names: ``<module>.lora_A.weight``
``[rank, in]`` and ``<module>.lora_B.weight`` ``[out, rank]``) and ``adapter.json`` (rank, alpha,
target modules, the base model, steps, data).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADAPTER_FILE, ADAPTER_CONFIG = "adapter.safetensors", "adapter.json"


class AdapterError(ValueError):
    """An adapter folder is missing, malformed or made for another model."""


def write_adapter(folder: Path, tensors: Mapping[str, Any], config: Mapping[str, Any]) -> Path:
    """Write an adapter folder (each file atomically: a part file, then a rename)."""
    import safetensors.torch

    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{ADAPTER_FILE}.part"
    safetensors.torch.save_file({k: v.contiguous() for k, v in tensors.items()}, str(part))
    part.replace(folder / ADAPTER_FILE)
    part = folder / f".{ADAPTER_CONFIG}.part"
    part.write_text(json.dumps(dict(config), indent=2) + "\n", encoding="utf-8")
    part.replace(folder / ADAPTER_CONFIG)
    return folder


def read_adapter(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tensors, config)`` of an adapter folder.

    Raises:
        AdapterError: a missing or unreadable file, or a config without rank and alpha.
    """
    import safetensors.torch

    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        tensors = safetensors.torch.load_file(str(folder / ADAPTER_FILE))
        float(config["rank"]), float(config["alpha"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise AdapterError(f"adapter {folder}: cannot be read ({error})") from None
    return tensors, config


def parse_loras(items: tuple[str, ...]) -> list[tuple[Path, float]]:
    """``("runs/a/adapter:0.7", "runs/b/adapter")`` → [(path, 0.7), (path, 1.0)]."""
    parsed = []
    for item in items:
        path, _, strength = str(item).rpartition(":")
        try:
            parsed.append((Path(path).expanduser(), float(strength)))
        except ValueError:
            parsed.append((Path(item).expanduser(), 1.0))
    return parsed


def adapter_control(folder: Path) -> str:
    """The live control of the adapter in ``folder``: ``lora_`` and its folder name in lower
    case letters, digits and underscores (``runs/Dub Chords`` → ``lora_dub_chords``)."""
    slug = "".join(c if c.isalnum() else "_" for c in folder.name.lower()).strip("_")
    return f"lora_{slug or 'adapter'}"


@dataclass(frozen=True)
class _Factors:
    """One module's low-rank update of one adapter: ``(α/r) · up @ down``."""

    module: str
    down: Any  # [rank, in] fp32, CPU
    up: Any  # [out, rank] fp32, CPU
    unit: float  # α / r


class AdapterMix:
    """Adapters merged into ``model``'s weights at strengths that can change between calls.

    W = W₀ + Σᵢ sᵢ · (αᵢ/rᵢ) · Bᵢ·Aᵢ, computed in fp32 on the weight's own device and cast to its
    dtype (a model already on a GPU works). The untouched weights W₀ of the adapted modules are
    kept on the CPU, so a new strength is a re-merge from them (no rounding builds up, no pipeline
    reload): a few matrix products per adapted module.

    Raises (on construction):
        AdapterError: a missing or malformed adapter, or one for another model (a module it
            names is missing, or its shapes do not fit that module's weight).
    """

    def __init__(self, model: Any, adapters: list[tuple[Path, float]]) -> None:
        self._modules = dict(model.named_modules())
        self.folders = [folder for folder, _ in adapters]
        self._factors = [self._read(folder) for folder in self.folders]
        adapted = {f.module for factors in self._factors for f in factors}
        self._base = {name: _keep(self._modules[name].weight) for name in adapted}
        self.configured = tuple(float(strength) for _, strength in adapters)
        self.strengths: tuple[float, ...] = ()
        self.set_strengths(self.configured)

    def _read(self, folder: Path) -> list[_Factors]:
        import torch

        tensors, config = read_adapter(folder)
        unit = float(config["alpha"]) / float(config["rank"])
        factors = []
        for key, down in tensors.items():
            if ".lora_A." not in key:
                continue
            name = key.split(".lora_A.")[0]
            up = tensors.get(key.replace(".lora_A.", ".lora_B."))
            module = self._modules.get(name)
            if up is None or module is None or not hasattr(module, "weight"):
                raise AdapterError(f"adapter {folder} does not fit this model (no {name})")
            shape = tuple(module.weight.shape)
            if (up.shape[0], down.shape[1]) != shape or up.shape[1] != down.shape[0]:
                raise AdapterError(
                    f"adapter {folder} does not fit this model: {name} is "
                    f"{shape}, the adapter makes {(up.shape[0], down.shape[1])}"
                )
            factors.append(_Factors(name, down.to(torch.float32), up.to(torch.float32), unit))
        return factors

    def set_strengths(self, strengths: tuple[float, ...]) -> None:
        """Re-merge with one strength per adapter (in the order given); nothing to do when they
        are the merged ones."""
        import torch

        strengths = tuple(float(s) for s in strengths)
        if len(strengths) != len(self.folders):
            raise AdapterError(f"{len(strengths)} strengths for {len(self.folders)} adapters")
        if strengths == self.strengths:
            return
        with torch.no_grad():
            for name, base in self._base.items():
                weight = self._modules[name].weight
                merged = base.to(weight.device, torch.float32, copy=True)  # base stays W₀
                for strength, factors in zip(strengths, self._factors, strict=True):
                    for f in factors:
                        if f.module == name and strength:
                            up = f.up.to(weight.device)
                            merged += (strength * f.unit) * (up @ f.down.to(weight.device))
                weight.copy_(merged.to(weight.dtype))
        self.strengths = strengths


def _keep(weight: Any) -> Any:
    """A CPU copy of ``weight`` (a meta weight, which holds no data, is kept as it is)."""
    return weight.detach() if weight.is_meta else weight.detach().to("cpu", copy=True)


def merge_adapters(model: Any, adapters: list[tuple[Path, float]]) -> AdapterMix:
    """Merge each ``(folder, strength)`` adapter into ``model``; see :class:`AdapterMix`."""
    return AdapterMix(model, adapters)
