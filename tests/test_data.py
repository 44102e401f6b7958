"""`rig data prepare`: bar-grid segments at 120 BPM from stereo and mono files at several rates,
declared or tracked bar lines, silent and duplicate segments dropped, bad files skipped and listed,
resumable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import soundfile

from rig.release import write_array
from rig.train.data import load_dataset, prepare_dataset, read_tempos

RATE = 22050


def groove(tempo: float, seconds: float, pitch: float, seed: int, rate: int = RATE) -> np.ndarray:
    """Noise hits on every beat and a rising tone: ``[samples, 2]`` at ``rate``."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    hits = np.zeros(n)
    decay = np.exp(-np.arange(rate // 10) / (0.015 * rate))
    for start in np.arange(0.1, seconds, 60.0 / tempo):
        i = round(start * rate)
        hits[i : i + decay.size] += decay[: max(0, min(decay.size, n - i))]
    glide = pitch * (1.0 + 3.0 * t / seconds)  # the tone rises two octaves: no two bars alike
    mono = 0.5 * hits * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * np.cumsum(glide) / rate)
    return np.stack([mono, mono], axis=1).astype(np.float32)


def test_prepare_resume_and_skip(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    soundfile.write(src / "a.wav", groove(100.0, 10.0, 55.0, 0), RATE)
    soundfile.write(src / "sub" / "b.flac", groove(120.0, 8.5, 82.0, 1), RATE)
    shutil.copy(src / "a.wav", src / "z-copy.wav")  # every segment a duplicate
    soundfile.write(src / "quiet.wav", np.zeros((RATE * 9, 2), np.float32), RATE)
    (src / "broken.wav").write_bytes(b"RIFF....not audio")
    odd = groove(120.0, 9.0, 70.0, 7, rate=11025)[:, 0]  # mono at an odd rate, bars from 0.5 s
    soundfile.write(src / "mono-11k.wav", np.concatenate([np.zeros(5512, np.float32), odd]), 11025)
    soundfile.write(src / "hi.flac", groove(120.0, 8.5, 90.0, 8, rate=48000), 48000)
    tempos = tmp_path / "tempos.csv"
    tempos.write_text(
        "file,tempo,licence,offset\na.wav,100,CC0,\nz-copy.wav,100,CC0,\nquiet.wav,120,CC0,\n"
        "mono-11k.wav,120,CC0,0.5\nhi.flac,120,,\n"
    )

    report = prepare_dataset(src, out, "drums", tempos, licence="own")
    assert report.files == 6 and report.resumed == 0
    assert [line.split(":")[0] for line in report.skipped] == ["broken.wav"]
    assert report.silent == 2 and report.duplicates >= 2  # at least the copy of a.wav
    mels, stats = load_dataset(out)
    assert mels.shape == (report.segments, 80, 256) and report.segments >= 3
    assert torch_finite(mels) and stats["mean"].shape == (80,) and (stats["std"] > 0).all()
    entries = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    segments = [e for e in entries if "shard" in e]
    assert not [e for e in segments if e["source"] == "z-copy.wav"]  # the copy adds nothing
    a = [e for e in segments if e["source"] == "a.wav"]
    assert a and all(e["tempo"] == 100.0 and e["licence"] == "CC0" for e in a)
    assert a[1]["offset_s"] - a[0]["offset_s"] == 4.8  # 2 bars of 4 at 100 BPM
    b = [e for e in segments if e["source"] == "sub/b.flac"]
    assert b and all(e["licence"] == "own" and abs(e["tempo"] - 120) < 8 for e in b)
    mono = [e for e in segments if e["source"] == "mono-11k.wav"]
    assert mono and {e["offset_s"] for e in mono} <= {0.5, 4.5}  # from the declared bar line
    hi = [e for e in segments if e["source"] == "hi.flac"]
    assert hi and hi[0]["licence"] == "own"  # an empty licence cell takes --licence
    assert "broken.wav" in (out / "skipped.txt").read_text()

    prints = (out / "fingerprints.npy").stat()
    again = prepare_dataset(src, out, "drums", tempos)  # resumes: nothing read twice
    assert (again.files, again.resumed, again.segments) == (0, 6, 0)
    unchanged = (out / "fingerprints.npy").stat()  # nothing new: not rewritten under a reader
    assert (unchanged.st_ino, unchanged.st_mtime_ns) == (prints.st_ino, prints.st_mtime_ns)
    assert len(again.skipped) == 1  # broken.wav is tried again, and listed again
    soundfile.write(src / "c.wav", groove(110.0, 10.0, 110.0, 3), RATE)
    kept_prints = len(np.load(out / "fingerprints.npy"))
    more = prepare_dataset(src, out, "drums", tempos)
    assert more.files == 1 and more.segments >= 1
    shard = sorted((out / "shards").glob("*.safetensors"))[-1]
    assert safetensors.torch.load_file(str(shard))["mels"].dtype.is_floating_point
    assert len(np.load(out / "fingerprints.npy")) == kept_prints + more.segments
    assert not list(out.rglob("*.part"))  # every file replaced whole


def test_a_dataset_file_is_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training runs read a dataset while another process may prepare it: a reader sees the old
    file or the new one, never half of one, and a failed write leaves the old file."""
    write_array(tmp_path, "fingerprints.npy", np.ones((2, 3)))

    def half_then_full_disk(file, array) -> None:
        file.write(b"\x93NUMPY half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", half_then_full_disk)
    with pytest.raises(OSError, match="No space"):
        write_array(tmp_path, "fingerprints.npy", np.zeros((5, 3)))
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(tmp_path / "fingerprints.npy"), np.ones((2, 3)))
    assert [p.name for p in tmp_path.iterdir()] == ["fingerprints.npy"]  # no part file left


def torch_finite(mels) -> bool:
    return bool(mels.isfinite().all())


def prepare(*args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "rig", "data", "prepare", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_segments_are_analysed_as_seamless_loops(tmp_path: Path) -> None:
    """A steady tone cut into 2-bar loops at 100 BPM and 22.05 kHz (so each segment is stretched
    and resampled): a segment's first and last frames hold no more treble than its inner ones.
    Cut and analysed bare, they held a step from silence, which models learnt as a click."""
    t = np.arange(round(3 * 4.8 * RATE)) / RATE  # three 2-bar loops of 220 Hz, whole periods
    tone = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    (tmp_path / "src").mkdir()
    soundfile.write(tmp_path / "src" / "tone.wav", np.stack([tone, tone], 1), RATE)
    (tmp_path / "tempos.csv").write_text("file,tempo,licence,offset\ntone.wav,100,CC0,0\n")
    prepare_dataset(tmp_path / "src", tmp_path / "out", "pads", tmp_path / "tempos.csv")
    mels, _ = load_dataset(tmp_path / "out")
    treble = mels[:, 40:].mean(dim=1)  # [segments, frames]: bands far above the tone
    inner = treble[:, 8:-8].max()
    assert len(mels) >= 1 and treble[:, [0, 1, -2, -1]].max() < inner + 0.5
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["analysis"] == "loop"


def test_a_dataset_analysed_the_old_way_is_not_extended(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    soundfile.write(tmp_path / "src" / "a.wav", groove(120.0, 9.0, 60.0, 4), RATE)
    prepare_dataset(tmp_path / "src", tmp_path / "out", "drums")
    summary = tmp_path / "out" / "dataset.json"
    old = json.loads(summary.read_text())
    del old["analysis"]  # as rig wrote it before segments were analysed as loops
    summary.write_text(json.dumps(old))
    soundfile.write(tmp_path / "src" / "b.wav", groove(120.0, 9.0, 70.0, 5), RATE)
    with pytest.raises(ValueError, match=r"out was prepared by an older rig.*into a new folder"):
        prepare_dataset(tmp_path / "src", tmp_path / "out", "drums")


def test_cli(tmp_path: Path) -> None:
    out = prepare(str(tmp_path / "none"), str(tmp_path / "out"), "--material", "drums")
    assert out.returncode == 1 and out.stderr.strip().endswith("none is not a folder")
    (tmp_path / "src").mkdir()
    soundfile.write(tmp_path / "src" / "a.wav", groove(120.0, 9.0, 60.0, 4), RATE)
    out = prepare(str(tmp_path / "src"), str(tmp_path / "out"), "--material", "bass")
    assert out.returncode == 0, out.stderr
    assert "1 files read" in out.stderr and out.stdout.strip() == str(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["material"] == "bass"


def test_tempo_csv_errors_name_the_row(tmp_path: Path) -> None:

    table = tmp_path / "tempos.csv"
    table.write_text("file,tempo,licence,offset\na.wav,120,CC0,0.25\nb.wav,90,,\n")
    rows = read_tempos(table)
    assert rows["a.wav"].offset == 0.25 and rows["b.wav"].offset is None
    table.write_text("file,tempo,licence,offset\na.wav,120,CC0,soon\n")
    with pytest.raises(ValueError, match=r"row 1 needs .* numeric offset"):
        read_tempos(table)
