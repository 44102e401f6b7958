"""How many inlets and outlets a Max box has: the known-objects table plus rules for objects
whose counts depend on their arguments.

``max4live/reference/known-objects.json`` holds the counts Max 8.6 gives each object created
without arguments (from Ableton's maxdevtools, MIT). The rules below cover the objects whose
counts change with their arguments; they were checked against the boxes Max itself saved in the
reference devices (``sel 0 1 2 3`` has 5 inlets and 5 outlets, ``t l l 0`` 1 and 3, ``pak 0 0 0``
3 and 1, ``sprintf %i:%i:%i`` 3 and 1, ...). ``js``/``v8`` boxes take their counts from the
script's ``inlets = N`` and ``outlets = M`` lines.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path

KNOWN_OBJECTS = (
    Path(__file__).resolve().parents[2] / "max4live" / "reference" / "known-objects.json"
)

Counts = tuple[int, int]  # (inlets, outlets)


@functools.cache
def known_objects() -> dict[str, Counts]:
    """Object name or UI maxclass → (inlets, outlets) with no arguments."""
    table = json.loads(KNOWN_OBJECTS.read_text(encoding="utf-8"))["objects"]
    return {name: (int(o["numinlets"]), int(o["numoutlets"])) for name, o in table.items()}


def split_text(text: str) -> tuple[str, list[str]]:
    """An object box's text → (name, positional arguments before the first @attribute)."""
    tokens = text.split()
    if not tokens:
        return "", []
    args: list[str] = []
    for token in tokens[1:]:
        if token.startswith("@"):
            break
        args.append(token)
    return tokens[0], args


def _arg_int(args: list[str], index: int, default: int) -> int:
    try:
        return int(float(args[index]))
    except (IndexError, ValueError):
        return default


def _select(args: list[str]) -> Counts:
    n = len(args)
    return (max(2, n + 1), max(2, n + 1))


def _trigger(args: list[str]) -> Counts:
    return (1, len(args) or 2)


def _pack(args: list[str]) -> Counts:
    return (len(args) or 2, 1)


def _unpack(args: list[str]) -> Counts:
    return (1, len(args) or 2)


def _sprintf(args: list[str]) -> Counts:
    specs = re.findall(r"%[-+ #0]*\d*(?:\.\d+)?[a-zA-Z]", " ".join(args).replace("%%", ""))
    return (len(specs), 1)


# name → rule(args) -> (inlets, outlets); consulted before the known-objects table.
RULES: dict[str, Callable[[list[str]], Counts]] = {
    "sel": _select,
    "select": _select,
    "t": _trigger,
    "trigger": _trigger,
    "pack": _pack,
    "pak": _pack,
    "unpack": _unpack,
    "sprintf": _sprintf,
    "route": lambda a: (2 if len(a) <= 1 else 1, max(1, len(a)) + 1),
    "wave~": lambda a: (3, _arg_int(a, 3, 1)),
    "groove~": lambda a: (3, _arg_int(a, 1, 1) + 1),
    "selector~": lambda a: (_arg_int(a, 0, 1) + 1, 1),
    "udpsend": lambda a: (1, 0),
    "s": lambda a: (1, 0),
    "send": lambda a: (1, 0),
    "r": lambda a: (0, 1),
    "receive": lambda a: (0, 1),
    "in": lambda a: (0, 1),  # inside poly~ and gen: an inlet of the enclosing object
    "out": lambda a: (1, 0),
}

SCRIPTED = ("js", "v8")
# Objects whose counts come from content this table cannot see (a gen patch, a poly~ or
# node.script file): reported as unchecked, not as errors.
CONTENT_DEFINED = frozenset(
    {"gen~", "gen", "jit.gen", "jit.pix", "poly~", "node.script", "bpatcher", "mc.gen~", "rnbo~"}
)
ALIASES = {"del": "delay", "b": "bangbang", "f": "float", "i": "int"}


def script_ports(script: Path) -> Counts:
    """The ``inlets = N`` / ``outlets = M`` a Max JS file declares (1 and 1 when it does not)."""
    text = script.read_text(encoding="utf-8", errors="replace")
    inlets = re.findall(r"^\s*inlets\s*=\s*(\d+)", text, re.MULTILINE)
    outlets = re.findall(r"^\s*outlets\s*=\s*(\d+)", text, re.MULTILINE)
    return (int(inlets[-1]) if inlets else 1, int(outlets[-1]) if outlets else 1)


def object_counts(text: str, script_dir: Path | None = None) -> Counts | None:
    """(inlets, outlets) of an object box with ``text``; None when unknown.

    Raises:
        FileNotFoundError: a js/v8 box whose script is not in ``script_dir``.
    """
    name, args = split_text(text)
    if name in SCRIPTED:
        if not args or script_dir is None:
            return None
        script = script_dir / args[0]
        if not script.is_file() and not args[0].endswith(".js"):
            script = script_dir / f"{args[0]}.js"
        if not script.is_file():
            raise FileNotFoundError(f"{name} script {args[0]} is not in {script_dir}")
        return script_ports(script)
    if name in RULES:
        return RULES[name](args)
    if name in CONTENT_DEFINED:
        return None
    return known_objects().get(ALIASES.get(name, name))
