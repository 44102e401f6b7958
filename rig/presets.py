"""Prompt presets and set lists: ``prompts/*.toml``, one set per file.

Format (one ``[[prompt]]`` table per entry; only ``text`` is required)::

    name = "Warm-up"                      # the set's name (default: the file name)
    [[prompt]]
    text = "dusty drums, Tempo: 96, Bars: 2"   # the structured prompt (rig/prompt.py)
    slot = 1                              # device slot to send the take to
    seed = 42                             # lock the seed
    engine = "gan"                        # engine name (default: the UI's choice)
    model = "drums"                       # model name
    controls = { morph = 0.5, complexity = 1.0 }   # parameter values

Every problem names the file and the entry; a set with a bad entry is skipped, the others load.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.prompt import PromptError, parse_prompt

ENTRY_KEYS = {"text", "slot", "seed", "engine", "model", "controls"}


class PresetError(ValueError):
    """A prompt set file is malformed; the message names the file and entry."""


@dataclass(frozen=True)
class Preset:
    """One prompt of a set."""

    text: str
    slot: int | None = None
    seed: int | None = None
    engine: str | None = None
    model: str | None = None
    controls: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptSet:
    """A named, ordered list of presets from one file."""

    name: str
    path: Path
    presets: tuple[Preset, ...]


def load_set(path: Path) -> PromptSet:
    """Read one set file.

    Raises:
        PresetError: unreadable TOML, no entries, or a bad entry (named by its number, from 1).
    """
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PresetError(f"{path}: cannot be read as TOML: {error}") from None
    entries = table.get("prompt")
    if not isinstance(entries, list) or not entries:
        raise PresetError(f"{path}: no [[prompt]] entries")
    presets = tuple(_preset(path, number, entry) for number, entry in enumerate(entries, 1))
    return PromptSet(str(table.get("name", path.stem)), path, presets)


def load_sets(folder: Path) -> tuple[list[PromptSet], list[str]]:
    """Every ``*.toml`` set in ``folder`` (by file name), and the problems of the sets skipped."""
    sets, problems = [], []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            sets.append(load_set(path))
        except PresetError as error:
            problems.append(str(error))
    return sets, problems


def _preset(path: Path, number: int, entry: Any) -> Preset:
    where = f"{path}: prompt {number}"
    if not isinstance(entry, dict):
        raise PresetError(f"{where} is not a table")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise PresetError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(ENTRY_KEYS))}"
        )
    text = entry.get("text")
    if not isinstance(text, str) or not text.strip():
        raise PresetError(f"{where}: text must be a non-empty string")
    try:
        parse_prompt(text)
    except PromptError as error:
        raise PresetError(f"{where}: {error}") from None
    for key in ("slot", "seed"):
        value = entry.get(key)
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < (1 if key == "slot" else 0)
        ):
            raise PresetError(
                f"{where}: {key} must be a whole number "
                f"{'from 1' if key == 'slot' else '≥ 0'}, got {value!r}"
            )
    controls = entry.get("controls", {})
    if not isinstance(controls, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in controls.values()
    ):
        raise PresetError(f"{where}: controls must map names to numbers")
    return Preset(
        text.strip(),
        entry.get("slot"),
        entry.get("seed"),
        entry.get("engine"),
        entry.get("model"),
        {k: float(v) for k, v in controls.items()},
    )
