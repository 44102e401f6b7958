"""The .amxd container, `rig device build/unpack/lint`, and the lint's checks."""

from __future__ import annotations

import copy
import json
import random
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from rig.device import build
from rig.device.amxd import Amxd, AmxdError, read_amxd, write_amxd
from rig.device.lint import Report, lint_file, lint_patcher
from rig.device.patch import SLOTS, build_patcher

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "max4live" / "reference"
RIG = [sys.executable, "-m", "rig"]


@pytest.mark.parametrize("name", ["Test.amxd", "CPU Reporter.amxd"])
def test_max_saves_round_trip_byte_for_byte(name: str) -> None:
    data = (REFERENCE / name).read_bytes()
    device = read_amxd(data)
    assert write_amxd(device) == data
    assert device.patcher()["patcher"]["boxes"]
    assert device.device_type == (b"mmmm" if name == "Test.amxd" else b"aaaa")
    assert device.flags == (1 if name == "Test.amxd" else 0)


def test_frozen_and_broken_devices_are_refused() -> None:
    with pytest.raises(AmxdError, match="this device is frozen"):
        read_amxd((REFERENCE / "FrozenTest.amxd").read_bytes())
    good = (REFERENCE / "Test.amxd").read_bytes()
    cases = {
        b"RIFF" + good[4:]: 'does not start with "ampf"',
        good[:20]: 'does not start with "ampf"',
        good[:8] + b"xxxx" + good[12:]: "unknown device type",
        good[:-1]: "says 36643 bytes but 36642 follow",
        good[:-1] + b"}": "not NUL-terminated",
        good[:12] + b"mota" + good[16:]: "unknown .amxd header layout",
    }
    for data, message in cases.items():
        with pytest.raises(AmxdError, match=re.escape(message)):
            read_amxd(data)
    with pytest.raises(AmxdError, match="not valid JSON"):
        Amxd(b"iiii", 1, b"{nope").patcher()


def test_build_writes_an_exact_instrument(tmp_path: Path) -> None:
    path = build.build_device(tmp_path)
    data = path.read_bytes()
    magic, four, kind, meta, four2, flags, ptch, length = struct.unpack_from("<4sI4s4sII4sI", data)
    assert (magic, four, kind, meta, four2, flags, ptch) == (
        b"ampf",
        4,
        b"iiii",
        b"meta",
        4,
        1,
        b"ptch",
    )
    assert length == len(data) - 32 and data.endswith(b"}\n\0")
    assert (tmp_path / "rig-slots.js").read_bytes() == (ROOT / "max4live/rig-slots.js").read_bytes()
    patcher = read_amxd(data).patcher()["patcher"]
    boxes = [b["box"] for b in patcher["boxes"]]
    texts = [b.get("text", "") for b in boxes]
    varnames = {b.get("varname") for b in boxes}
    for slot in range(1, SLOTS + 1):  # every object the JS addresses by name exists
        for name in ("label", "on", "front", "launch", "launch-now", "swap-now", "xf", "gate"):
            assert f"{name}-{slot}" in varnames
        for side in "ab":
            for name in ("buf", "len", "step", "dir", "flip", "show", "done"):
                assert f"{name}-{slot}-{side}" in varnames
            assert f"buffer~ ---rig{slot}{side}" in texts  # --- : per-instance names
    assert {"status", "takes-edit", "quant", "quant-on", "barlen", "logic"} <= varnames
    assert "udpreceive 7400" in texts and "udpsend 127.0.0.1 7401" in texts
    assert "js rig-slots.js 8" in texts
    assert patcher["openinpresentation"] == 1
    banks = patcher["parameters"]["parameterbanks"]
    assert banks["0"]["parameters"] == [f"Slot {n} Gain" for n in range(1, 9)]


def test_build_is_reproducible() -> None:
    assert build_patcher() == build_patcher()
    assert len(build_patcher(slots=3)["patcher"]["boxes"]) < len(
        build_patcher()["patcher"]["boxes"]
    )


def small_patch() -> dict:
    return {
        "patcher": {
            "boxes": [
                {
                    "box": {
                        "id": "obj-1",
                        "maxclass": "newobj",
                        "text": "metro 50",
                        "numinlets": 2,
                        "numoutlets": 1,
                    }
                },
                {
                    "box": {
                        "id": "obj-2",
                        "maxclass": "newobj",
                        "text": "t b b",
                        "numinlets": 1,
                        "numoutlets": 2,
                    }
                },
                {
                    "box": {
                        "id": "obj-3",
                        "maxclass": "live.dial",
                        "numinlets": 1,
                        "numoutlets": 2,
                        "parameter_enable": 1,
                        "annotation": "Level.",
                        "saved_attribute_attributes": {
                            "valueof": {"parameter_longname": "Gain", "parameter_shortname": "Gain"}
                        },
                    }
                },
            ],
            "lines": [{"patchline": {"source": ["obj-1", 0], "destination": ["obj-2", 0]}}],
        }
    }


def findings(document: dict) -> list[str]:
    return [str(p) for p in lint_patcher(document, REFERENCE, Report(Path("x"))).problems]


def test_lint_finds_each_kind_of_mistake() -> None:
    assert findings(small_patch()) == []
    cases = {
        "duplicate box id": lambda p: p["boxes"].append(copy.deepcopy(p["boxes"][0])),
        "joins a missing box 'obj-9'": lambda p: p["lines"].append(
            {"patchline": {"source": ["obj-9", 0], "destination": ["obj-2", 0]}}
        ),
        "outlet 1 of obj-1 (it has 1)": lambda p: p["lines"].append(
            {"patchline": {"source": ["obj-1", 1], "destination": ["obj-2", 0]}}
        ),
        "inlet 3 of obj-2 (it has 1)": lambda p: p["lines"].append(
            {"patchline": {"source": ["obj-1", 0], "destination": ["obj-2", 3]}}
        ),
        "'t b b' declares (1, 3) (inlets, outlets); expected (1, 2)": lambda p: p["boxes"][1][
            "box"
        ].update(numoutlets=3),
        "'frobnicate~ 3': not a known object": lambda p: p["boxes"][0]["box"].update(
            text="frobnicate~ 3"
        ),
        "js script missing.js is not in": lambda p: p["boxes"][0]["box"].update(
            text="js missing.js"
        ),
        "boxes[0].box.text: absolute path 'buffer~ x /Users/me/loops/a.wav'": lambda p: p["boxes"][
            0
        ]["box"].update(text="buffer~ x /Users/me/loops/a.wav"),
        "parameter long name 'Gain' is also used": lambda p: p["boxes"].append(
            {"box": dict(copy.deepcopy(p["boxes"][2]["box"]), id="obj-4")}
        ),
        "a parameter without long and short names": lambda p: p["boxes"][2]["box"][
            "saved_attribute_attributes"
        ]["valueof"].pop("parameter_shortname"),
        "live.dial declares (1, 1)": lambda p: p["boxes"][2]["box"].update(numoutlets=1),
        "malformed patch cord": lambda p: p["lines"].append({"patchline": {"source": "obj-1"}}),
    }
    for expected, change in cases.items():
        document = small_patch()
        change(document["patcher"])
        found = findings(document)
        assert any(expected in f for f in found), (expected, found)


def box(box_id: str, maxclass: str, **attrs: object) -> dict:
    return {"box": {"id": box_id, "maxclass": maxclass, **attrs}}


def param(name: str, kind: int, low: float = 0, high: float = 1, visible: int = 0) -> dict:
    value = {
        "parameter_longname": name,
        "parameter_shortname": name,
        "parameter_type": kind,
        "parameter_mmin": low,
        "parameter_mmax": high,
        "parameter_invisible": visible,
    }
    return {
        "parameter_enable": 1,
        "annotation": "x",
        "saved_attribute_attributes": {"valueof": value},
    }


def test_lint_rules_catch_the_defects_live_would_show(tmp_path: Path) -> None:
    """Each of the old device's defects, as Max and Live's documentation describe them."""
    (tmp_path / "logic.js").write_text('function go() { named("fade-" + 1); }\ninlets = 1;\n')
    port = box(
        "obj-1", "live.numbox", numinlets=1, numoutlets=2, **param("Port", 1, 1024, 65535, 1)
    )
    reverse = box("obj-2", "live.text", numinlets=1, numoutlets=2, mode=0, **param("Rev", 2))
    edit = box("obj-3", "textedit", numinlets=1, numoutlets=4, keymode=0)
    relay = box("obj-4", "newobj", text="prepend param takes", numinlets=1, numoutlets=1)
    folder = box(
        "obj-5",
        "newobj",
        text="pattr takefolder @parameter_enable 1",
        numinlets=1,
        numoutlets=3,
        saved_attribute_attributes={
            "valueof": {"parameter_longname": "Folder", "parameter_shortname": "F"}
        },
    )
    logic = box("obj-6", "newobj", text="js logic.js", numinlets=1, numoutlets=1)
    fade = box("obj-7", "newobj", text="line~", numinlets=2, numoutlets=2, varname="fade-1")
    gain = box("obj-8", "newobj", text="*~", numinlets=2, numoutlets=1)
    poll = box("obj-9", "newobj", text="metro 10", numinlets=2, numoutlets=1)
    cords = [("obj-3", "obj-4"), ("obj-6", "obj-8"), ("obj-9", "obj-6")]
    document = {
        "patcher": {
            "boxes": [port, reverse, edit, relay, folder, logic, fade, gain, poll],
            "lines": [{"patchline": {"source": [a, 0], "destination": [b, 0]}} for a, b in cords],
            "parameters": {"parameterbanks": {"0": {"parameters": ["Port", "Gone", "-"]}}},
        }
    }
    found = [str(p) for p in lint_patcher(document, tmp_path, Report(Path("x"))).problems]
    expected = [
        "'Port' is an Int parameter over 1024-65535: Live's Int holds 0-255",
        "'Rev' is a live.text in button mode (it bangs",
        "textedit keymode 0: Return adds a line and sends nothing",
        "textedit's output begins with 'text': route it through [route text]",
        "textedit outputmode 0 splits the text at its spaces",
        "pattr 'Folder' stores text with the Set: its parameter type must be Blob (3)",
        "[js] feeds *~: JS runs in the low-priority thread",
        "logic.js addresses line~ 'fade-1' by name: JS may not time audio",
        "metro 10: polling faster than 20 ms",
        "names 'Gone', which is no parameter",
        "'Port' is a setting: keep it out of Push banks",
    ]
    for text in expected:
        assert any(text in f for f in found), (text, found)
    port["box"]["saved_attribute_attributes"]["valueof"]["parameter_invisible"] = 0
    assert not any("keep it out of Push banks" in f for f in findings(document))


def test_lint_counts_declared_script_ports(tmp_path: Path) -> None:
    (tmp_path / "two.js").write_text("inlets = 2;\noutlets = 3;\n")
    document = small_patch()
    document["patcher"]["boxes"][0]["box"].update(text="js two.js", numinlets=2, numoutlets=3)
    document["patcher"]["lines"][0]["patchline"]["source"] = ["obj-1", 2]
    assert lint_patcher(document, tmp_path, Report(tmp_path)).problems == []


def test_lint_never_raises(tmp_path: Path) -> None:
    """Random damage to a real device gives a report, never an exception."""
    rng = random.Random(0)
    base = json.dumps(build_patcher())
    junk = [None, 3, "x", [], {}, {"box": 1}, [1, 2], -1, 1.5, True]
    for trial in range(400):
        document = json.loads(base)  # a fresh copy, faster than deepcopy
        target = document
        for _ in range(rng.randint(1, 7)):
            if isinstance(target, dict) and target:
                key = rng.choice(sorted(target, key=str))
                if rng.random() < 0.3:
                    target[key] = rng.choice(junk)
                    break
                target = target[key]
            elif isinstance(target, list) and target:
                index = rng.randrange(len(target))
                if rng.random() < 0.3:
                    target[index] = rng.choice(junk)
                    break
                target = target[index]
        lint_patcher(document, tmp_path, Report(tmp_path / f"t{trial}.maxpat"))  # no exception
    for data in (b"", b"ampf", bytes(range(256)), b"\xff\xfe", b"[]", b'{"patcher": []}'):
        path = tmp_path / "raw.amxd"
        path.write_bytes(data)
        report = lint_file(path)
        assert not report.ok and report.problems


def test_parameter_names_are_stable(tmp_path: Path, monkeypatch) -> None:
    report = build.lint_built_device()
    assert report.ok, [str(p) for p in report.problems]
    # settings (ports, quantize, three notes and the evolve note, autoplay, output pair), the
    # take-folder dialog, the state; per slot gain, filter, reverse, speed, generate
    assert len(report.parameters) == 9 + 1 + 1 + 5 * SLOTS
    names = build.stable_names()
    edited = tmp_path / "parameters.txt"
    edited.write_text("\n".join([n for n in names if n != "Slot 3 Gain"] + ["Old Knob"]) + "\n")
    monkeypatch.setattr(build, "PARAMETERS_FILE", edited)
    problems = [str(p) for p in build.lint_built_device().problems]
    assert any("'Old Knob' disappeared" in p for p in problems)
    assert any("new parameter 'Slot 3 Gain'" in p for p in problems)


def test_device_commands(tmp_path: Path) -> None:
    out = subprocess.run([*RIG, "device", "lint"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rig-slots.amxd (built from max4live/): ok (" in out.stdout
    frozen = subprocess.run(
        [*RIG, "device", "lint", str(REFERENCE / "FrozenTest.amxd")], capture_output=True, text=True
    )
    assert frozen.returncode == 1 and "this device is frozen" in frozen.stdout
    assert "Traceback" not in frozen.stderr
    unpacked = subprocess.run(
        [*RIG, "device", "unpack", str(REFERENCE / "Test.amxd")], capture_output=True
    )
    assert unpacked.returncode == 0
    assert unpacked.stdout == read_amxd((REFERENCE / "Test.amxd").read_bytes()).patcher_json
    target = tmp_path / "test.maxpat"
    written = subprocess.run(
        [*RIG, "device", "unpack", str(REFERENCE / "Test.amxd"), "-o", str(target)],
        capture_output=True,
        text=True,
    )
    assert written.returncode == 0 and json.loads(target.read_text())["patcher"]
    refused = subprocess.run(
        [*RIG, "device", "unpack", str(REFERENCE / "FrozenTest.amxd")],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("rig: error: this device is frozen")
    built = subprocess.run(
        [*RIG, "device", "build", "-o", str(tmp_path / "dev")], capture_output=True, text=True
    )
    assert built.returncode == 0 and Path(built.stdout.strip()).is_file()
