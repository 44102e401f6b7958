"""``rig device build`` and the lint of the built device.

The build writes ``rig-slots.amxd`` (an unfrozen Max Instrument, type ``iiii``, meta flags 1) and
copies ``rig-slots.js`` next to it: Live finds the script in the device's own folder.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from rig.device.amxd import Amxd, patcher_bytes, write_amxd
from rig.device.lint import ERROR, Problem, Report, lint_file
from rig.device.patch import JS_FILE, SLOTS, SOURCE, build_patcher

DEVICE_FILE = "rig-slots.amxd"
PARAMETERS_FILE = SOURCE / "parameters.txt"  # the stable parameter long names, one per line
INSTRUMENT = b"iiii"


def build_device(out_dir: Path, slots: int = SLOTS) -> Path:
    """Write the device and its script into ``out_dir``; returns the ``.amxd`` path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    patcher = build_patcher(slots, script_dir=SOURCE)
    device = Amxd(INSTRUMENT, 1, patcher_bytes(patcher))
    target = out_dir / DEVICE_FILE
    part = out_dir / f".{DEVICE_FILE}.part"
    part.write_bytes(write_amxd(device))
    part.replace(target)
    if (out_dir / JS_FILE).resolve() != (SOURCE / JS_FILE).resolve():
        shutil.copyfile(SOURCE / JS_FILE, out_dir / JS_FILE)
    return target


def stable_names() -> list[str]:
    """The committed parameter long names."""
    lines = PARAMETERS_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def lint_built_device() -> Report:
    """Build into a temporary folder and lint it, including parameter-name stability."""
    with tempfile.TemporaryDirectory() as tmp:
        path = build_device(Path(tmp))
        report = lint_file(path)
        data = path.read_bytes()
    if data[4:12] != b"\x04\x00\x00\x00" + INSTRUMENT or data[20:24] != b"\x01\x00\x00\x00":
        report.problems.append(Problem(ERROR, "header", "not an Instrument with meta flags 1"))
    committed = stable_names()
    for name in sorted(set(committed) - set(report.parameters)):
        report.problems.append(
            Problem(
                ERROR,
                "parameters",
                f"{name!r} disappeared: Live sets "
                "and MIDI mappings using it break (if meant, edit "
                f"{PARAMETERS_FILE.name})",
            )
        )
    for name in sorted(set(report.parameters) - set(committed)):
        report.problems.append(
            Problem(
                ERROR,
                "parameters",
                f"new parameter {name!r}: add it to {PARAMETERS_FILE.name} to keep it stable",
            )
        )
    report.path = Path(f"{DEVICE_FILE} (built from {SOURCE.name}/)")
    return report
