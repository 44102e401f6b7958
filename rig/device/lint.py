"""``rig device lint``: check a Max patch or device without Max.

Checks, per patcher (sub-patchers included): valid JSON with boxes and lines; unique box ids;
every object known (the known-objects table or a rule in :mod:`rig.device.objects`) with the
inlet/outlet counts its box declares; every patch cord between existing boxes and in-range
inlets/outlets; js/v8 scripts present; no absolute paths; parameters with long and short names,
unique long names; and the Live device rules of :mod:`rig.device.rules` (Int ranges, toggles,
textedit, Blob state, no JS in the audio timing path, Push banks, Info View text). For an
``.amxd`` also the exact header. Any input gives a report, never a traceback: what cannot be
checked is reported as such.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.device.amxd import AmxdError, read_amxd
from rig.device.objects import (
    CONTENT_DEFINED,
    SCRIPTED,
    known_objects,
    object_counts,
    split_text,
)
from rig.device.rules import device_rules

ERROR, WARNING = "error", "warning"
ABSOLUTE_PATH = re.compile(
    r"(?:^|[\s\"'=])(?:/Users/|/home/|/Volumes/|/private/|/tmp/|[A-Za-z]:[\\/])|Macintosh HD:"
)
# Every ABSOLUTE_PATH match contains one of these as JSON text has it: a document without any
# is not walked string by string.
PATH_MARKERS = (
    "/Users/",
    "/home/",
    "/Volumes/",
    "/private/",
    "/tmp/",
    ":\\\\",
    ":/",
    "Macintosh HD:",
)
UI_WITHOUT_COUNTS = {"inlet", "outlet"}  # counts fixed by their position, not the table


@dataclass(frozen=True)
class Problem:
    """One finding: ``level`` error or warning, ``where`` (box id, cord, file), ``text``."""

    level: str
    where: str
    text: str

    def __str__(self) -> str:
        return f"{self.level.upper():7} {self.where}: {self.text}"


@dataclass
class Report:
    """What lint found in one file."""

    path: Path
    problems: list[Problem] = field(default_factory=list)
    boxes: int = 0
    parameters: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not any(p.level == ERROR for p in self.problems)


def lint_file(path: Path, script_dir: Path | None = None) -> Report:
    """Lint an ``.amxd``, ``.maxpat`` or ``.json`` patch file."""
    report = Report(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        report.problems.append(Problem(ERROR, path.name, f"cannot be read: {error.strerror}"))
        return report
    try:
        if data[:4] == b"ampf":
            check_header(data, report)
            patcher = read_amxd(data).patcher()
        else:
            patcher = json.loads(data.decode("utf-8"))
    except AmxdError as error:
        report.problems.append(Problem(ERROR, path.name, str(error)))
        return report
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        report.problems.append(
            Problem(ERROR, path.name, f"not a Max patch (.maxpat JSON) or device (.amxd): {error}")
        )
        return report
    try:
        lint_patcher(patcher, script_dir or path.parent, report)
    except Exception as error:  # a shape no check foresaw: still a report, not a traceback
        report.problems.append(Problem(ERROR, path.name, f"could not be fully checked: {error!r}"))
    return report


def check_header(data: bytes, report: Report) -> None:
    """The 32-byte ``ampf``/``meta``/``ptch`` header of a device this project builds."""
    if len(data) < 32:
        report.problems.append(Problem(ERROR, "header", "shorter than 32 bytes"))
        return
    fields = struct.unpack_from("<4sI4s4sII4sI", data)
    expected = (b"ampf", 4, fields[2], b"meta", 4, fields[5], b"ptch", len(data) - 32)
    if fields != expected:
        report.problems.append(Problem(ERROR, "header", f"{fields} is not {expected}"))


def lint_patcher(document: Any, script_dir: Path, report: Report) -> Report:
    """Lint ``{"patcher": {...}}`` into ``report``."""
    if not isinstance(document, dict) or not isinstance(document.get("patcher"), dict):
        report.problems.append(Problem(ERROR, "patcher", 'no "patcher" object'))
        return report
    names: dict[str, str] = {}
    for where, patcher in _patchers(document["patcher"], "patcher"):
        _lint_one(patcher, where, script_dir, report, names)
    text = json.dumps(document["patcher"])
    if any(marker in text for marker in PATH_MARKERS):
        for where, text in _strings_matching(ABSOLUTE_PATH, document["patcher"]):
            report.problems.append(Problem(ERROR, where, f"absolute path {text!r}"))
    for level, where, text in device_rules(document["patcher"], script_dir):
        report.problems.append(Problem(level, f"patcher/{where}", text))
    report.parameters = sorted(names)
    return report


def _patchers(patcher: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield where, patcher
    for entry in patcher.get("boxes", []) if isinstance(patcher.get("boxes"), list) else []:
        box = entry.get("box", {}) if isinstance(entry, dict) else {}
        if isinstance(box, dict) and isinstance(box.get("patcher"), dict):
            yield from _patchers(box["patcher"], f"{where}/{box.get('id', '?')}")


def _strings_matching(
    pattern: re.Pattern[str], value: Any, where: str = "patcher"
) -> Iterator[tuple[str, str]]:
    """Every string in ``value`` that ``pattern`` finds, with its location
    (``patcher.boxes[3].box.text``), in document order.

    An explicit stack with linked labels: a location is spelled out only for a match, so a
    device of a thousand boxes is walked in milliseconds.
    """
    stack: list[tuple[Any, Any]] = [(value, (where, None))]
    while stack:
        item, trail = stack.pop()
        if isinstance(item, str):
            if pattern.search(item):
                yield _spell(trail), item
        elif isinstance(item, dict):
            stack.extend((v, (f".{k}", trail)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, (f"[{i}]", trail)) for i, v in reversed(list(enumerate(item))))


def _spell(trail: Any) -> str:
    """``("[3]", (".boxes", ("patcher", None)))`` → ``"patcher.boxes[3]"``."""
    labels = []
    while trail is not None:
        label, trail = trail
        labels.append(label)
    return "".join(reversed(labels))


def _lint_one(
    patcher: dict[str, Any], where: str, script_dir: Path, report: Report, names: dict[str, str]
) -> None:
    boxes, lines = patcher.get("boxes"), patcher.get("lines")
    if not isinstance(boxes, list) or not isinstance(lines, list):
        report.problems.append(Problem(ERROR, where, '"boxes" and "lines" must be lists'))
        return
    ports: dict[str, tuple[int, int]] = {}
    for entry in boxes:
        box = entry.get("box") if isinstance(entry, dict) else None
        if not isinstance(box, dict) or not isinstance(box.get("id"), str):
            report.problems.append(Problem(ERROR, where, f"a box without an id: {entry!r:.80}"))
            continue
        box_id = f"{where}/{box['id']}"
        if box["id"] in ports:
            report.problems.append(Problem(ERROR, box_id, "duplicate box id"))
        report.boxes += 1
        ports[box["id"]] = _declared(box)
        _check_object(box, box_id, script_dir, report)
        _check_parameter(box, box_id, report, names)
    for index, entry in enumerate(lines):
        _check_cord(entry, f"{where} cord {index}", ports, report)


def _declared(box: dict[str, Any]) -> tuple[int, int]:
    inlets, outlets = box.get("numinlets", 0), box.get("numoutlets", 0)
    return (inlets if isinstance(inlets, int) else 0, outlets if isinstance(outlets, int) else 0)


def _check_object(box: dict[str, Any], where: str, script_dir: Path, report: Report) -> None:
    maxclass = box.get("maxclass")
    declared = _declared(box)
    if not isinstance(maxclass, str):
        report.problems.append(Problem(ERROR, where, f"a box without a maxclass: {maxclass!r}"))
        return
    if maxclass != "newobj":
        if maxclass in UI_WITHOUT_COUNTS or maxclass in ("message", "comment", "bpatcher"):
            return
        expected = known_objects().get(str(maxclass))
        if expected is None:
            report.problems.append(Problem(WARNING, where, f"unknown box class {maxclass!r}"))
        elif expected != declared:
            report.problems.append(
                Problem(
                    ERROR,
                    where,
                    f"{maxclass} declares {declared} (inlets, outlets); Max gives {expected}",
                )
            )
        return
    text = box.get("text")
    if not isinstance(text, str) or not text.strip():
        report.problems.append(Problem(ERROR, where, "an object box without text"))
        return
    name, _ = split_text(text)
    if isinstance(box.get("patcher"), dict):
        return  # a subpatcher: its inlets/outlets are its own inlet/outlet boxes
    try:
        expected = object_counts(text, script_dir)
    except FileNotFoundError as error:
        report.problems.append(Problem(ERROR, where, str(error)))
        return
    if expected is None:
        why = (
            "its counts depend on content lint cannot read"
            if name in CONTENT_DEFINED
            else "not a known object or rule (an abstraction or external?)"
        )
        level = ERROR if name in SCRIPTED else WARNING
        report.problems.append(Problem(level, where, f"{text!r}: {why}; counts not checked"))
    elif expected != declared:
        report.problems.append(
            Problem(
                ERROR, where, f"{text!r} declares {declared} (inlets, outlets); expected {expected}"
            )
        )


def _check_parameter(
    box: dict[str, Any], where: str, report: Report, names: dict[str, str]
) -> None:
    objects = box.get("saved_object_attributes")
    if not (
        box.get("parameter_enable")
        or (isinstance(objects, dict) and objects.get("parameter_enable"))
    ):
        return
    attrs = box.get("saved_attribute_attributes", {})
    value = attrs.get("valueof", {}) if isinstance(attrs, dict) else {}
    longname = value.get("parameter_longname") if isinstance(value, dict) else None
    shortname = value.get("parameter_shortname") if isinstance(value, dict) else None
    if (
        not isinstance(longname, str)
        or not isinstance(shortname, str)
        or not (longname and shortname)
    ):
        report.problems.append(Problem(ERROR, where, "a parameter without long and short names"))
        return
    if longname in names:
        report.problems.append(
            Problem(
                ERROR, where, f"parameter long name {longname!r} is also used by {names[longname]}"
            )
        )
    names[longname] = where


def _check_cord(entry: Any, where: str, ports: dict[str, tuple[int, int]], report: Report) -> None:
    line: Any = entry.get("patchline") if isinstance(entry, dict) else None
    try:
        (source, outlet), (destination, inlet) = line["source"], line["destination"]
        if not isinstance(source, str) or not isinstance(destination, str):
            raise TypeError
    except (TypeError, KeyError, ValueError):
        report.problems.append(Problem(ERROR, where, f"malformed patch cord {entry!r:.80}"))
        return
    for box_id, index, side, position in (
        (source, outlet, "outlet", 1),
        (destination, inlet, "inlet", 0),
    ):
        if box_id not in ports:
            report.problems.append(Problem(ERROR, where, f"joins a missing box {box_id!r}"))
        elif not isinstance(index, int) or not 0 <= index < ports[box_id][position]:
            report.problems.append(
                Problem(
                    ERROR, where, f"{side} {index!r} of {box_id} (it has {ports[box_id][position]})"
                )
            )
