"""Torch device and precision, shared by the engines and the trainers (CUDA when present, the
CPU otherwise)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class DeviceError(RuntimeError):
    """A device was asked for that this machine does not have; the message says what to set."""


DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pick_device(setting: str = "auto") -> torch.device:
    """``"auto"`` → the first CUDA device if there is one, else the CPU.

    Raises:
        DeviceError: CUDA was asked for and is not available.
    """
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device {setting!r} was asked for, but this machine has no CUDA GPU "
            'that torch can use; set the device to "cpu" or "auto" (gan.device, '
            "diffusion.device or --device)"
        )
    return device


def pick_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """Compute dtype: ``"auto"`` is fp16 on CUDA (bf16 where supported) and fp32 on the CPU."""
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return DTYPES[precision]


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Inference mode plus autocast to ``dtype`` (a no-op for fp32)."""
    with torch.inference_mode():
        if dtype == torch.float32:
            yield
        else:
            with torch.autocast(device.type, dtype=dtype):
                yield
