"""Release folders on disk: where they are, what their ``config.json`` says, and the one writer
of their files (each written atomically: a hidden part file, then a rename; prepared datasets
use the same writers, since training runs read them while another process may prepare them).

Readable without torch (the UI and the control schema read model configs here); building models
from the weights is :mod:`rig.loop_model`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A release folder is missing, malformed or does not match its config."""


def read_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json`` as a dict, with its format version checked."""
    path = folder / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a release folder: it has no {CONFIG}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} cannot be read as JSON: {error}") from None
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        found = config.get("format_version") if isinstance(config, dict) else None
        raise CheckpointError(
            f"{path}: format_version {found!r} is not supported (this rig reads {FORMAT_VERSION})"
        )
    return config


def find_model_folders(roots: tuple[Path, ...]) -> list[Path]:
    """Loop model folders: each root that is one, else its sub-folders that are (sorted)."""
    found: list[Path] = []
    for root in roots:
        candidates = [root] if (root / "config.json").is_file() else sorted(root.glob("*/"))
        for folder in candidates:
            if not (folder / "config.json").is_file():
                continue
            try:
                kind = read_config(folder).get("kind", "loop_model")
            except CheckpointError:
                kind = "loop_model"  # let loading report what is wrong with it
            if kind == "loop_model":
                found.append(folder)
    return found


def directions_of(config: Mapping[str, Any]) -> dict[str, tuple[float, float, str]]:
    """The named directions a config lists: name → (low, high, description).

    Raises:
        CheckpointError: an entry without a two-number range.
    """
    found = {}
    for name, entry in (config.get("directions") or {}).items():
        try:
            low, high = (float(x) for x in entry["range"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"direction {name!r}: no range of two numbers") from None
        found[str(name)] = (low, high, str(entry.get("description", "")))
    return found


def write_config(folder: Path, config: Mapping[str, Any]) -> None:
    """Write ``folder/config.json`` (the folder is created)."""
    write_text(folder, CONFIG, json.dumps(dict(config), indent=2) + "\n")


def update_config(folder: Path, **sections: Any) -> None:
    """Set top-level ``sections`` of ``folder/config.json``."""
    config = read_config(folder)
    config.update(sections)
    write_config(folder, config)


def write_text(folder: Path, name: str, text: str) -> Path:
    """Write ``folder/name`` (a card, a config) atomically."""
    with _replacing(folder, name) as part:
        part.write_text(text, encoding="utf-8")
    return folder / name


def write_tensors(folder: Path, name: str, tensors: Mapping[str, Any]) -> Path:
    """Write ``folder/name`` as safetensors (CPU copies of the torch tensors ``tensors``)."""
    import safetensors.torch

    data = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with _replacing(folder, name) as part:
        safetensors.torch.save_file(data, str(part))
    return folder / name


def write_array(folder: Path, name: str, array: np.ndarray) -> Path:
    """Write ``folder/name`` as a NumPy ``.npy`` file atomically."""
    with _replacing(folder, name) as part, part.open("wb") as file:
        np.save(file, array)
    return folder / name


@contextmanager
def _replacing(folder: Path, name: str) -> Iterator[Path]:
    """The hidden part file to write ``folder/name`` to; renamed over it when the block ends,
    removed if the block raises (``folder/name`` is then untouched). One part file per
    process, so two processes writing the same file never rename each other's half."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{name}.{os.getpid()}.part"
    try:
        yield part
        part.replace(folder / name)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
