"""Take store: atomic WAV + sidecar, names, numbering, recall, write failures."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

from rig.config import AudioConfig
from rig.engines.base import Recipe
from rig.loops import make_loop
from rig.prompt import parse_prompt
from rig.takes import LoopFacts, Take, TakeError, TakeStore, slugify
from rig.testing.signals import drum_signal

SETTINGS = AudioConfig()
RECIPE = Recipe(parse_prompt("gritty and noisy pad, Tempo: 107, Bars: 1"), "word", seed=7)


def a_loop(bpm: float = 107.0, bars: int = 1):
    return make_loop(drum_signal(3.0, 44100), 44100, bpm, bars, 4, SETTINGS)


def test_write_names_sidecar_and_audio(tmp_path: Path) -> None:
    store = TakeStore(tmp_path, session="20261123-142141")
    loop = a_loop()
    replay = Recipe(RECIPE.prompt, "word", "m", seed=7, controls={"x": 1.0}, target=(0.5,))
    take = store.write(loop, RECIPE, replay, {"model": "m"}, request_id=3)
    assert take.id == "20261123-142141-0001"
    assert take.wav.name == "0001_gritty-noisy-pad_107bpm_1bars.wav"
    assert take.wav.parent == tmp_path / "20261123-142141"
    data, rate = soundfile.read(take.wav, dtype="float32", always_2d=True)
    info = soundfile.info(take.wav)
    assert (rate, data.shape, info.subtype) == (44100, (loop.audio.shape[1], 2), "PCM_24")
    np.testing.assert_allclose(data.T, loop.audio, atol=2.0**-22)
    sidecar = json.loads(take.sidecar.read_text())
    assert sidecar["format"] == 2 and sidecar["take_id"] == take.id
    assert sidecar["recipe"]["prompt"]["full"] == "gritty and noisy pad, Tempo: 107, Bars: 1"
    assert sidecar["loop"]["bpm"] == 107.0 and sidecar["loop"]["samples"] == loop.audio.shape[1]
    assert sidecar["request_id"] == 3 and sidecar["engine_info"] == {"model": "m"}
    again = Take.from_json(sidecar, take.sidecar)
    assert again == take  # the typed record round-trips through its file
    assert again.replay.target == (0.5,) and again.loop.quarters == 4
    assert not list(take.wav.parent.glob(".*"))  # no part files left


def test_float_wav(tmp_path: Path) -> None:
    take = TakeStore(tmp_path, wav_subtype="FLOAT").write(a_loop(), RECIPE)
    assert soundfile.info(take.wav).subtype == "FLOAT"


def test_numbering_and_recall(tmp_path: Path) -> None:
    store = TakeStore(tmp_path, session="20261123-142141")
    first = store.write(a_loop(), RECIPE)
    second = store.write(a_loop(120.0, 2), Recipe(parse_prompt("Dark Bass!"), "word"))
    assert second.wav.name == "0002_dark-bass_120bpm_2bars.wav"
    assert store.recall(first.id).wav == first.wav
    assert store.recall("2").id == second.id
    assert [t.id for t in store.takes()] == [first.id, second.id]
    later = TakeStore(tmp_path, session="20261123-150000")
    assert later.recall(first.id).recipe.seed == 7  # other sessions' takes by full id
    with pytest.raises(TakeError, match="no take"):
        store.recall("20261123-142141-0009")
    with pytest.raises(TakeError, match="not a take id"):
        store.recall("../etc/passwd")


FORMAT_1 = {  # a sidecar as the first plan wrote it (rig 0.1), trimmed of nothing
    "prompt": {
        "text": "dusty drums",
        "full": "dusty drums, Tempo: 97, Bars: 2, Meter: 4/4",
        "tempo": 97.0,
        "key": None,
        "bars": 2,
        "genre": None,
        "instrument": None,
        "tags": {},
    },
    "engine": "gan",
    "model": None,
    "seed": 5,
    "slot": 2,
    "controls": {"variation": 0.5},
    "request_id": 4,
    "engine_info": {"model": "drums", "w": [0.25, -1.0], "seed": 5, "generation": 2},
    "take_id": "20261123-142141-0004",
    "file": "0004_dusty-drums_97bpm_2bars.wav",
    "tempo": 97.0,
    "bars": 2,
    "beats_per_bar": 4,
    "sample_rate": 44100,
    "channels": 2,
    "samples": 218244,
    "duration_s": 4.948,
    "loudness_lufs": -14.0,
    "peak_dbfs": -1.2,
    "wav_format": "PCM_24",
    "created": "2026-11-23T14:25:00+0000",
    "rig_version": "0.1.0",
}


def test_a_sidecar_of_the_first_format_still_loads(tmp_path: Path) -> None:
    folder = tmp_path / "20261123-142141"
    folder.mkdir()
    sidecar = folder / "0004_dusty-drums_97bpm_2bars.json"
    sidecar.write_text(json.dumps(FORMAT_1))
    take = TakeStore(tmp_path, session="20261123-142141").recall("4")
    assert take.recipe.prompt.tempo == 97.0 and take.recipe.seed == 5 and take.recipe.slot == 2
    assert take.recipe.controls == {"variation": 0.5} and take.recipe.target is None
    assert take.replay.model == "drums" and take.replay.target == (0.25, -1.0)
    assert take.replay.controls == {"variation": 0.5, "morph": 1.0}
    assert take.loop == LoopFacts(97.0, 2, 4, 44100, 2, 218244, 4.948, -14.0, -1.2, "PCM_24")
    assert take.engine_info["generation"] == 2 and take.request_id == 4
    broken = {**FORMAT_1, "prompt": {"full": "x, Tempo: 900"}}
    sidecar.write_text(json.dumps(broken))
    with pytest.raises(TakeError, match="Tempo"):
        TakeStore(tmp_path, session="20261123-142141").recall("4")


def test_slugify() -> None:
    assert slugify("Gritty and noisy pad, Tempo: 107") == "gritty-noisy-pad-tempo"
    assert slugify("!!!") == "loop"
    assert slugify("Ünïcode ümlauts ok") == "n-code-mlauts-ok"


def test_reader_polling_never_sees_a_partial_wav(tmp_path: Path) -> None:
    store = TakeStore(tmp_path, session="s")
    store.folder.mkdir(parents=True)
    loop = make_loop(drum_signal(17.0, 44100), 44100, 60.0, 4, 4, SETTINGS)  # 16 s: slow writes
    expected = loop.audio.shape[1]
    seen: dict[str, int] = {}
    problems: list[str] = []
    done = threading.Event()

    def poll() -> None:
        while True:
            last = done.is_set()  # one more full scan after the last write
            for wav in store.folder.glob("*.wav"):
                try:
                    frames = soundfile.info(wav).frames
                except RuntimeError as error:
                    problems.append(f"{wav.name}: {error}")
                    continue
                if frames != expected:
                    problems.append(f"{wav.name}: {frames} frames")
                if not wav.with_suffix(".json").is_file():
                    problems.append(f"{wav.name}: no sidecar")
                seen[wav.name] = frames
            if last:
                return

    reader = threading.Thread(target=poll)
    reader.start()
    for _ in range(8):
        store.write(loop, RECIPE)
    done.set()
    reader.join()
    assert problems == []
    assert len(seen) == 8


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TakeError, match="cannot write a take"):
        TakeStore(blocker / "takes").write(a_loop(), RECIPE)


FILL_DISK = """
import resource, signal, sys, json
from pathlib import Path
from rig.testing.signals import drum_signal
from rig.config import AudioConfig
from rig.loops import make_loop
from rig.takes import TakeError, TakeStore
from rig.engines.base import Recipe
from rig.prompt import parse_prompt
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
settings = AudioConfig(sample_rate=8000)
store = TakeStore(Path(sys.argv[1]), session="s")
small = make_loop(drum_signal(3.0, 8000), 8000, 120, 1, 4, settings)
store.write(small, Recipe(parse_prompt("small"), "word"))
resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))  # the disk is "full" past 60 kB
big = make_loop(drum_signal(9.0, 8000), 8000, 120, 4, 4, settings)
try:
    store.write(big, Recipe(parse_prompt("big"), "word"))
except TakeError as error:
    print(json.dumps({"error": str(error)}))
"""


def test_a_failed_write_leaves_no_partial_file_and_earlier_takes_intact(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", FILL_DISK, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert "cannot write a take" in json.loads(out.stdout)["error"]
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == ["0001_small_120bpm_1bars.json", "0001_small_120bpm_1bars.wav"]
    assert soundfile.info(tmp_path / "s" / files[1]).frames == 16000
