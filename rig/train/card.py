"""``MODEL_CARD.md`` of a release folder, written from what its ``config.json`` records.

``rig export`` stores the training facts (``"training"``: data, licences, steps, wall time,
hardware), ``rig eval`` the metrics (``"metrics"``) and ``rig train directions`` the checked
directions; each of them then rewrites the card with :func:`refresh_card`, so it never goes stale.
Notes a person writes go in ``"notes"`` (a list of lines) and are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rig.release import CONFIG, read_config

CARD = "MODEL_CARD.md"


def refresh_card(folder: Path) -> Path:
    """Rewrite ``folder/MODEL_CARD.md`` from ``folder/config.json``; returns the card's path."""
    config = read_config(folder)
    path = folder / CARD
    path.write_text(render_card(config), encoding="utf-8")
    return path


def update_config(folder: Path, **sections: Any) -> None:
    """Set top-level ``sections`` of ``folder/config.json`` (atomic replace)."""
    config = read_config(folder)
    config.update(sections)
    part = folder / (CONFIG + ".part")
    part.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    part.replace(folder / CONFIG)


def render_card(config: dict[str, Any]) -> str:
    """The card's Markdown."""
    kind = config.get("kind", "loop_model")
    lines = [
        f"# {config.get('name', 'model')} ({'vocoder' if kind == 'vocoder' else 'loop model'})",
        "",
    ]
    lines += _what(config)
    lines += _training(config.get("training", {}))
    lines += _metrics(config.get("metrics", {}))
    lines += _directions(config.get("directions", {}))
    notes = config.get("notes", [])
    if notes:
        lines += ["## Known weaknesses and notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines).rstrip() + "\n"


def _what(config: dict[str, Any]) -> list[str]:
    audio = config.get("audio", {})
    lines = ["## What it is", ""]
    if config.get("kind") == "vocoder":
        voc = config.get("vocoder", {})
        lines.append(
            f"- a {voc.get('type', '?')} vocoder: {audio.get('n_mels')} natural-log mels at hop "
            f"{audio.get('hop')} → audio at {audio.get('sr')} Hz; shared by the loop models that "
            "name it"
        )
    else:
        lines += [
            f"- material: {config.get('material') or 'unspecified'}; prompt tags: "
            f"{', '.join(config.get('tags', [])) or 'none'}",
            f"- loops of {audio.get('bars')} bars of {audio.get('beats_per_bar')} at "
            f"{audio.get('bpm')} BPM, {audio.get('sr')} Hz, {audio.get('n_mels')} mels",
            f"- generator: StyleGAN2, channels {config.get('generator', {}).get('channels')}",
            f"- vocoder: {_vocoder_name(config.get('vocoder'))}",
        ]
    return [*lines, ""]


def _training(training: dict[str, Any]) -> list[str]:
    if not training:
        return ["## Training", "", "- not recorded", ""]
    lines = ["## Training", ""]
    for data in training.get("data", []):
        lines.append(
            f"- data: {data.get('segments')} loops of {data.get('material')} from "
            f"`{data.get('dataset')}`"
        )
        for licence, count in data.get("licences", {}).items():
            lines.append(f"  - {count} under {licence or 'an unrecorded licence'}")
    lines += [
        f"- steps: {training.get('steps')} (batch {training.get('batch')}), "
        f"wall time {training.get('wall_hours', 0):.2f} h on {training.get('hardware')}",
        f"- exported {training.get('exported')} by rig {training.get('rig_version')}",
        "",
    ]
    return lines


def _metrics(metrics: dict[str, Any]) -> list[str]:
    if not metrics:
        return ["## Metrics", "", "- not measured yet (`rig eval`)", ""]
    lines = ["## Metrics (`rig eval`, held-out loops)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in metrics.items()]
    return [*lines, ""]


def _directions(directions: dict[str, Any]) -> list[str]:
    if not directions:
        return []
    lines = ["## Directions", "", "| name | range | what it does |", "|---|---|---|"]
    for name, d in directions.items():
        low, high = d.get("range", [0, 0])
        check = d.get("check")
        does = d.get("description", "")
        if check:
            does += (
                f"; checked: {check['feature']} {check['change']:+.3g} from low to high, rising "
                f"on {100 * check['rises']:.0f} % of latents"
            )
        lines.append(f"| {name} | {low:+.2f} … {high:+.2f} | {does} |")
    return [*lines, ""]


def _vocoder_name(vocoder: object) -> str:
    return f"the shared folder `{vocoder}`" if isinstance(vocoder, str) else "its own"
