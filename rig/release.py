"""Release folders on disk, without torch: where they are and what their config.json says.

The UI and the schema of controls read model configs through this module; loading weights is
:mod:`rig.checkpoint`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
