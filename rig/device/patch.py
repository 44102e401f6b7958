"""The "rig slots" Max for Live instrument, generated as a patcher dict (the source of truth).

Signal path per slot and player (``a``/``b``)::

    phasor~ 1n @lock 1   one cycle per loop, locked to Live's transport (JS sets the ticks)
      ├──────────────► selector~ 2 1 ─► wave~ ---rig<slot><player> 0 0 2 ─► *~ ◄ line~ (fade)
      └─► !-~ 1. ────┘ (reverse)
    buffer~ ---rig<slot><player> ("replace <path>"; its right outlet bangs when the read is done)
    both players ─► *~ (Slot N Gain) ─► lores~ (Slot N Filter) ─► plugout~

Control: ``udpreceive`` → ``js rig-slots.js`` → ``udpsend``; ``metro 10`` → ``transport`` →
``pack`` → js; ``midiin`` → ``midiparse`` → js; parameters → js. The JS addresses the players by
scripting name (``buf-1-a``, ``phasor-1-a``, ``direction-1-a``, ``fade-1-a``, ``label-1``,
``status``), so the wiring stays thin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.device.objects import object_counts

SOURCE = Path(__file__).resolve().parents[2] / "max4live"  # the device's source folder
JS_FILE = "rig-slots.js"
DEVICE_NAME = "rig slots"
SLOTS = 8
OSC_IN_PORT = 7400  # PROTOCOL.md: the device listens here
RIG_PORT = 7401  # and sends here
FADE_MS = 20
DEVICE_HEIGHT = 169.0  # Live's device strip
COLUMN = 92.0  # presentation width of one slot


@dataclass
class Patcher:
    """Boxes and patch cords, with ids ``obj-1``, ``obj-2``, ... in creation order."""

    boxes: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    script_dir: Path = SOURCE  # folder of the js file, for its declared inlets/outlets

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
        width = max(40.0, 7.0 * len(text))
        return self.add(
            "newobj",
            (x, y, width, 22.0),
            text=text,
            numinlets=inlets,
            numoutlets=outlets,
            outlettype=[""] * outlets,
            **attrs,
        )

    def message(self, text: str, x: float, y: float) -> str:
        """A message box (2 inlets, 1 outlet)."""
        return self.add(
            "message",
            (x, y, max(30.0, 7.0 * len(text)), 22.0),
            text=text,
            numinlets=2,
            numoutlets=1,
            outlettype=[""],
        )

    def connect(self, source: str, outlet: int, destination: str, inlet: int) -> None:
        """A patch cord from ``source``'s outlet to ``destination``'s inlet (0-based)."""
        self.lines.append(
            {"patchline": {"source": [source, outlet], "destination": [destination, inlet]}}
        )


def parameter(
    longname: str,
    shortname: str,
    kind: int,
    low: float,
    high: float,
    initial: float,
    unitstyle: int = 0,
    enum: list[str] | None = None,
    exponent: float = 1.0,
) -> dict[str, Any]:
    """The ``saved_attribute_attributes`` of a Live parameter (kind 0 float, 1 int, 2 enum)."""
    value: dict[str, Any] = {
        "parameter_longname": longname,
        "parameter_shortname": shortname,
        "parameter_type": kind,
        "parameter_mmin": low,
        "parameter_mmax": high,
        "parameter_initial": [initial],
        "parameter_initial_enable": 1,
        "parameter_unitstyle": unitstyle,
        "parameter_modmode": 0,
    }
    if enum:
        value["parameter_enum"] = enum
    if exponent != 1.0:
        value["parameter_exponent"] = exponent
    return {"valueof": value}


def live_control(
    p: Patcher,
    maxclass: str,
    varname: str,
    rect: tuple[float, float, float, float],
    presentation: tuple[float, float, float, float],
    attributes: dict[str, Any],
    **extra: Any,
) -> str:
    """A ``live.*`` control that is a Live parameter (automatable, MIDI-mappable)."""
    counts = object_counts(maxclass)
    assert counts is not None
    return p.add(
        maxclass,
        rect,
        varname=varname,
        parameter_enable=1,
        presentation=1,
        presentation_rect=list(presentation),
        numinlets=counts[0],
        numoutlets=counts[1],
        outlettype=[""] * counts[1],
        saved_attribute_attributes=attributes,
        **extra,
    )


def build_patcher(slots: int = SLOTS, script_dir: Path = SOURCE) -> dict[str, Any]:
    """The whole device as ``{"patcher": {...}}`` (``script_dir`` holds ``rig-slots.js``)."""
    p = Patcher(script_dir=script_dir)
    js = _control(p, slots)
    out = p.obj("plugout~", 40.0, 900.0)
    for slot in range(1, slots + 1):
        _slot(p, slot, js, out)
    parameters = {
        box["box"]["id"]: [
            box["box"]["saved_attribute_attributes"]["valueof"][k]
            for k in ("parameter_longname", "parameter_shortname")
        ]
        + [0]
        for box in p.boxes
        if box["box"].get("parameter_enable")
    }
    width = slots * COLUMN + 8.0
    return {
        "patcher": {
            "fileversion": 1,
            "appversion": {
                "major": 8,
                "minor": 6,
                "revision": 0,
                "architecture": "x64",
                "modernui": 1,
            },
            "classnamespace": "box",
            "rect": [50.0, 80.0, 1600.0, 1000.0],
            "openrect": [0.0, 0.0, width, DEVICE_HEIGHT],
            "openinpresentation": 1,
            "default_fontsize": 10.0,
            "default_fontname": "Arial Bold",
            "gridsize": [8.0, 8.0],
            "devicewidth": width,
            "description": f"{DEVICE_NAME}: {slots} loop slots fed by rig over OSC",
            "boxes": p.boxes,
            "lines": p.lines,
            "parameters": {**parameters, "inherited_shortname": 1},
            "dependency_cache": [{"name": JS_FILE, "type": "TEXT", "implicit": 1}],
            "latency": 0,
            "is_mpe": 0,
            "autosave": 0,
        }
    }


def _control(p: Patcher, slots: int) -> str:
    """OSC, transport, MIDI, device settings and the status line; returns the js box id."""
    js = p.obj(f"js {JS_FILE} {slots}", 40.0, 200.0)
    osc_in = p.obj(f"udpreceive {OSC_IN_PORT}", 40.0, 120.0)
    osc_out = p.obj(f"udpsend 127.0.0.1 {RIG_PORT}", 40.0, 260.0)
    p.connect(osc_in, 0, js, 0)
    p.connect(js, 0, osc_out, 0)
    # device ready → init the logic, start polling the transport
    ready = p.obj("live.thisdevice", 300.0, 20.0)
    order = p.obj("t b b", 300.0, 50.0)
    init = p.message("init", 340.0, 80.0)
    start = p.message("1", 300.0, 80.0)
    metro = p.obj("metro 10", 300.0, 110.0)
    transport = p.obj("transport", 300.0, 140.0)
    pack = p.obj("pack 0 0 0. 0. 0", 300.0, 170.0)
    to_js = p.obj("prepend transport", 300.0, 200.0)
    timesig = p.obj("prepend timesig", 460.0, 200.0)
    p.connect(ready, 0, order, 0)
    p.connect(order, 1, init, 0)
    p.connect(order, 0, start, 0)
    p.connect(init, 0, js, 0)
    p.connect(start, 0, metro, 0)
    p.connect(metro, 0, transport, 0)
    for outlet, inlet in ((0, 0), (1, 1), (2, 2), (4, 3), (6, 4)):  # bar beat units tempo state
        p.connect(transport, outlet, pack, inlet)
    p.connect(transport, 5, timesig, 0)
    p.connect(pack, 0, to_js, 0)
    p.connect(timesig, 0, js, 0)
    # MIDI notes on the track
    midi = p.obj("midiin", 600.0, 20.0)
    parse = p.obj("midiparse", 600.0, 50.0)
    note = p.obj("prepend note", 600.0, 80.0)
    p.connect(midi, 0, parse, 0)
    p.connect(parse, 0, note, 0)
    p.connect(note, 0, js, 0)
    control = p.obj("prepend cc", 700.0, 80.0)  # control changes go on to the rig
    p.connect(parse, 2, control, 0)
    p.connect(control, 0, js, 0)
    p.connect(to_js, 0, js, 0)
    _settings(p, js, osc_in, osc_out, slots)
    p.add(
        "comment",
        (40.0, 300.0, 400.0, 18.0),
        varname="status",
        text="rig: starting",
        numinlets=1,
        numoutlets=0,
        presentation=1,
        presentation_rect=[4.0, DEVICE_HEIGHT - 20.0, slots * COLUMN - 8.0, 18.0],
    )
    return js


def _settings(p: Patcher, js: str, osc_in: str, osc_out: str, slots: int) -> None:
    """Device-wide parameters (bottom row of the device)."""
    row = DEVICE_HEIGHT - 40.0
    controls = [
        (
            "live.numbox",
            "OSC In Port",
            "In Port",
            1,
            1024,
            65535,
            OSC_IN_PORT,
            "prepend port",
            osc_in,
        ),
        ("live.numbox", "Rig Port", "Rig Port", 1, 1024, 65535, RIG_PORT, "prepend port", osc_out),
        ("live.tab", "Launch Quantize", "Quantize", 2, 0, 2, 0, "prepend param quantize", js),
        (
            "live.numbox",
            "Trigger Note",
            "Trig Note",
            1,
            0,
            127,
            36,
            "prepend param trigger_note",
            js,
        ),
        ("live.numbox", "Stop Note", "Stop Note", 1, 0, 127, 48, "prepend param stop_note", js),
        ("live.text", "Autoplay", "Autoplay", 2, 0, 1, 1, "prepend param autoplay", js),
    ]
    for index, (cls, long, short, kind, low, high, init, route, target) in enumerate(controls):
        x = 900.0 + 150.0 * index
        enum = (
            ["Bar", "Beat", "Off"]
            if long == "Launch Quantize"
            else (["Off", "On"] if cls == "live.text" else None)
        )
        attrs = parameter(long, short, kind, low, high, init, unitstyle=0, enum=enum)
        extra: dict[str, Any] = (
            {"text": long, "texton": long, "mode": 0} if cls == "live.text" else {}
        )
        box = live_control(
            p,
            cls,
            long.lower().replace(" ", "-"),
            (x, 20.0, 60.0, 15.0),
            (4.0 + 72.0 * index, row, 66.0, 15.0),
            attrs,
            **extra,
        )
        relay = p.obj(route, x, 60.0)
        p.connect(box, 0, relay, 0)
        p.connect(relay, 0, target, 0)
    folder = p.add(
        "textedit",
        (900.0, 100.0, 300.0, 20.0),
        varname="takes-edit",
        numinlets=1,
        numoutlets=4,
        outlettype=["", "int", "", ""],
        presentation=1,
        presentation_rect=[4.0 + 72.0 * len(controls), row, 200.0, 15.0],
        text="",
        hint="take folder (empty: any)",
    )
    remember = p.obj("pattr takefolder @bindto takes-edit @parameter_enable 1", 900.0, 130.0)
    relay = p.obj("prepend param takes", 900.0, 160.0)
    p.connect(folder, 0, relay, 0)
    p.connect(relay, 0, js, 0)
    del remember  # pattr stores the folder with the Live set through its binding; no cords


def _slot(p: Patcher, slot: int, js: str, out: str) -> None:
    """Two players, the slot's gain and filter, its parameters and its label."""
    x0 = 40.0 + (slot - 1) * 200.0
    y0 = 400.0
    gain_l = p.obj("*~", x0, y0 + 320.0)
    gain_r = p.obj("*~", x0 + 60.0, y0 + 320.0)
    for side_index, side in enumerate("ab"):
        _player(p, slot, side, x0 + side_index * 100.0, y0, js, (gain_l, gain_r))
    gain_line = p.obj("line~", x0 + 120.0, y0 + 290.0)
    gain_msg = p.message("$1 20", x0 + 120.0, y0 + 260.0)
    to_amp = p.obj("dbtoa", x0 + 120.0, y0 + 230.0)
    px = 4.0 + (slot - 1) * COLUMN
    gain = live_control(
        p,
        "live.dial",
        f"gain-{slot}",
        (x0 + 120.0, y0 + 180.0, 44.0, 48.0),
        (px, 42.0, 44.0, 48.0),
        parameter(f"Slot {slot} Gain", f"Gain {slot}", 0, -70.0, 6.0, 0.0, 4),
    )
    p.connect(gain, 0, to_amp, 0)
    p.connect(to_amp, 0, gain_msg, 0)
    p.connect(gain_msg, 0, gain_line, 0)
    p.connect(gain_line, 0, gain_l, 1)
    p.connect(gain_line, 0, gain_r, 1)
    cutoff = live_control(
        p,
        "live.dial",
        f"filter-{slot}",
        (x0 + 60.0, y0 + 350.0, 44.0, 48.0),
        (px + 44.0, 42.0, 44.0, 48.0),
        parameter(
            f"Slot {slot} Filter", f"Filter {slot}", 0, 20.0, 20000.0, 20000.0, 3, exponent=3.0
        ),
    )
    for channel, gain_box in enumerate((gain_l, gain_r)):
        lowpass = p.obj("lores~ 20000. 0.", x0 + 60.0 * channel, y0 + 410.0)
        p.connect(gain_box, 0, lowpass, 0)
        p.connect(cutoff, 0, lowpass, 1)
        p.connect(lowpass, 0, out, channel)
    reverse = live_control(
        p,
        "live.text",
        f"reverse-{slot}",
        (x0, y0 + 460.0, 40.0, 15.0),
        (px, 94.0, 42.0, 15.0),
        parameter(f"Slot {slot} Reverse", f"Rev {slot}", 2, 0, 1, 0, enum=["Off", "On"]),
        text="Rev",
        texton="Rev",
        mode=0,
    )
    speed = live_control(
        p,
        "live.dial",
        f"speed-{slot}",
        (x0 + 50.0, y0 + 460.0, 44.0, 36.0),
        (px + 44.0, 92.0, 44.0, 36.0),
        parameter(f"Slot {slot} Speed", f"Speed {slot}", 2, 0, 2, 1, enum=["½", "1", "2"]),
    )
    for control, name in ((reverse, "reverse"), (speed, "speed")):
        relay = p.obj(f"prepend param {name} {slot}", x0, y0 + 490.0 + 30.0 * (name == "speed"))
        p.connect(control, 0, relay, 0)
        p.connect(relay, 0, js, 0)
    p.add(
        "comment",
        (x0, y0 + 560.0, 180.0, 36.0),
        varname=f"label-{slot}",
        text=f"{slot} empty",
        numinlets=1,
        numoutlets=0,
        presentation=1,
        presentation_rect=[px, 4.0, COLUMN - 4.0, 36.0],
        linecount=2,
    )


def _player(
    p: Patcher, slot: int, side: str, x: float, y: float, js: str, gains: tuple[str, str]
) -> None:
    """One player: buffer, locked phasor, reverse switch, wave~, fade."""
    name = f"---rig{slot}{side}"
    buffer = p.obj(f"buffer~ {name} 1000 2", x, y, varname=f"buf-{slot}-{side}")
    done = p.message(f"loaded {slot} {side}", x, y + 30.0)
    p.connect(buffer, 1, done, 0)
    p.connect(done, 0, js, 0)
    phasor = p.obj("phasor~ 1n @lock 1", x, y + 60.0, varname=f"phasor-{slot}-{side}")
    backwards = p.obj("!-~ 1.", x + 50.0, y + 90.0)
    direction = p.obj("selector~ 2 1", x, y + 120.0, varname=f"direction-{slot}-{side}")
    p.connect(phasor, 0, direction, 1)
    p.connect(phasor, 0, backwards, 0)
    p.connect(backwards, 0, direction, 2)
    wave = p.obj(f"wave~ {name} 0 0 2", x, y + 150.0)
    p.connect(direction, 0, wave, 0)
    fade = p.obj("line~", x + 50.0, y + 180.0, varname=f"fade-{slot}-{side}")
    for channel in (0, 1):
        level = p.obj("*~", x + 50.0 * channel, y + 210.0)
        p.connect(wave, channel, level, 0)
        p.connect(fade, 0, level, 1)
        p.connect(level, 0, gains[channel], 0)
