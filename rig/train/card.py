"""``MODEL_CARD.md`` of a release folder, written from what its ``config.json`` records.

``rig export`` stores the training facts (``"training"``: data, licences, steps, wall time,
hardware), ``rig eval`` the metrics (``"metrics"``), ``rig train directions`` the checked
directions and ``rig train calibration`` its fit (``"calibration"``); each of them then rewrites
the card with :func:`refresh_card`, so it never goes stale.
Notes a person writes go in ``"notes"`` (a list of lines) and are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from rig.release import read_config, write_text

CARD = "MODEL_CARD.md"


class Bar(NamedTuple):
    """One bar a shipped default model must meet, as its card states it."""

    what: str  # "the vocoder beats Griffin-Lim on mel distance"
    met: bool
    figures: str  # the measured figures beside it: "0.208 vs 0.269"
    direction: str = ""  # the named direction whose check it is ("" for the other bars)


def refresh_card(folder: Path) -> Path:
    """Rewrite ``folder/MODEL_CARD.md`` from ``folder/config.json``; returns the card's path."""
    return write_text(folder, CARD, render_card(read_config(folder)))


def render_card(config: dict[str, Any]) -> str:
    """The card's Markdown."""
    kind = config.get("kind", "loop_model")
    lines = [
        f"# {config.get('name', 'model')} ({'vocoder' if kind == 'vocoder' else 'loop model'})",
        "",
    ]
    lines += _what(config)
    lines += _training(config.get("training", {}))
    lines += _calibration(config.get("calibration"))
    lines += _metrics(config.get("metrics", {}))
    lines += _directions(config.get("directions", {}))
    bars = shipping_bars(config)
    if bars:
        lines += ["## Bars for a shipped default model", ""]
        lines += [
            f"- {'met' if bar.met else 'NOT met'}: {bar.what} ({bar.figures})" for bar in bars
        ]
        lines.append("")
    notes = config.get("notes", [])
    if notes:
        lines += ["## Known weaknesses and notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines).rstrip() + "\n"


RISES_BAR = 0.75  # share of checked latents on which a named direction must move its feature up
# Generator FD at most this fraction of the shuffled-frame baseline's (issue #16's bars).
FD_RATIO_BARS = {"drums": 0.25}
FD_RATIO_BAR = 0.3  # every other material
SEAM_SLACK = 0.05  # loop-point edges allowed above the beat lines' rate (200 loops: ±3 points)
RECORDED = "recorded "  # the metric prefix of `rig eval --recorded`


def fd_ratio_bar(material: str | None) -> float:
    """The FD-ratio bar of a material's shipped model."""
    return FD_RATIO_BARS.get(material or "", FD_RATIO_BAR)


def shipping_bars(config: dict[str, Any]) -> list[Bar]:
    """The bars a shipped default model must meet, as far as ``config`` has the numbers.
    Empty before ``rig eval`` and ``rig train directions``."""
    metrics = config.get("metrics", {})
    bars: list[Bar] = []
    for key in metrics:  # "vocoder_mel_distance", or "<material> vocoder_mel_distance"
        if key.endswith("vocoder_mel_distance") and not key.startswith(RECORDED):
            prefix = key.removesuffix("vocoder_mel_distance")
            on = f" on {prefix.strip()}" if prefix else ""
            bars.append(_beats(metrics, prefix, "vocoder", "mel", f"mel distance{on}"))
    if RECORDED + "vocoder_mel_distance" in metrics:
        bars += [
            _beats(metrics, RECORDED, "vocoder", "mel", "mel distance on recorded loops"),
            _beats(metrics, RECORDED, "vocoder", "stft", "MR-STFT distance on recorded loops"),
            _beats(
                metrics, RECORDED, "vocoder_raw", "mel", "mel distance on recorded loops (network)"
            ),
        ]
    if "fd_ratio" in metrics:
        ratio, bar = metrics["fd_ratio"], fd_ratio_bar(config.get("material"))
        beside = ""  # the same figure on other latents and as the engine plays it
        if "fd_ratio_min" in metrics:
            low, high = metrics["fd_ratio_min"], metrics["fd_ratio_max"]
            beside = f", {low}-{high} over three draws of latents"
        if "engine_fd_ratio" in metrics:
            psi = metrics["engine_truncation"]
            beside += f"; {metrics['engine_fd_ratio']} as the engine plays it, at ψ {psi}"
        bars.append(
            Bar(
                f"feature FD at most {bar:.0%} of the shuffled-frame baseline",
                ratio <= bar,
                f"ratio {ratio}{beside}",
            )
        )
    if "loop_point_edges" in metrics:
        seam, lines = metrics["loop_point_edges"], metrics["beat_line_edges"]
        bars.append(
            Bar(
                "no more hard edges at the loop point than at the beat lines (+5 points)",
                seam <= lines + SEAM_SLACK,
                f"{seam:.1%} of generated loops at the loop point, {lines:.1%} at a beat line",
            )
        )
    for name, direction in config.get("directions", {}).items():
        check = direction.get("check")
        if check:
            ok = check["change"] > 0 and check["rises"] >= RISES_BAR
            bars.append(
                Bar(
                    f"{name} raises its {check['feature']} across its range",
                    ok,
                    f"{check['change']:+.3g}, rising on {_share_of_latents(check)}",
                    direction=name,
                )
            )
    return bars


def _beats(metrics: dict[str, Any], prefix: str, ours: str, distance: str, what: str) -> Bar:
    """The bar "``ours`` beats Griffin-Lim on ``what``" from the ``prefix``ed metrics."""
    mine = metrics[f"{prefix}{ours}_{distance}_distance"]
    theirs = metrics[f"{prefix}griffin_lim_{distance}_distance"]
    who = "the vocoder" if ours == "vocoder" else "the network alone"
    return Bar(f"{who} beats Griffin-Lim on {what}", mine < theirs, f"{mine} vs {theirs}")


def _what(config: dict[str, Any]) -> list[str]:
    audio = config.get("audio", {})
    lines = ["## What it is", ""]
    if config.get("kind") == "vocoder":
        voc = config.get("vocoder", {})
        rate = (audio.get("sr") or 0) * voc.get("upsample", 1)
        lines.append(
            f"- vocoder type {voc.get('type', '?')}: {audio.get('n_mels')} natural-log mels of "
            f"{audio.get('sr')} Hz audio at hop {audio.get('hop')} → audio at {rate} Hz; shared "
            "by the loop models that name it"
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
        lines += _data_lines("data: ", data)
    init = training.get("initialised_from")
    if init:
        lines.append(
            f"- started from the weights of `{init.get('from')}` at step {init.get('step')}"
        )
        for data in init.get("data", []):
            lines += ["  " + line for line in _data_lines("itself trained on ", data)]
    weights = training.get("weights")
    if weights:
        lines.append(
            f"- weights: their exponential moving average (decay {weights.get('average_decay')}),"
            f" kept over the last {weights.get('averaged_steps')} steps"
        )
    cap = training.get("max_magnitude")
    if cap:
        lines.append(
            f"- head: writes no STFT magnitude above {cap.get('exported'):g} "
            f"(trained under a cap of {cap.get('trained'):g})"
        )
    if training.get("generator_weights") == "live":
        lines.append("- generator: the run's last weights, not their moving average (EMA)")
    lines += [
        f"- steps: {training.get('steps')} (batch {training.get('batch')}), "
        f"wall time {training.get('wall_hours', 0):.2f} h on {training.get('hardware')}",
        f"- exported {training.get('exported')} by rig {training.get('rig_version')}",
        "",
    ]
    return lines


def _calibration(calibration: dict[str, Any] | None) -> list[str]:
    """The card's lines on ``rig train calibration`` (none for a model without it)."""
    if calibration is None:
        return []
    if not calibration:
        return ["## Calibration", "", "- a loop-point offset, not recorded how it was fitted", ""]
    sizes = ", ".join(f"{t}: {v}" for t, v in calibration.get("mean_abs_offset", {}).items())
    return [
        "## Calibration",
        "",
        f"- loop point: at frames {calibration.get('frames')}, whose analysis windows reached "
        "past the loop in data prepared by an older rig, the mean spectrogram's shape is matched "
        f"to that of `{calibration.get('dataset')}` ({calibration.get('samples')} loops "
        f"averaged, {_latents_drawn(calibration)}; `rig train calibration`)",
        f"- mean |offset| per frame, in normalised units: {sizes}",
        "",
    ]


def _latents_drawn(calibration: dict[str, Any]) -> str:
    """Whose latents a calibration averaged: a measurement draw (:mod:`rig.latents`), or, fitted
    before those existed, torch's seed."""
    if "draw" in calibration:
        return f"latents of measurement draw {calibration['draw']}"
    return f"latents of torch seed {calibration.get('seed')}"


def _data_lines(lead: str, data: dict[str, Any]) -> list[str]:
    """A dataset's line (after ``lead``) and one line per licence with its loop count."""
    read = f"{data['read']} of the " if data.get("read") else ""
    lines = [
        f"- {lead}{read}{data.get('segments')} loops of {data.get('material')} from "
        f"`{data.get('dataset')}`"
    ]
    for licence, count in data.get("licences", {}).items():
        lines.append(f"  - {count} under {licence or 'an unrecorded licence'}")
    return lines


def _metrics(metrics: dict[str, Any]) -> list[str]:
    if not metrics:
        return ["## Metrics", "", "- not measured yet (`rig eval`)", ""]
    lines = ["## Metrics (`rig eval`, held-out loops)", ""]
    if any(key.startswith(RECORDED) for key in metrics):
        lines += [
            "`recorded` metrics: 4-second excerpts of the `loop_*` recordings of Debian's "
            "`sonic-pi-samples` (CC0), which no training set holds (`rig eval --recorded`).",
            "",
        ]
    lines += ["| metric | value |", "|---|---|"]
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
                f"on {_share_of_latents(check)}"
            )
        lines.append(f"| {name} | {low:+.2f} … {high:+.2f} | {does} |")
    return [*lines, ""]


def _share_of_latents(check: dict[str, Any]) -> str:
    """The share of latents a check rose on, e.g. "74 % of 96 latents" (a check stored before
    the count was kept moved 24)."""
    return f"{100 * check['rises']:.0f} % of {check.get('latents', 24)} latents"


def _vocoder_name(vocoder: object) -> str:
    return f"the shared folder `{vocoder}`" if isinstance(vocoder, str) else "its own"
