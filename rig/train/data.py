"""``rig data prepare``: any folder of audio → a compact dataset of 2-bar mel spectrograms for
training the GAN loop models.

Per file: the tempo from a CSV (``file,tempo[,licence][,offset]``) or librosa's beat tracker; the
given offset (seconds) or else the first tracked beat is taken as a bar start (no downbeat
detection); the audio is cut on that bar grid into ``bars``-bar segments, each time-stretched
to the dataset tempo (120 BPM: 4 s for 2 bars of 4), resampled to the model rate and turned into
a log-mel ``[n_mels, frames]`` by the model's own front end, analysed as a loop
(:meth:`rig.nn.mel.MelFrontEnd.loop`: the first and last frames' windows wrap around the segment,
as the engine's circular vocoder will read them; ``dataset.json`` ``"analysis": "loop"``).
Silent segments and near-duplicates (cosine similarity of a coarse mel fingerprint above a
threshold) are dropped.

The output folder::

    dataset.json            audio spec, tempo, bars, material, counts
    shards/00000.safetensors  "mels" [N, n_mels, frames] float16, one shard per source file
    manifest.jsonl          one line per kept segment: shard, index, source, offset_s, tempo,
                            licence, material; and one line per finished source file
    stats.safetensors       per-bin "mean" and "std" [n_mels] over every segment
    skipped.txt             unreadable or unusable files and why

Runs resume: source files already in the manifest are not read again. Nothing is ever aborted
because of one bad file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from rig.loop_model import LoopAudio
from rig.loops import LoopError, read_audio, resample, seamless_cut, stretch
from rig.nn.mel import MelFrontEnd
from rig.release import write_array, write_tensors, write_text
from rig.train.run import TrainError

AUDIO_SUFFIXES = {".wav", ".flac", ".aif", ".aiff", ".mp3", ".ogg"}
FINGERPRINT = (16, 32)  # mel bins × frames of the duplicate fingerprint
# dataset.json "analysis" of segments analysed as loops (MelFrontEnd.loop). Datasets without it
# were analysed with zero padding at the segment's ends, whose edge frames teach a generator a
# click at the loop point.
LOOP_ANALYSIS = "loop"
LOOP_CONTEXT_S = 0.1  # seconds of a segment's other end put on each side before filtering it
SEAM_FADE_S = 0.01  # seconds of a segment's end crossed into what led into its start


@dataclass(frozen=True)
class DataSettings:
    """How segments are cut and filtered."""

    audio: LoopAudio = field(default_factory=LoopAudio)  # rate, mel and grid of the model
    silence_dbfs: float = -45.0  # segments quieter than this RMS are dropped
    duplicate_similarity: float = 0.995  # fingerprints more alike than this are duplicates


@dataclass
class DataReport:
    """What one run did."""

    files: int = 0  # source files read this run
    resumed: int = 0  # source files skipped because an earlier run finished them
    segments: int = 0  # segments kept this run
    silent: int = 0
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)  # "file: why"


@dataclass(frozen=True)
class SourceInfo:
    """What the tempo CSV declares about one source file."""

    tempo: float  # BPM
    licence: str = ""
    offset: float | None = None  # seconds to the first bar line (None: the first tracked beat)


def read_tempos(path: Path | None) -> dict[str, SourceInfo]:
    """``file,tempo[,licence][,offset]`` rows → {file name or relative path: info}."""
    if path is None:
        return {}
    rows = csv.DictReader(path.read_text(encoding="utf-8").splitlines())
    table = {}
    for number, row in enumerate(rows, 1):
        try:
            offset = (row.get("offset") or "").strip()
            table[row["file"].strip()] = SourceInfo(
                float(row["tempo"]),
                (row.get("licence") or "").strip(),
                float(offset) if offset else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(
                f"{path}: row {number} needs a file, a numeric tempo and, if given, a "
                "numeric offset"
            ) from None
    return table


def bar_segments(
    audio: np.ndarray, rate: int, tempo: float, first_beat_s: float, settings: DataSettings
) -> list[tuple[float, np.ndarray]]:
    """Cut ``[2, T]`` audio on its bar grid into segments at the dataset tempo.

    Returns:
        (offset in the source in seconds, ``[2, samples]`` at ``audio.mel.sr``) per segment.
    """
    grid = settings.audio
    source_len = grid.bars * grid.beats_per_bar * 60.0 / tempo  # seconds of one segment
    segments = []
    offset = first_beat_s
    while offset + source_len <= audio.shape[1] / rate + 1e-6:
        segments.append((round(offset, 4), cut_segment(audio, rate, tempo, offset, grid)))
        offset += source_len
    return segments


def cut_segment(
    audio: np.ndarray,
    rate: int,
    tempo: float,
    offset_s: float,
    grid: LoopAudio,
    out_rate: int | None = None,
) -> np.ndarray:
    """The segment of ``grid.bars`` bars at ``tempo`` starting ``offset_s`` into ``[C, T]``
    audio at ``rate``, stretched to the grid's tempo and resampled to ``out_rate`` (default
    the grid's mel rate): ``[C, grid.samples · out_rate / mel rate]``.

    The segment is stretched and resampled as a loop: with :data:`LOOP_CONTEXT_S` of its own
    other end on each side, cut away afterwards. Cut bare, the resampler's and the stretcher's
    filters read silence past its ends and leave a broadband step in its first and last
    milliseconds (about 0.75 nat more energy above 6 kHz in a pads segment's first frame than
    in its inner frames), which a generator learns as a click at the loop point. A stretcher
    is not the same at every instant, so a stretched segment's end no longer flows exactly
    into its start: its last :data:`SEAM_FADE_S` are crossed into what led into its start
    (:func:`rig.loops.seamless_cut`)."""
    out_rate = out_rate or grid.mel.sr
    source_len = grid.bars * grid.beats_per_bar * 60.0 / tempo
    piece = audio[:, round(offset_s * rate) : round((offset_s + source_len) * rate)]
    context = min(piece.shape[1], round(LOOP_CONTEXT_S * rate))
    wrapped = np.concatenate([piece[:, piece.shape[1] - context :], piece, piece[:, :context]], 1)
    ratio = grid.bpm / tempo if abs(tempo - grid.bpm) > 1e-3 else 1.0  # > 1: faster, shorter
    if ratio != 1.0:
        wrapped = stretch(wrapped, ratio, rate)
    wrapped = resample(wrapped, rate, out_rate)
    samples = round(grid.samples * out_rate / grid.mel.sr)
    start = round(context / ratio * out_rate / rate)
    kept = seamless_cut(wrapped, start, samples, round(SEAM_FADE_S * out_rate))
    exact = np.zeros((piece.shape[0], samples), dtype=np.float32)
    exact[:, : kept.shape[1]] = kept
    return exact


class Fingerprints:
    """Coarse normalised mel fingerprints of the kept segments, for duplicate detection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items = np.load(path) if path.is_file() else np.zeros((0, np.prod(FINGERPRINT)))
        self.stored = len(self.items)

    def is_duplicate(self, log_mel: torch.Tensor, threshold: float) -> bool:
        """True if ``log_mel`` [n_mels, frames] is like a kept one; else it is added."""
        small = torch.nn.functional.adaptive_avg_pool2d(log_mel[None], FINGERPRINT)[0]
        vector = small.flatten().numpy().astype(np.float64)
        vector = vector - vector.mean()
        vector /= np.linalg.norm(vector) or 1.0
        if self.items.shape[0] and float((self.items @ vector).max()) > threshold:
            return True
        self.items = np.vstack([self.items, vector])
        return False

    def save(self) -> None:
        """Persist new fingerprints (for resumed runs), atomically."""
        if len(self.items) != self.stored:
            write_array(self.path.parent, self.path.name, self.items)
            self.stored = len(self.items)


def prepare_dataset(
    src: Path,
    out: Path,
    material: str,
    tempos: Path | None = None,
    licence: str = "",
    settings: DataSettings | None = None,
) -> DataReport:
    """Build or extend the dataset in ``out`` from every audio file under ``src``."""
    from tqdm import tqdm

    settings = settings or DataSettings()
    table = read_tempos(tempos)
    _check_analysis(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    done = _finished_sources(manifest)
    front = MelFrontEnd(settings.audio.mel)
    prints = Fingerprints(out / "fingerprints.npy")
    report = DataReport()
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    shard = len(list((out / "shards").glob("*.safetensors")))
    with manifest.open("a", encoding="utf-8") as log:
        for path in tqdm(files, desc=f"prepare {material}", unit="file"):
            name = str(path.relative_to(src))
            if name in done:
                report.resumed += 1
                continue
            try:
                kept = _file_segments(path, name, table, licence, settings, front, prints, report)
            except (LoopError, OSError, RuntimeError, ValueError) as error:
                report.skipped.append(f"{name}: {error}")
                continue
            report.files += 1
            if kept:
                mels = torch.stack([mel for mel, _ in kept]).half()
                write_tensors(out / "shards", f"{shard:05d}.safetensors", {"mels": mels})
                for index, (_, entry) in enumerate(kept):
                    log.write(
                        json.dumps({"shard": shard, "index": index, **entry, "material": material})
                        + "\n"
                    )
                shard += 1
                report.segments += len(kept)
            log.write(json.dumps({"source_done": name}) + "\n")
            log.flush()
    prints.save()
    if report.skipped:
        with (out / "skipped.txt").open("a", encoding="utf-8") as skipped:
            skipped.write("".join(line + "\n" for line in report.skipped))
    _write_summary(src, out, material, settings)
    return report


def _check_analysis(out: Path) -> None:
    """Refuse to extend a dataset whose segments were analysed another way than new ones."""
    summary = out / "dataset.json"
    if summary.is_file() and not is_loop_analysed(out):
        raise ValueError(
            f"{out} was prepared by an older rig, with zero padding at each segment's ends "
            "(edge frames that teach a generator a click at the loop point); prepare the "
            "sources again into a new folder instead of extending it"
        )


def read_summary(folder: Path) -> dict[str, Any]:
    """A prepared dataset's ``dataset.json``.

    Raises:
        TrainError: ``folder`` has none.
    """
    summary = folder / "dataset.json"
    if not summary.is_file():
        raise TrainError(
            f"{folder} is not a prepared dataset (no dataset.json): run rig data prepare"
        )
    return dict(json.loads(summary.read_text(encoding="utf-8")))


def is_loop_analysed(folder: Path) -> bool:
    """Whether a prepared dataset's segments were analysed as loops (see :data:`LOOP_ANALYSIS`)."""
    return read_summary(folder).get("analysis") == LOOP_ANALYSIS


def _finished_sources(manifest: Path) -> set[str]:
    if not manifest.is_file():
        return set()
    lines = (json.loads(line) for line in manifest.read_text().splitlines() if line.strip())
    return {entry["source_done"] for entry in lines if "source_done" in entry}


def _file_segments(
    path: Path,
    name: str,
    table: dict[str, SourceInfo],
    licence: str,
    settings: DataSettings,
    front: MelFrontEnd,
    prints: Fingerprints,
    report: DataReport,
) -> list[tuple[torch.Tensor, dict[str, object]]]:
    import librosa

    audio, rate = read_audio(path)
    mono = audio.mean(axis=0)
    given = table.get(name) or table.get(path.name)
    if given is not None and given.offset is not None:
        tempo, first = given.tempo, given.offset
    else:
        tracked, beats = librosa.beat.beat_track(y=mono, sr=rate, units="time")
        tempo = given.tempo if given else float(np.atleast_1d(tracked)[0])
        first = float(beats[0]) if len(beats) else 0.0
    if not 40.0 <= tempo <= 300.0:
        raise ValueError(f"tempo {tempo:.1f} BPM is outside 40-300 (give it in the tempo CSV)")
    kept = []
    for offset, piece in bar_segments(audio, rate, tempo, first, settings):
        rms = float(np.sqrt(np.mean(piece**2)))
        if 20 * np.log10(rms + 1e-12) < settings.silence_dbfs:
            report.silent += 1
            continue
        log_mel = front.loop(torch.from_numpy(piece.mean(axis=0))[None])[0]
        if prints.is_duplicate(log_mel, settings.duplicate_similarity):
            report.duplicates += 1
            continue
        kept.append(
            (
                log_mel,
                {
                    "source": name,
                    "offset_s": offset,
                    "tempo": round(tempo, 3),
                    "licence": (given.licence if given else "") or licence,
                },
            )
        )
    return kept


def _write_summary(src: Path, out: Path, material: str, settings: DataSettings) -> None:
    """dataset.json and the per-bin statistics over every shard."""
    total, sums, squares = 0, None, None
    for shard in sorted((out / "shards").glob("*.safetensors")):
        mels = safetensors.torch.load_file(str(shard))["mels"].double()
        total += mels.shape[0] * mels.shape[2]
        sums = mels.sum(dim=(0, 2)) if sums is None else sums + mels.sum(dim=(0, 2))
        part = (mels**2).sum(dim=(0, 2))
        squares = part if squares is None else squares + part
    if sums is not None and squares is not None and total:
        mean = sums / total
        std = (squares / total - mean**2).clamp(min=0).sqrt()
        write_tensors(out, "stats.safetensors", {"mean": mean.float(), "std": std.float()})
    summary = {
        "format_version": 1,
        "analysis": LOOP_ANALYSIS,
        "material": material,
        "source_dir": str(src.resolve()),
        "segments": total // max(1, settings.audio.frames),
        "audio": settings.audio.to_dict(),
    }
    write_text(out, "dataset.json", json.dumps(summary, indent=2) + "\n")


def load_dataset(folder: Path) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Every segment ``[N, n_mels, frames]`` (float32) and the statistics of a prepared folder."""
    shards = sorted((folder / "shards").glob("*.safetensors"))
    mels = [safetensors.torch.load_file(str(s))["mels"].float() for s in shards]
    stats = safetensors.torch.load_file(str(folder / "stats.safetensors"))
    return (torch.cat(mels) if mels else torch.zeros(0)), stats


def dataset_audio(
    folder: Path, limit: int | None = None, seed: int = 0, rate: int | None = None
) -> np.ndarray:
    """The audio of a prepared dataset's segments, cut again from the source files the manifest
    names (``dataset.json`` ``source_dir``): ``[N, samples]`` mono at ``rate`` (default the
    dataset's mel rate; a full-band vocoder reads its sources at 48 kHz).

    ``limit`` segments at most, drawn at random (``seed``) from the whole set.

    Raises:
        ValueError: the dataset has no recorded source folder or its sources are gone.
    """
    info = json.loads((folder / "dataset.json").read_text())
    if "source_dir" not in info:
        raise ValueError(f"{folder}/dataset.json records no source_dir: prepare it again")
    grid = LoopAudio.from_dict(info["audio"])
    source = Path(info["source_dir"])
    entries = [
        json.loads(line)
        for line in (folder / "manifest.jsonl").read_text().splitlines()
        if line.strip() and '"offset_s"' in line
    ]
    if limit is not None and limit < len(entries):
        picked = np.random.default_rng(seed).choice(len(entries), limit, replace=False)
        entries = [entries[i] for i in sorted(picked)]
    pieces = []
    for name in dict.fromkeys(entry["source"] for entry in entries):
        try:
            audio, source_rate = read_audio(source / name)
        except LoopError as error:
            raise ValueError(f"{folder}: its source {source / name} is gone ({error})") from None
        mono = audio.mean(axis=0, keepdims=True)
        for entry in (e for e in entries if e["source"] == name):
            pieces.append(
                cut_segment(mono, source_rate, entry["tempo"], entry["offset_s"], grid, rate)[0]
            )
    if pieces:
        return np.stack(pieces)
    return np.zeros((0, round(grid.samples * (rate or grid.mel.sr) / grid.mel.sr)), np.float32)
