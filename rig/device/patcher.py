"""Max patcher JSON, built in Python: boxes, patch cords and Live parameters.

Attribute names and values are the ones Max itself saves (checked against the devices Max saved
in ``max4live/reference/`` and public ``.maxpat`` files): a Live parameter keeps its settings in
``saved_attribute_attributes.valueof`` (``parameter_type`` 0 float, 1 int, 2 enum, 3 blob;
``parameter_invisible`` 0 automated and stored, 1 stored only, 2 hidden), its Info View text in
``annotation_name``/``annotation`` and ``parameter_info``; an object box that is a parameter (a
``js`` holding the device state as a Blob) says so in ``saved_object_attributes``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from rig.device.objects import object_counts


class Kind(IntEnum):
    """``parameter_type``: Live keeps Int parameters to 0-255; ports and Hz are Float."""

    FLOAT = 0
    INT = 1
    ENUM = 2
    BLOB = 3


class Visibility(IntEnum):
    """``parameter_invisible``: settings are Stored Only (not automatable, not on Push)."""

    AUTOMATED = 0
    STORED_ONLY = 1
    HIDDEN = 2


class Unit(IntEnum):
    """``parameter_unitstyle`` values used here."""

    INT = 0
    FLOAT = 1
    HZ = 3
    DB = 4
    MIDI = 8
    CUSTOM = 9


@dataclass(frozen=True)
class Param:
    """A Live parameter: how Live stores, shows and explains it."""

    longname: str  # stable: Live Sets, automation and mappings refer to it (parameters.txt)
    shortname: str
    kind: Kind
    info: str  # Info View text
    low: float = 0.0
    high: float = 1.0
    initial: float = 0.0
    unit: Unit = Unit.INT
    enum: tuple[str, ...] = ()
    exponent: float = 1.0
    visibility: Visibility = Visibility.AUTOMATED

    def attributes(self) -> dict[str, Any]:
        """The box's ``saved_attribute_attributes``."""
        value: dict[str, Any] = {
            "parameter_longname": self.longname,
            "parameter_shortname": self.shortname,
            "parameter_type": int(self.kind),
            "parameter_invisible": int(self.visibility),
            "parameter_annotation_name": self.longname,
            "parameter_info": self.info,
            "parameter_modmode": 0,
        }
        if self.kind != Kind.BLOB:
            value.update(
                parameter_mmin=self.low,
                parameter_mmax=self.high,
                parameter_initial=[self.initial],
                parameter_initial_enable=1,
                parameter_unitstyle=int(self.unit),
            )
        if self.enum:
            value["parameter_enum"] = list(self.enum)
        if self.exponent != 1.0:
            value["parameter_exponent"] = self.exponent
        return {"valueof": value}


@dataclass
class Patcher:
    """Boxes and patch cords, with ids ``obj-1``, ``obj-2``, ... in creation order."""

    script_dir: Path  # folder of the js file, for its declared inlets/outlets
    boxes: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def add(self, maxclass: str, rect: tuple[float, float, float, float], **attrs: Any) -> str:
        """A box of ``maxclass`` at ``rect`` (x, y, w, h in the patching view); returns its id."""
        box_id = f"obj-{len(self.boxes) + 1}"
        box = {"id": box_id, "maxclass": maxclass, "patching_rect": list(rect), **attrs}
        self.boxes.append({"box": box})
        return box_id

    def obj(self, text: str, x: float, y: float, **attrs: Any) -> str:
        """An object box; its inlet/outlet counts come from :func:`object_counts`."""
        counts = object_counts(text, self.script_dir)
        if counts is None:
            raise ValueError(f"no inlet/outlet rule for {text!r}")
        inlets, outlets = counts
        kind = "signal" if text.split()[0].endswith("~") else ""
        return self.add(
            "newobj",
            (x, y, max(40.0, 7.0 * len(text)), 22.0),
            text=text,
            numinlets=inlets,
            numoutlets=outlets,
            outlettype=[kind] * outlets,
            **attrs,
        )

    def message(self, text: str, x: float, y: float, **attrs: Any) -> str:
        """A message box (2 inlets, 1 outlet)."""
        return self.add(
            "message",
            (x, y, max(30.0, 7.0 * len(text)), 22.0),
            text=text,
            numinlets=2,
            numoutlets=1,
            outlettype=[""],
            **attrs,
        )

    def ui(
        self,
        maxclass: str,
        rect: tuple[float, float, float, float],
        presentation: tuple[float, float, float, float],
        param: Param | None = None,
        **attrs: Any,
    ) -> str:
        """A UI box shown in the device (presentation), a Live parameter when ``param`` is given."""
        counts = object_counts(maxclass)
        if counts is None:
            raise ValueError(f"no inlet/outlet rule for {maxclass!r}")
        extra: dict[str, Any] = {}
        if param is not None:
            extra = {
                "parameter_enable": 1,
                "saved_attribute_attributes": param.attributes(),
                "annotation_name": param.longname,
                "annotation": param.info,
            }
        return self.add(
            maxclass,
            rect,
            presentation=1,
            presentation_rect=[float(round(v)) for v in presentation],
            numinlets=counts[0],
            numoutlets=counts[1],
            outlettype=[""] * counts[1],
            **extra,
            **attrs,
        )

    def connect(self, source: str, outlet: int, destination: str, inlet: int) -> None:
        """A patch cord from ``source``'s outlet to ``destination``'s inlet (0-based)."""
        self.lines.append(
            {"patchline": {"source": [source, outlet], "destination": [destination, inlet]}}
        )

    def chain(self, *steps: str | tuple[str, int, int]) -> str:
        """Cord each box's outlet 0 to the next box's inlet 0; a step may be ``(id, outlet,
        inlet)`` to use other ports (its outlet feeds the next, its inlet takes the previous).
        Returns the last id."""
        ids = [s if isinstance(s, tuple) else (s, 0, 0) for s in steps]
        for (source, outlet, _), (destination, _, inlet) in itertools.pairwise(ids):
            self.connect(source, outlet, destination, inlet)
        return ids[-1][0]

    def parameters(self) -> dict[str, Any]:
        """The patcher's ``parameters`` table: box id → [long name, short name, 0]."""
        table: dict[str, Any] = {}
        for entry in self.boxes:
            box = entry["box"]
            enabled = box.get("parameter_enable") or box.get("saved_object_attributes", {}).get(
                "parameter_enable"
            )
            if enabled:
                value = box["saved_attribute_attributes"]["valueof"]
                table[box["id"]] = [value["parameter_longname"], value["parameter_shortname"], 0]
        return table
