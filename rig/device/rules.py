"""Live device rules: what Max's and Live's documentation say a device must do, checked on the
patch JSON. Each rule catches a defect a real Live Set would show (see max4live/README.md):

- ``int-range``: Live's Int parameters hold 0-255 (Max for Live parameter reference); a wider
  range must be a Float parameter with an Int unit style.
- ``button-toggle``: a ``live.text`` in button mode (``mode`` 0) sends a bang, not a value: a
  setting or a per-slot switch must be a toggle (``mode`` 1); a button must be Hidden
  (Ableton's Production Guidelines: button-mode live.text is Hidden).
- ``textedit``: Return sends nothing unless ``keymode`` is 1; the output begins with ``text``,
  so it must go through ``[route text]``; ``outputmode`` 0 splits a path at its spaces.
- ``blob``: a string stored with the Set (``pattr`` or ``js`` as a parameter) must be a Blob.
- ``js-timing``: ``[js]`` runs in Max's low-priority thread: it may not drive a signal object
  through a cord, nor address a timing object (``line~``, ``phasor~``, ``metro``, ``delay``,
  ``pipe``, ``transport``, ``groove~``) by scripting name; polling faster than 20 ms for it is
  a warning.
- ``banks``: Push banks name only automatable parameters that exist; settings (Stored Only)
  stay out of them; a device with more than 8 automatable parameters has banks.
- ``info``: every visible parameter has Info View text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rig.device.objects import split_text

Finding = tuple[str, str, str]  # (level, where, text)
TIMING_OBJECTS = frozenset({"line~", "phasor~", "metro", "delay", "pipe", "transport", "groove~"})
MIN_POLL_MS = 20


def device_rules(patcher: dict[str, Any], script_dir: Path) -> Iterator[Finding]:
    """Every finding of the rules above for a top-level ``patcher`` (the dict inside
    ``{"patcher": ...}``)."""
    listed = patcher.get("boxes")
    boxes = {
        str(entry["box"]["id"]): entry["box"]
        for entry in (listed if isinstance(listed, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("box"), dict) and "id" in entry["box"]
    }
    cords: dict[str, list[tuple[int, str, int]]] = {}
    lines = patcher.get("lines")
    for entry in lines if isinstance(lines, list) else []:
        line = entry.get("patchline", {}) if isinstance(entry, dict) else {}
        try:
            (source, outlet), (destination, inlet) = line["source"], line["destination"]
            cords.setdefault(str(source), []).append((int(outlet), str(destination), int(inlet)))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    checks: list[Callable[..., Iterator[Finding]]] = [
        _int_range,
        _buttons,
        _textedits,
        _blobs,
        _js_timing,
        _info,
    ]
    for check in checks:
        yield from check(boxes, cords, script_dir)
    yield from _banks(patcher, boxes)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _value(box: dict[str, Any]) -> dict[str, Any]:
    attrs = box.get("saved_attribute_attributes", {})
    value = attrs.get("valueof", {}) if isinstance(attrs, dict) else {}
    return value if isinstance(value, dict) else {}


def _is_parameter(box: dict[str, Any]) -> bool:
    objects = box.get("saved_object_attributes", {})
    text = str(box.get("text", ""))
    return bool(
        box.get("parameter_enable")
        or (isinstance(objects, dict) and objects.get("parameter_enable"))
        or re.search(r"@parameter_enable\s+1", text)
    )


def _name(box: dict[str, Any]) -> str:
    value = _value(box)
    return str(
        value.get("parameter_longname") or box.get("varname") or box.get("text") or box["id"]
    )


def _int_range(boxes: dict, cords: dict, script_dir: Path) -> Iterator[Finding]:
    for box in boxes.values():
        value = _value(box)
        if _is_parameter(box) and value.get("parameter_type") == 1:
            low, high = value.get("parameter_mmin", 0), value.get("parameter_mmax", 127)
            if not all(isinstance(v, int | float) for v in (low, high)):
                continue
            if not (0 <= low <= high <= 255):
                yield (
                    "error",
                    box["id"],
                    f"{_name(box)!r} is an Int parameter over {low}-{high}: Live's Int holds "
                    "0-255 (make it Float with an Int unit style)",
                )


def _buttons(boxes: dict, cords: dict, script_dir: Path) -> Iterator[Finding]:
    for box in boxes.values():
        if box.get("maxclass") != "live.text" or _int(box.get("mode"), 1) != 0:
            continue
        if _int(_value(box).get("parameter_invisible")) != 2:
            yield (
                "error",
                box["id"],
                f"{_name(box)!r} is a live.text in button mode (it bangs, it has no value): "
                "make a switch a toggle (mode 1), or a button Hidden",
            )


def _textedits(boxes: dict, cords: dict, script_dir: Path) -> Iterator[Finding]:
    for box in boxes.values():
        if box.get("maxclass") != "textedit":
            continue
        used = [c for c in cords.get(box["id"], []) if c[0] == 0]
        if not used:
            continue
        if _int(box.get("keymode")) != 1:
            yield ("error", box["id"], "textedit keymode 0: Return adds a line and sends nothing")
        for _, destination, _ in used:
            name, args = split_text(str(boxes.get(destination, {}).get("text", "")))
            if name != "route" or not args or args[0] != "text":
                yield (
                    "error",
                    box["id"],
                    "textedit's output begins with 'text': route it through [route text]",
                )
        if _int(box.get("outputmode")) != 1:
            yield ("warning", box["id"], "textedit outputmode 0 splits the text at its spaces")


def _blobs(boxes: dict, cords: dict, script_dir: Path) -> Iterator[Finding]:
    for box in boxes.values():
        name, _ = split_text(str(box.get("text", "")))
        blob = _value(box).get("parameter_type") == 3
        if name in ("pattr", "js", "v8") and _is_parameter(box) and not blob:
            yield (
                "error",
                box["id"],
                f"{name} {_name(box)!r} stores text with the Set: its parameter type must be "
                "Blob (3)",
            )


def _js_timing(boxes: dict, cords: dict, script_dir: Path) -> Iterator[Finding]:
    for box in boxes.values():
        name, args = split_text(str(box.get("text", "")))
        if name not in ("js", "v8"):
            continue
        for _, destination, _ in cords.get(box["id"], []):
            target, _ = split_text(str(boxes.get(destination, {}).get("text", "")))
            if target.endswith("~") or target in TIMING_OBJECTS:
                yield (
                    "error",
                    box["id"],
                    f"[{name}] feeds {target}: JS runs in the low-priority thread and may not "
                    "time audio",
                )
        script = script_dir / (args[0] if args else "")
        literals = _string_literals(script) if script.is_file() else set()
        for other in boxes.values():
            varname = other.get("varname")
            target, _ = split_text(str(other.get("text", "")))
            if varname and target in TIMING_OBJECTS and _addressed(varname, literals):
                yield (
                    "error",
                    other["id"],
                    f"{args[0]} addresses {target} {varname!r} by name: JS may not time audio",
                )
    yield from _polling(boxes, cords)


def _string_literals(script: Path) -> set[str]:
    return set(re.findall(r'"([^"\\]*)"', script.read_text(encoding="utf-8", errors="replace")))


def _addressed(varname: str, literals: set[str]) -> bool:
    return varname in literals or any(
        literal.endswith("-") and varname.startswith(literal) for literal in literals
    )


def _polling(boxes: dict, cords: dict) -> Iterator[Finding]:
    for box in boxes.values():
        name, args = split_text(str(box.get("text", "")))
        if name == "metro" and args:
            try:
                interval = float(args[0])
            except ValueError:
                continue
            if interval < MIN_POLL_MS:
                yield (
                    "warning",
                    box["id"],
                    f"metro {args[0]}: polling faster than {MIN_POLL_MS} ms for the JS thread",
                )


def _info(boxes: dict, cords: dict, script_dir: Path) -> Iterator[Finding]:
    for box in boxes.values():
        value = _value(box)
        if not _is_parameter(box) or _int(value.get("parameter_invisible")) == 2:
            continue
        if not (value.get("parameter_info") or box.get("annotation")):
            yield ("warning", box["id"], f"{_name(box)!r} has no Info View text")


def _banks(patcher: dict[str, Any], boxes: dict) -> Iterator[Finding]:
    visibility = {
        str(_value(b).get("parameter_longname")): _int(_value(b).get("parameter_invisible"))
        for b in boxes.values()
        if _is_parameter(b) and _value(b).get("parameter_longname")
    }
    parameters = patcher.get("parameters", {})
    banks = parameters.get("parameterbanks", {}) if isinstance(parameters, dict) else {}
    automatable = [n for n, v in visibility.items() if v == 0]
    if len(automatable) > 8 and not banks:
        yield ("warning", "parameterbanks", "more than 8 automatable parameters and no Push banks")
    for key, bank in banks.items() if isinstance(banks, dict) else []:
        for name in bank.get("parameters", []) if isinstance(bank, dict) else []:
            if name == "-":
                continue
            if name not in visibility:
                yield ("error", f"bank {key}", f"names {name!r}, which is no parameter")
            elif visibility[name] != 0:
                yield ("error", f"bank {key}", f"{name!r} is a setting: keep it out of Push banks")
