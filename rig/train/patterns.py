"""Generated 2-bar MIDI patterns for the demo corpus: drum grooves, basslines and pad chords.

Every pattern is a list of :class:`Note` in beats (4/4, 2 bars = 8 beats) plus the General-MIDI
program (or drum kit) that plays it and a short description. Patterns are drawn from a seeded
``random.Random``, so the same seed always gives the same corpus. :func:`write_midi` lays many
patterns out one after the other, each played twice, so that the second pass of each can be cut
out as a seamless loop (it carries the release tails of its own first pass).

GM note and program numbers: General MIDI 1 Level 1 (drum map on channel 10; kits 0 Standard,
8 Room, 16 Power, 24 Electronic, 25 TR-808, 32 Jazz, 40 Brush as FluidR3_GM lays them out in
bank 128).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BEATS = 8  # two bars of 4/4
STEPS = 32  # sixteenth notes in two bars
TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9

KITS = (0, 8, 16, 24, 25, 32, 40)
BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39, 87)
PAD_PROGRAMS = (88, 89, 90, 91, 92, 93, 94, 95, 48, 49, 50, 52, 19, 4)
MELODY_PROGRAMS = tuple(  # every melodic program but the basses, pads and sound effects
    p for p in range(112) if p not in BASS_PROGRAMS and p not in PAD_PROGRAMS
)

KICK, RIM, SNARE, CLAP = 36, 37, 38, 39
CLOSED_HAT, PEDAL_HAT, OPEN_HAT = 42, 44, 46
LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE = 45, 47, 50, 49, 51
PERCUSSION = (54, 56, 63, 64, 69, 70, 75)  # tambourine, cowbell, congas, cabasa, maracas, claves

# Kick and snare steps (sixteenths of one bar) per style; the second bar may vary.
DRUM_STYLES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "four_on_the_floor": ((0, 4, 8, 12), (4, 12)),
    "backbeat": ((0, 8), (4, 12)),
    "breakbeat": ((0, 2, 10, 11), (4, 7, 9, 12, 15)),
    "half_time": ((0, 3, 11), (8,)),
    "boom_bap": ((0, 7, 10), (4, 12)),
    "two_step": ((0, 10), (4, 12)),
}
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
CHORDS = {  # intervals above the root
    "triad": (0, 4, 7),
    "minor": (0, 3, 7),
    "seventh": (0, 4, 7, 11),
    "minor_seventh": (0, 3, 7, 10),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "add9": (0, 4, 7, 14),
}


@dataclass(frozen=True)
class Note:
    """One note: start and length in beats, MIDI pitch and velocity (1-127)."""

    start: float
    length: float
    pitch: int
    velocity: int


@dataclass
class Pattern:
    """A 2-bar pattern for one instrument."""

    notes: list[Note]
    program: int  # GM program, or drum kit when ``drums``
    drums: bool
    description: dict[str, object] = field(default_factory=dict)
    reverb: int = 40  # CC91 send, 0-127
    volume: int = 110  # CC7


def _velocity(rng: random.Random, base: int, spread: int) -> int:
    return max(1, min(127, round(rng.gauss(base, spread))))


def _step_time(step: int, swing: float, jitter_beats: float, rng: random.Random) -> float:
    """Beat position of a sixteenth ``step``, swung (odd sixteenths late) and humanised."""
    beat = step / 4 + (swing / 4 if step % 2 else 0.0)
    return max(0.0, beat + rng.gauss(0.0, jitter_beats)) if jitter_beats else beat


def drum_pattern(rng: random.Random) -> Pattern:
    """A groove: a style's kick/snare skeleton, hats of some density, ghost notes, fills,
    percussion, swing, velocity and timing humanisation, on one of the GM kits."""
    style = rng.choice(sorted(DRUM_STYLES))
    kicks, snares = DRUM_STYLES[style]
    hats = rng.choice(("eighths", "sixteenths", "sparse", "offbeat_open", "ride"))
    swing = rng.choice((0.0, 0.0, 0.1, 0.2))
    jitter = rng.choice((0.0, 0.01, 0.02))  # beats: 0, 5, 10 ms at 120 BPM
    ghosts = rng.random() < 0.5
    snare_sound = rng.choice((SNARE, SNARE, CLAP, RIM))
    hits: list[tuple[int, int, int]] = []  # (step, pitch, base velocity)
    for bar in (0, 1):
        bar_kicks = set(kicks)
        if bar == 1 and rng.random() < 0.5:
            bar_kicks ^= {rng.randrange(16)}
        hits += [(bar * 16 + s, KICK, 110) for s in bar_kicks]
        hits += [(bar * 16 + s, snare_sound, 105) for s in snares]
        for s in range(16):
            step = bar * 16 + s
            if hats == "eighths" and s % 2 == 0:
                hits.append((step, CLOSED_HAT, 80 if s % 4 else 95))
            elif hats == "sixteenths":
                hits.append((step, CLOSED_HAT, 85 if s % 2 == 0 else 60))
            elif hats == "sparse" and s % 4 == 2 and rng.random() < 0.8:
                hits.append((step, PEDAL_HAT if rng.random() < 0.5 else CLOSED_HAT, 75))
            elif hats == "offbeat_open" and s % 4 == 2:
                hits.append((step, OPEN_HAT, 85))
            elif hats == "ride" and s % 2 == 0:
                hits.append((step, RIDE, 80))
            snare_steps = {h[0] for h in hits if h[1] == snare_sound}
            if ghosts and step not in snare_steps and rng.random() < 0.12:
                hits.append((step, SNARE, 35))
    if rng.random() < 0.25:  # a fill on the last beat
        toms = rng.sample((HIGH_TOM, MID_TOM, LOW_TOM, SNARE), 4)
        hits += [(28 + i, toms[i], 100) for i in range(4)]
    if rng.random() < 0.35:
        sound = rng.choice(PERCUSSION)
        every = rng.choice((1, 2, 3, 4))
        hits += [(s, sound, 70) for s in range(0, STEPS, every) if rng.random() < 0.8]
    notes = [
        Note(_step_time(step, swing, jitter, rng), 0.25, pitch, _velocity(rng, base, 10))
        for step, pitch, base in sorted(hits)
    ]
    kit = rng.choice(KITS)
    described = {"style": style, "hats": hats, "swing": swing, "ghosts": ghosts, "kit": kit}
    return Pattern(notes, kit, True, described, rng.randrange(0, 50), rng.randrange(95, 120))


def _scale_degree(root: int, scale: tuple[int, ...], degree: int) -> int:
    return root + scale[degree % 7] + 12 * (degree // 7)


def bass_pattern(rng: random.Random) -> Pattern:
    """A bassline in any key: root/fifth/octave figures over one or two chords."""
    root = 28 + rng.randrange(12)  # E1 … D#2
    scale = rng.choice((MAJOR, MINOR))
    second = rng.choice((0, 3, 4, 5, 6))  # degree of the second bar's chord
    figure = rng.choice(("pulse", "root_fifth", "octaves", "syncopated", "walking", "sustained"))
    gate = rng.choice((0.45, 0.8, 0.95))
    swing = rng.choice((0.0, 0.0, 0.15))
    notes: list[Note] = []
    for bar, degree in enumerate((0, second)):
        chord_root = _scale_degree(root, scale, degree)
        fifth, octave = chord_root + 7, chord_root + 12
        if figure == "pulse":
            steps = [(s, chord_root, 2) for s in range(0, 16, 2)]
        elif figure == "root_fifth":
            steps = [(0, chord_root, 6), (6, fifth, 2), (8, chord_root, 4), (12, fifth, 4)]
        elif figure == "octaves":
            steps = [(s, chord_root if s % 4 == 0 else octave, 2) for s in range(0, 16, 2)]
        elif figure == "syncopated":
            picks = [s for s in range(16) if s == 0 or rng.random() < 0.35]
            steps = [(s, rng.choice((chord_root, chord_root, fifth, octave)), 1) for s in picks]
        elif figure == "walking":
            steps = [(4 * b, _scale_degree(root, scale, degree + b), 4) for b in range(4)]
        else:
            steps = [(0, chord_root, 16)]
        for step, pitch, length in steps:
            start = _step_time(bar * 16 + step, swing, 0.0, rng)
            notes.append(Note(start, length / 4 * gate, pitch, _velocity(rng, 100, 12)))
    program = rng.choice(BASS_PROGRAMS)
    described = {"key": root % 12, "minor": scale is MINOR, "figure": figure, "program": program}
    return Pattern(notes, program, False, described, rng.randrange(0, 30), rng.randrange(95, 120))


def _voicing(rng: random.Random, root: int, chord: tuple[int, ...]) -> list[int]:
    """The chord's notes placed around middle C, in a random inversion."""
    inversion = rng.randrange(len(chord))
    pitches = [root + i + (12 if n < inversion else 0) for n, i in enumerate(chord)]
    while min(pitches) < 52:
        pitches = [p + 12 for p in pitches]
    while max(pitches) > 80:
        pitches = [p - 12 for p in pitches]
    return pitches


def pad_pattern(rng: random.Random) -> Pattern:
    """Chords: a progression of 1, 2 or 4 chords in any key, held, stabbed or arpeggiated."""
    key = 48 + rng.randrange(12)
    scale = rng.choice((MAJOR, MINOR))
    count = rng.choice((1, 2, 2, 4))
    degrees = [0] + [rng.choice((1, 2, 3, 4, 5)) for _ in range(count - 1)]
    style = rng.choice(("held", "held", "held", "stabs", "arpeggio"))
    length = BEATS / count
    notes: list[Note] = []
    for index, degree in enumerate(degrees):
        chord_root = _scale_degree(key, scale, degree)
        third = scale[(degree + 2) % 7] - scale[degree % 7]
        minor = (third % 12) == 3
        kind = rng.choice(("minor", "minor_seventh") if minor else ("triad", "seventh", "add9"))
        kind = rng.choice((kind, kind, "sus2", "sus4"))
        pitches = _voicing(rng, chord_root, CHORDS[kind])
        start = index * length
        velocity = _velocity(rng, 90, 10)
        if style == "held":
            notes += [Note(start, length * 0.98, p, velocity) for p in pitches]
        elif style == "stabs":
            for beat in [b / 2 for b in range(int(length * 2)) if rng.random() < 0.5] or [0.0]:
                notes += [Note(start + beat, 0.4, p, velocity) for p in pitches]
        else:
            for n in range(int(length * 4)):
                pitch = pitches[n % len(pitches)] + (12 if (n // len(pitches)) % 2 else 0)
                notes.append(Note(start + n / 4, 0.3, pitch, velocity))
    program = rng.choice(PAD_PROGRAMS)
    described = {"key": key % 12, "minor": scale is MINOR, "chords": count, "style": style}
    return Pattern(notes, program, False, {**described, "program": program}, rng.randrange(30, 90))


def melody_pattern(rng: random.Random) -> Pattern:
    """A melody or arpeggio on any melodic GM instrument (pianos, organs, guitars, strings,
    brass, reeds, pipes, leads, ethnic), in any key and register: timbral variety for training
    the vocoder, not a loop model of its own."""
    key = 36 + rng.randrange(12) + 12 * rng.randrange(4)  # C2 … B5
    scale = rng.choice((MAJOR, MINOR))
    grid = rng.choice((1, 2, 2, 4))  # note lengths in sixteenths
    gate = rng.choice((0.5, 0.9, 1.0))
    degree = rng.randrange(7)
    notes: list[Note] = []
    for step in range(0, STEPS, grid):
        if rng.random() < 0.2:
            continue  # a rest
        degree = max(-7, min(14, degree + rng.choice((-2, -1, -1, 0, 1, 1, 2, 4))))
        pitch = _scale_degree(key, scale, degree)
        notes.append(Note(step / 4, grid / 4 * gate, pitch, _velocity(rng, 95, 15)))
    program = rng.choice(MELODY_PROGRAMS)
    described: dict[str, object] = {
        "key": key % 12,
        "minor": scale is MINOR,
        "grid": grid,
        "program": program,
    }
    return Pattern(notes, program, False, described, rng.randrange(0, 80), rng.randrange(90, 120))


PATTERN_MAKERS = {
    "drums": drum_pattern,
    "bass": bass_pattern,
    "pads": pad_pattern,
    "melody": melody_pattern,
}


def write_midi(patterns: list[Pattern], path: Path) -> None:
    """Write ``patterns`` at 120 BPM, pattern ``k`` occupying bars ``4k … 4k+3`` (played twice).

    Each pattern starts with all notes off, its program (or kit), volume and reverb send.
    """
    import mido

    bar = 4 * TICKS_PER_BEAT
    events: list[tuple[int, int, mido.Message]] = []  # (tick, order, message): offs before ons
    for k, pattern in enumerate(patterns):
        channel = DRUM_CHANNEL if pattern.drums else 0
        block = 4 * k * bar
        for number, value in ((123, 0), (121, 0), (7, pattern.volume), (91, pattern.reverb)):
            events.append((block, 0, _control(channel, number, value)))
        events.append(
            (block, 1, mido.Message("program_change", channel=channel, program=pattern.program))
        )
        for repeat in (0, 1):
            offset = block + repeat * 2 * bar
            for note in pattern.notes:
                on = offset + round(note.start * TICKS_PER_BEAT)
                off = on + max(1, round(note.length * TICKS_PER_BEAT))
                events.append(
                    (
                        on,
                        3,
                        mido.Message(
                            "note_on", channel=channel, note=note.pitch, velocity=note.velocity
                        ),
                    )
                )
                events.append((off, 2, mido.Message("note_off", channel=channel, note=note.pitch)))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)])
    last = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - last))
        last = tick
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    midi.save(str(path))


def _control(channel: int, number: int, value: int) -> Any:  # a mido.Message (untyped)
    import mido

    return mido.Message("control_change", channel=channel, control=number, value=value)
