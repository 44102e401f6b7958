"""LoRA adapters of the diffusion transformers, on disk and merged into a model: written by the
LoRA trainer (:mod:`rig.train.lora`), read by the diffusion engine.

An adapter folder holds ``adapter.safetensors`` (PEFT's names: ``<module>.lora_A.weight``
``[rank, in]`` and ``<module>.lora_B.weight`` ``[out, rank]``) and ``adapter.json`` (rank, alpha,
target modules, the base model, steps, data).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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


def merge_adapters(model: Any, adapters: list[tuple[Path, float]]) -> None:
    """Merge each adapter into ``model``'s weights: W += strength · (α/r) · B·A, computed in fp32
    on the weight's own device and cast to its dtype (a model already on a GPU works).

    Raises:
        AdapterError: a missing or malformed adapter, or one for another model (a module it
            names is missing, or its shapes do not fit that module's weight).
    """
    import torch

    modules = dict(model.named_modules())
    for folder, strength in adapters:
        tensors, config = read_adapter(folder)
        scale = strength * float(config["alpha"]) / float(config["rank"])
        for key, down in tensors.items():
            if ".lora_A." not in key:
                continue
            name = key.split(".lora_A.")[0]
            up = tensors.get(key.replace(".lora_A.", ".lora_B."))
            module = modules.get(name)
            if up is None or module is None or not hasattr(module, "weight"):
                raise AdapterError(f"adapter {folder} does not fit this model (no {name})")
            weight = module.weight
            if (up.shape[0], down.shape[1]) != tuple(weight.shape) or up.shape[1] != down.shape[0]:
                raise AdapterError(
                    f"adapter {folder} does not fit this model: {name} is "
                    f"{tuple(weight.shape)}, the adapter makes {(up.shape[0], down.shape[1])}"
                )
            with torch.no_grad():
                delta = up.to(weight.device, torch.float32) @ down.to(weight.device, torch.float32)
                weight.copy_((weight.float() + scale * delta).to(weight.dtype))
