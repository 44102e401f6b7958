"""The performer page's widgets kept true to the :class:`~rig.performance.Performance` state,
which is the one source of truth (the page, MIDI, OSC and presets all change it).

Every widget's value is rendered from the state (:func:`render`), and the page remembers what it
rendered last. A widget whose value differs from that is an edit by the performer
(:func:`edits`); only edits are written to the state (:func:`apply`), so a widget the state
changed behind the page's back (a preset loaded from MIDI, a knob) never overrides it. Redrawing
(:func:`redraw`) sends the state's value to every widget that the performer is not editing.

Widget values are what Gradio sends: text for the text boxes, the dropdowns' choices, a bool
for the seed lock, floats for the sliders (named ``engine.control``).
"""

from __future__ import annotations

from typing import Any

from rig.performance import Fields, Performance

AUTO = "auto"
NO_SLOT = "none"
# The field widgets, in page order. "seed" is the lock box and the seed text together.
FIELD_NAMES = (
    "text",
    "tempo",
    "key",
    "bars",
    "genre",
    "instrument",
    "negative",
    "engine",
    "model",
    "slot",
    "lock",
    "seed",
)
TEXT_FIELDS = ("text", "key", "genre", "instrument", "negative")
NO_NEGATIVE = "none"  # typed in the negative prompt box: no negative prompt at all


def widget_names(perf: Performance) -> list[str]:
    """Every widget the state drives: the fields, then each engine's controls."""
    return [*FIELD_NAMES, *perf.control_names()]


def render(fields: Fields, names: list[str]) -> dict[str, Any]:
    """The widget values that show ``fields``."""
    shown: dict[str, Any] = {
        "text": fields.text,
        "tempo": f"{fields.tempo:g}" if fields.tempo is not None else "",
        "key": fields.key or "",
        "bars": str(fields.bars) if fields.bars is not None else AUTO,
        "genre": fields.genre or "",
        "instrument": fields.instrument or "",
        "negative": "" if fields.negative is None else fields.negative or NO_NEGATIVE,
        "engine": fields.engine,
        "model": fields.model or AUTO,
        "slot": str(fields.slot) if fields.slot is not None else NO_SLOT,
        "lock": fields.seed is not None,
        "seed": str(fields.seed) if fields.seed is not None else "",
    }
    for name in names[len(FIELD_NAMES) :]:
        engine, _, control = name.partition(".")
        shown[name] = fields.controls.get(engine, {}).get(control)
    return {name: shown[name] for name in names}


def edits(values: dict[str, Any], rendered: dict[str, Any]) -> dict[str, Any]:
    """The widgets the performer changed since the page last rendered them (all of them when
    nothing was rendered yet). The lock and the seed count as one edit."""
    changed = {n: v for n, v in values.items() if n not in rendered or v != rendered[n]}
    if "lock" in changed or "seed" in changed:
        changed["lock"], changed["seed"] = values.get("lock"), values.get("seed")
    return changed


def apply(perf: Performance, changed: dict[str, Any]) -> list[str]:
    """Write the performer's edits to the state, each through the state's own checks; returns
    the problems (one line each, naming the field), and leaves a refused field as it was."""
    problems = []
    fields = {n: v for n, v in changed.items() if n in FIELD_NAMES and n != "lock"}
    for name, value in fields.items():
        try:
            perf.update(**{name: _field_value(name, value, changed.get("lock"))})
        except ValueError as error:  # PromptError, RequestError, ActionError
            problems.append(str(error))
    for name, value in changed.items():
        if name not in FIELD_NAMES and value is not None:
            try:
                perf.set_control(name, float(value))
            except (TypeError, ValueError) as error:
                problems.append(f"{name}: {error}")
    return problems


def redraw(
    state: dict[str, Any], values: dict[str, Any], rendered: dict[str, Any], force: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What to send to the widgets and what the page then shows.

    Args:
        state: :func:`render` of the current state.
        values: the widgets' current values.
        rendered: what the page rendered last.
        force: redraw even the widgets being edited (after the performer loaded a preset).

    Returns:
        ``(updates, rendered)``: the widgets to set (name → value; the others stay), and the new
        record of what the page shows.
    """
    editing = set() if force else set(edits(values, rendered)) & set(rendered)
    updates = {n: v for n, v in state.items() if n not in editing and values.get(n) != v}
    shown = {n: (rendered[n] if n in editing else v) for n, v in state.items()}
    return updates, shown


def _field_value(name: str, value: Any, lock: Any) -> Any:
    """A widget's value as the state's field: empty → None, "auto"/"none" → None, digits →
    int; anything else as it came (the state's checks say what is wrong)."""
    if name == "seed":
        return whole(value) if lock and value not in (None, "") else None
    if name == "text":
        return (value or "").strip() if isinstance(value, str) or value is None else value
    if name == "negative" and isinstance(value, str) and value.strip().lower() == NO_NEGATIVE:
        return ""
    if isinstance(value, str):
        value = value.strip()
        if value == "" or (name in ("bars", "model") and value == AUTO):
            return None
        if name == "slot" and value == NO_SLOT:
            return None
    if name in ("bars", "slot"):
        return whole(value)
    return value


def whole(value: Any) -> Any:
    """``"3"`` → 3; anything else as it came."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value
