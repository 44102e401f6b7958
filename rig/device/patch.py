"""The "rig slots" Max for Live instrument, generated as a patcher dict (the source of truth).

Three layers, one way: the controls and OSC feed ``[js rig-slots.js]`` (control logic: what
plays), which sets named ``sig~`` values and reads ``buffer~``s; the signal graph
(:mod:`rig.device.dsp`) decides when, on the bar or beat, sample-accurately; ``edge~`` reporters
tell the logic what the graph did. The ``js`` box is a Blob parameter holding the device's state
(take folder, every slot's take, which player is front), saved with the Live Set.

Live parameters follow Ableton's Max for Live Production Guidelines: settings (ports, notes,
quantize, autoplay) are Stored Only, ports are Float with an Int unit style (Live's Int holds
0-255), buttons are Hidden, every control has Info View text, ``live.banks`` puts the slots'
gains first on Push, and colours are Live's theme.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rig.device import dsp
from rig.device.patcher import Kind, Param, Patcher, Unit, Visibility

SOURCE = Path(__file__).resolve().parents[2] / "max4live"  # the device's source folder
JS_FILE = "rig-slots.js"
DEVICE_NAME = "rig slots"
SLOTS = 8
OSC_IN_PORT = 7400  # PROTOCOL.md: the device listens here
RIG_PORT = 7401  # and sends here
DEVICE_HEIGHT = 169.0  # Live's device strip
COLUMN = 92.0  # presentation width of one slot
SETTINGS_WIDTH = 150.0
STATE = Param(
    "rig slots state",
    "State",
    Kind.BLOB,
    "The take folder and every slot's take, saved with the Live Set.",
    visibility=Visibility.STORED_ONLY,
)


def build_patcher(slots: int = SLOTS, script_dir: Path = SOURCE) -> dict[str, Any]:
    """The whole device as ``{"patcher": {...}}`` (``script_dir`` holds ``rig-slots.js``)."""
    p = Patcher(script_dir=script_dir)
    js = _control(p, slots)
    out = p.obj("plugout~", 40.0, 1900.0)
    clock = dsp.clock(p)
    for n in range(1, slots + 1):
        x = 40.0 + (n - 1) * 900.0
        result, reporters = dsp.slot(p, n, clock, x, 1300.0)
        for reporter in reporters:
            p.connect(reporter, 0, js, 0)
        for player in "ab":
            p.connect(_box(p, f"done-{n}-{player}"), 0, js, 0)
        _slot_controls(p, n, js, result, out, x)
    width = slots * COLUMN + SETTINGS_WIDTH + 8.0
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
            "default_fontname": "Ableton Sans Medium",
            "gridsize": [8.0, 8.0],
            "devicewidth": width,
            "description": f"{DEVICE_NAME}: {slots} loop slots fed by rig over OSC",
            "boxes": p.boxes,
            "lines": p.lines,
            "parameters": {
                **p.parameters(),
                "parameterbanks": _banks(slots),
                "inherited_shortname": 1,
            },
            "dependency_cache": [{"name": JS_FILE, "type": "TEXT", "implicit": 1}],
            "latency": 0,
            "is_mpe": 0,
            "autosave": 0,
        }
    }


def _banks(slots: int) -> dict[str, Any]:
    """Push banks: the performance controls, gains first; no settings."""
    names = ("Gain", "Filter", "Reverse", "Speed")
    return {
        str(i): {
            "index": i,
            "name": f"Slot {name}s",
            "parameters": [f"Slot {n} {name}" if n <= slots else "-" for n in range(1, 9)],
        }
        for i, name in enumerate(names)
    }


def _box(p: Patcher, varname: str) -> str:
    return next(e["box"]["id"] for e in p.boxes if e["box"].get("varname") == varname)


def _control(p: Patcher, slots: int) -> str:
    """The logic, OSC, transport and MIDI in, the device settings; returns the js box id."""
    js = p.obj(
        f"js {JS_FILE} {slots}",
        40.0,
        200.0,
        varname="logic",
        saved_object_attributes={"parameter_enable": 1, "parameter_mappable": 0},
        saved_attribute_attributes=STATE.attributes(),
    )
    osc_in = p.obj(f"udpreceive {OSC_IN_PORT}", 40.0, 120.0, varname="osc-in")
    osc_out = p.obj(f"udpsend 127.0.0.1 {RIG_PORT}", 40.0, 260.0, varname="osc-out")
    p.connect(osc_in, 0, js, 0)
    p.connect(js, 0, osc_out, 0)
    ready = p.obj("live.thisdevice", 300.0, 20.0)
    order = p.obj("t b b b b", 300.0, 50.0)  # right to left: init, poll, Live's quantization, SR
    p.connect(ready, 0, order, 0)
    p.chain((order, 3, 0), p.message("init", 420.0, 80.0), js)
    poll = p.chain((order, 2, 0), p.message("1", 380.0, 80.0), p.obj("metro 50", 380.0, 110.0))
    transport = p.chain(poll, p.obj("transport", 380.0, 140.0))
    pack = p.obj("pack 0 0 0. 0. 0", 380.0, 170.0)
    for outlet, inlet in ((0, 0), (1, 1), (2, 2), (4, 3), (6, 4)):  # bar beat units tempo state
        p.connect(transport, outlet, pack, inlet)
    p.chain(pack, p.obj("prepend transport", 380.0, 200.0), js)
    p.chain((transport, 5, 0), p.obj("prepend timesig", 520.0, 200.0), js)
    observer = p.obj("live.observer @property clip_trigger_quantization", 300.0, 170.0)
    p.chain(
        (order, 1, 0),
        p.message("path live_set", 300.0, 110.0),
        p.obj("live.path", 300.0, 140.0),
        (observer, 0, 1),
    )
    p.chain(observer, p.obj("prepend param globalquant", 300.0, 200.0), js)
    rate = p.chain((order, 0, 0), p.obj("dspstate~", 640.0, 110.0))
    p.chain((rate, 1, 0), p.obj("prepend samplerate", 640.0, 140.0), js)
    midi = p.chain(p.obj("midiin", 760.0, 20.0), p.obj("midiparse", 760.0, 50.0))
    p.chain(midi, p.obj("prepend note", 760.0, 80.0), js)
    p.chain((midi, 2, 0), p.obj("prepend cc", 860.0, 80.0), js)
    _settings(p, js, osc_in, osc_out, slots)
    p.obj("live.banks", 1000.0, 200.0)  # Push: the banks are the patcher's parameterbanks
    return js


def _settings(p: Patcher, js: str, osc_in: str, osc_out: str, slots: int) -> None:
    """The device-wide settings (right-hand column) and the status line."""
    x0 = slots * COLUMN + 8.0
    port = "UDP port %s. Each device on this computer needs its own (PROTOCOL.md)."
    ports = (
        (
            Param(
                "OSC In Port",
                "In",
                Kind.FLOAT,
                port % "the device listens on for the rig",
                1024,
                65535,
                OSC_IN_PORT,
                visibility=Visibility.STORED_ONLY,
            ),
            osc_in,
            0,
        ),
        (
            Param(
                "Rig Port",
                "Rig",
                Kind.FLOAT,
                port % "the rig listens on (on 127.0.0.1)",
                1024,
                65535,
                RIG_PORT,
                visibility=Visibility.STORED_ONLY,
            ),
            osc_out,
            74,
        ),
    )
    for param, target, dx in ports:
        box = p.ui("live.numbox", (900.0 + dx * 2, 20.0, 60.0, 15.0), (x0 + dx, 4, 70, 15), param)
        as_int = p.chain(box, p.obj("t i", 900.0 + dx * 2, 45.0))
        p.chain(as_int, p.obj("prepend port", 900.0 + dx * 2, 70.0), target)
        if target == osc_in:
            p.chain(as_int, p.obj("prepend param port", 1050.0, 70.0), js)
    quantize = Param(
        "Launch Quantize",
        "Quantize",
        Kind.ENUM,
        "When a slot starts or stops after its note: on the next bar, beat, at once, or on "
        "Live's global launch quantization.",
        0,
        3,
        0,
        enum=("Bar", "Beat", "Off", "Global"),
        visibility=Visibility.STORED_ONLY,
    )
    _tab(p, js, quantize, "quantize", 1200.0, (x0, 22, 144, 15))
    notes = (
        ("Trigger Note", "Start", "trigger_note", 36, "starts slot 1"),
        ("Stop Note", "Stop", "stop_note", 48, "stops slot 1"),
        ("Generate Note", "Gen", "generate_note", 60, "asks the rig for a new loop in slot 1"),
    )
    evolve = ("Evolve Note", "Evolve", "evolve_note", 72, "starts or stops slot 1 evolving")
    for index, (long, short, key, initial, what) in enumerate((*notes, evolve)):
        info = f"The MIDI note that {what}; the notes above it do the same for slots 2-{slots}."
        param = Param(
            long,
            short,
            Kind.INT,
            info,
            0,
            127,
            initial,
            Unit.MIDI,
            visibility=Visibility.STORED_ONLY,
        )
        row, column = divmod(index, 3)  # the fourth goes below the Output Pair
        box = p.ui(
            "live.numbox",
            (1400.0 + 80 * index, 20.0, 60.0, 15.0),
            (x0 + 49 * column, 40 + 90 * row, 46, 15),
            param,
        )
        p.chain(box, p.obj(f"prepend param {key}", 1400.0 + 80 * index, 45.0), js)
    autoplay = Param(
        "Autoplay",
        "Autoplay",
        Kind.ENUM,
        "On: a slot that has no loop starts playing when its first loop arrives.",
        0,
        1,
        1,
        enum=("Off", "On"),
        visibility=Visibility.STORED_ONLY,
    )
    box = p.ui(
        "live.text",
        (1700.0, 20.0, 60.0, 15.0),
        (x0, 58, 70, 15),
        autoplay,
        text="Autoplay",
        texton="Autoplay",
        mode=1,
    )
    p.chain(box, p.obj("prepend param autoplay", 1700.0, 45.0), js)
    pair = Param(
        "Output Pair",
        "Pair",
        Kind.ENUM,
        "Which pair of a quad take this device plays: Front (channels 1-2) or Rear (3-4, on a "
        "second device on another track). Stereo takes play on both.",
        0,
        1,
        0,
        enum=("Front", "Rear"),
        visibility=Visibility.STORED_ONLY,
    )
    _tab(p, js, pair, "pair", 2250.0, (x0, 114, 144, 15))
    _folder(p, js, x0)
    p.ui(
        "live.comment",
        (40.0, 300.0, 400.0, 18.0),
        (4, DEVICE_HEIGHT - 22, slots * COLUMN - 8, 18),
        varname="status",
        text="rig: starting",
    )


def _tab(
    p: Patcher,
    js: str,
    param: Param,
    key: str,
    x: float,
    presentation: tuple[float, float, float, float],
) -> None:
    """A one-line ``live.tab`` setting that tells the js ``param KEY value``."""
    box = p.ui(
        "live.tab",
        (x, 20.0, 140.0, 15.0),
        presentation,
        param,
        num_lines_patching=1,
        num_lines_presentation=1,
    )
    p.chain(box, p.obj(f"prepend param {key}", x, 45.0), js)


def _folder(p: Patcher, js: str, x0: float) -> None:
    """The take folder: typed (Return enters it) or chosen in a dialog."""
    edit = p.ui(
        "textedit",
        (1800.0, 20.0, 300.0, 20.0),
        (x0, 76, 144, 34),
        varname="takes-edit",
        keymode=1,
        lines=2,
        outputmode=1,
        text="",
        parameter_enable=0,
        hint="The rig's take folder: type it and press Return, or Choose",
        annotation="The folder rig writes takes into. Loads from anywhere else are refused; "
        "while none is set, every load is (the rig sends its own when it starts).",
    )
    relay = p.obj("prepend folder", 1800.0, 80.0)
    p.chain(edit, p.obj("route text", 1800.0, 50.0), relay, js)
    choose = Param(
        "Choose Folder",
        "Choose",
        Kind.ENUM,
        "Choose the take folder in a dialog.",
        0,
        1,
        0,
        enum=("Choose", "Choose"),
        visibility=Visibility.HIDDEN,
    )
    button = p.ui(
        "live.text",
        (2150.0, 20.0, 60.0, 15.0),
        (x0 + 74, 58, 70, 15),
        choose,
        text="Choose…",
        texton="Choose…",
        mode=0,
    )
    p.chain(
        button,
        p.obj("opendialog fold", 2150.0, 50.0),
        p.obj("conformpath slash absolute", 2150.0, 80.0),
        relay,
    )


def _slot_controls(p: Patcher, n: int, js: str, out: dsp.SlotOut, plugout: str, x: float) -> None:
    """Slot ``n``'s column: its label, waveform, gain, filter, reverse, speed and Generate."""
    px = 4.0 + (n - 1) * COLUMN
    y = 2000.0
    p.ui(
        "live.comment",
        (x, y, 180.0, 30.0),
        (px, 2, COLUMN - 4, 26),
        varname=f"label-{n}",
        text=f"{n} empty",
        linecount=2,
    )
    wave = p.ui(
        "waveform~",
        (x, y + 40, 180.0, 40.0),
        (px, 28, COLUMN - 4, 22),
        varname=f"wave-{n}",
        saved_attribute_attributes=_theme_colours(),
    )
    for side in "ab":
        p.connect(
            p.message(f"set ---rig{n}{side}", x + 200, y + 40, varname=f"show-{n}-{side}"),
            0,
            wave,
            0,
        )
    gain = p.ui(
        "live.dial",
        (x, y + 100, 44.0, 48.0),
        (px, 50, 44, 48),
        Param(
            f"Slot {n} Gain",
            f"Gain {n}",
            Kind.FLOAT,
            f"Level of slot {n} (dB).",
            -70.0,
            6.0,
            0.0,
            Unit.DB,
        ),
    )
    level = p.chain(
        gain, p.obj("dbtoa", x, y + 150), p.message("$1 20", x, y + 175), p.obj("line~", x, y + 200)
    )
    cutoff = p.ui(
        "live.dial",
        (x + 60, y + 100, 44.0, 48.0),
        (px + 44, 50, 44, 48),
        Param(
            f"Slot {n} Filter",
            f"Filter {n}",
            Kind.FLOAT,
            f"Low-pass cut-off of slot {n}.",
            20.0,
            20000.0,
            20000.0,
            Unit.HZ,
            exponent=3.0,
        ),
    )
    smooth = p.chain(cutoff, p.message("$1 20", x + 60, y + 175), p.obj("line~", x + 60, y + 200))
    for channel, source in enumerate((out.left, out.right)):
        scaled = p.obj("*~", x + 60 * channel, y + 230)
        p.connect(source, 0, scaled, 0)
        p.connect(level, 0, scaled, 1)
        lowpass = p.obj("lores~ 20000. 0.", x + 60 * channel, y + 260)
        p.connect(scaled, 0, lowpass, 0)
        p.connect(smooth, 0, lowpass, 1)
        p.connect(lowpass, 0, plugout, channel)
    reverse = p.ui(
        "live.text",
        (x, y + 300, 40.0, 15.0),
        (px, 100, 42, 15),
        Param(
            f"Slot {n} Reverse",
            f"Rev {n}",
            Kind.ENUM,
            f"Plays slot {n}'s loop backwards.",
            0,
            1,
            0,
            enum=("Off", "On"),
        ),
        text="Rev",
        texton="Rev",
        mode=1,
    )
    speed = p.ui(
        "live.tab",
        (x + 50, y + 300, 44.0, 15.0),
        (px + 44, 100, 44, 15),
        Param(
            f"Slot {n} Speed",
            f"Speed {n}",
            Kind.ENUM,
            f"Slot {n}'s loop spans twice (½) or half (2) its bars, at its own pitch.",
            0,
            2,
            1,
            enum=("½", "1", "2"),
        ),
        num_lines_patching=1,
        num_lines_presentation=1,
    )
    for control, name in ((reverse, "reverse"), (speed, "speed")):
        p.chain(control, p.obj(f"prepend param {name} {n}", x + 100, y + 330), js)
    generate = p.ui(
        "live.text",
        (x, y + 360, 80.0, 15.0),
        (px, 118, COLUMN - 4, 15),
        Param(
            f"Slot {n} Generate",
            f"Gen {n}",
            Kind.ENUM,
            f"Asks the rig for a new loop in slot {n}.",
            0,
            1,
            0,
            enum=("Generate", "Generate"),
            visibility=Visibility.HIDDEN,
        ),
        text="Generate",
        texton="Generate",
        mode=0,
    )
    p.chain(generate, p.message(f"generate {n}", x, y + 390), js)


def _theme_colours() -> dict[str, Any]:
    """Waveform colours bound to Live's theme (the Max expression form)."""
    return {
        "bgcolor": {"expression": "themecolor.live_lcd_bg"},
        "waveformcolor": {"expression": "themecolor.live_lcd_control_fg"},
    }
