"""`rig data demo`: generated MIDI patterns rendered by fluidsynth and CC0 one-shot textures,
cut into seamless 2-bar loops and prepared as datasets with their licences."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import step_p95, wrap_jump

from rig.train.demo import (
    CC0_LICENCE,
    GM_LICENCE,
    LOOP_SAMPLES,
    MATERIALS,
    ORGANIC_PREFIXES,
    RATE,
    SAMPLE_MATERIALS,
    SONIC_PI_COPYRIGHT,
    SOUND_FONT,
    DemoError,
    DemoPlan,
    build_demo,
    cc0_samples,
    check_tools,
)
from rig.train.patterns import BEATS, PATTERN_MAKERS

HAVE_TOOLS = (
    bool(shutil.which("fluidsynth")) and SOUND_FONT.is_file() and SONIC_PI_COPYRIGHT.is_file()
)
needs_tools = pytest.mark.skipif(
    not HAVE_TOOLS and not os.environ.get("RIG_REQUIRE_CORPUS_TOOLS"),
    reason="fluidsynth, fluid-soundfont-gm and sonic-pi-samples are not installed",
)
PLAN = DemoPlan(loops=4, heldout=2, batch=2, seed=5)


@pytest.mark.parametrize("material", sorted(PATTERN_MAKERS))
def test_patterns_are_two_bars_and_reproducible(material: str) -> None:
    make = PATTERN_MAKERS[material]
    first = [make(random.Random(seed)) for seed in range(40)]
    again = [make(random.Random(seed)) for seed in range(40)]
    assert [p.notes for p in first] == [p.notes for p in again]
    assert len({tuple(p.notes) for p in first}) >= 38  # distinct patterns
    for pattern in first:
        assert pattern.notes and all(0 <= n.start < BEATS and n.length > 0 for n in pattern.notes)
        assert all(1 <= n.velocity <= 127 and 0 <= n.pitch <= 127 for n in pattern.notes)
        assert pattern.drums == (material == "drums")
    if material == "bass":
        assert all(28 <= n.pitch <= 72 for p in first for n in p.notes)


def test_cc0_files_only(tmp_path: Path) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    for name in ("a_free.flac", "b_free.flac", "loop_free.flac", "c_by.flac"):
        (folder / name).write_bytes(b"")
    copyright_file = tmp_path / "copyright"
    copyright_file.write_text(
        "Files: *\nCopyright: 2016 Someone\nLicense: MIT\n\n"
        "Files: etc/samples/a_free.flac\n etc/samples/loop_free.flac\n"
        "Copyright: 2013 A\nSource: http://example.org/a\nLicense: CC0\n\n"
        "Files: etc/samples/b_*\nCopyright: 2014 B\nLicense: CC0\n\n"
        "Files: etc/samples/c_by.flac\nCopyright: 2015 C\nLicense: CC-BY-3.0\n"
    )
    found = cc0_samples(copyright_file, folder)
    assert sorted(p.name for p in found) == ["a_free.flac", "b_free.flac"]  # no loops, no BY
    assert found[folder / "a_free.flac"] == ("2013 A", "http://example.org/a")


@needs_tools
def test_demo_corpus(tmp_path: Path) -> None:
    reports = build_demo(tmp_path / "corpus", plan=PLAN, progress=lambda _: None)
    assert set(reports) == {f"{m}{s}" for m in MATERIALS for s in ("", "-heldout")}
    assert RATE == 48_000  # full band: the vocoder learns 12-24 kHz from it
    for material in MATERIALS:
        audio_dir = tmp_path / "corpus" / "audio" / material
        files = sorted(audio_dir.glob("*.flac"))
        assert [f.name for f in files] == [f"{material}-0000.flac", f"{material}-0001.flac"]
        for path in files:
            audio, rate = soundfile.read(path, always_2d=True)
            assert rate == RATE and audio.shape == (2 * LOOP_SAMPLES, 2)
            for loop in (audio[:LOOP_SAMPLES].T, audio[LOOP_SAMPLES:].T):
                assert np.abs(loop).max() < 0.9 and np.sqrt(np.mean(loop**2)) > 0.01
                # The wrap point of each loop steps no more than its own signal does.
                assert (wrap_jump(loop) <= 4 * step_p95(loop) + 2e-3).all()
        described = (audio_dir / "loops.jsonl").read_text().splitlines()
        assert len(described) == 4
        used = {
            layer["sample"] for line in described for layer in json.loads(line).get("layers", [])
        }
        assert not any(name.startswith("loop_") for name in used)  # the recorded loops: eval only
        if material == "organic":
            assert used and all(name.startswith(ORGANIC_PREFIXES) for name in used)
        entries = [
            json.loads(line)
            for line in (tmp_path / "corpus" / material / "manifest.jsonl").read_text().splitlines()
        ]
        segments = [e for e in entries if "offset_s" in e]
        assert len(segments) + reports[material].duplicates == 4
        assert {e["offset_s"] for e in segments} <= {0.0, 4.0}
        licence = CC0_LICENCE if material in SAMPLE_MATERIALS else GM_LICENCE
        assert {e["licence"] for e in segments} == {licence} and segments[0]["tempo"] == 120.0
    credits = (tmp_path / "corpus" / "CREDITS.md").read_text()
    assert "ambi_choir.flac" in credits and "FluidR3_GM" in credits

    again = build_demo(tmp_path / "again", ("drums", "texture"), PLAN, progress=lambda _: None)
    assert again["drums"].segments == reports["drums"].segments
    for name in ("drums/drums-0001.flac", "texture/texture-0000.flac"):
        first = soundfile.read(tmp_path / "corpus" / "audio" / name)[0]
        second = soundfile.read(tmp_path / "again" / "audio" / name)[0]
        assert np.array_equal(first, second)  # the same seed renders the same corpus
    resumed = build_demo(tmp_path / "corpus", ("bass",), PLAN, progress=print)
    assert resumed["bass"].segments == 0 and resumed["bass"].resumed == 2
    summary = tmp_path / "corpus" / "bass" / "dataset.json"  # as an older rig prepared it
    summary.write_text(json.dumps(json.loads(summary.read_text()) | {"analysis": None}))
    told: list[str] = []
    redone = build_demo(tmp_path / "corpus", ("bass",), PLAN, progress=told.append)
    assert redone["bass"].segments == reports["bass"].segments and redone["bass"].resumed == 0
    assert told == ["prepare bass again: an older rig analysed its segments"]
    assert json.loads(summary.read_text())["analysis"] == "loop"
    assert (tmp_path / "corpus" / "CREDITS.md").read_text() == credits  # still lists the CC0 files


def test_missing_tools_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DemoError, match=r"fluidsynth program.*apt-get install"):
        check_tools(("drums",))
    with pytest.raises(DemoError, match="unknown material noise"):
        build_demo(Path("/nonexistent"), ("noise",))
