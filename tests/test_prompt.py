"""The structured prompt: a table of good and bad prompts, and a stable canonical form."""

from __future__ import annotations

import pytest

from rig.prompt import Prompt, PromptError, format_prompt, parse_prompt

SEED = "gritty and noisy pad, Tempo: 107, Key: E minor, Genre: Ambient, Instrument: Synthesizer"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            SEED + ", Bars: 4",
            Prompt("gritty and noisy pad", 107.0, "E minor", 4, "Ambient", "Synthesizer"),
        ),
        ("tempo: 92.5 bpm, deep bass", Prompt(text="deep bass", tempo=92.5)),
        ("KEY: F# maj, BARS: 16", Prompt(key="F# major", bars=16)),
        ("Key: Bbm", Prompt(key="Bb minor")),
        ("Key: c", Prompt(key="C major")),
        ("Key: Eb Minor", Prompt(key="Eb minor")),
        ("Key: A♭ min", Prompt(key="Ab minor")),
        ("Key: CM", Prompt(key="C major")),
        ("Key: Cm", Prompt(key="C minor")),
        ("Tempo: 40", Prompt(tempo=40.0)),
        ("Tempo: 240", Prompt(tempo=240.0)),
        (
            "Mood: tense, Bars: 1, ratio 3:2",
            Prompt(text="ratio 3:2", bars=1, tags=(("Mood", "tense"),)),
        ),
        ("  spaced   out ,  , texture ", Prompt(text="spaced out, texture")),
        ("", Prompt()),
    ],
)
def test_good_prompts_parse(text: str, expected: Prompt) -> None:
    assert parse_prompt(text) == expected


@pytest.mark.parametrize(
    ("text", "field", "accepted"),
    [
        ("Tempo: 39", "Tempo", "40-240 BPM"),
        ("Tempo: 241", "Tempo", "40-240 BPM"),
        ("Tempo: fast", "Tempo", "40-240 BPM"),
        ("Bars: 3", "Bars", "1, 2, 4, 8, 16"),
        ("Bars: two", "Bars", "1, 2, 4, 8, 16"),
        ("Key: H minor", "Key", "E minor"),
        ("Key: E dorian", "Key", "major/maj/M"),
        ("Tempo: 100, tempo: 120", "tempo", "each field once"),
        ("Genre: ", "Genre", "a value"),
    ],
)
def test_bad_prompts_name_field_value_and_range(text: str, field: str, accepted: str) -> None:
    with pytest.raises(PromptError) as caught:
        parse_prompt(text)
    assert caught.value.field == field
    assert accepted in str(caught.value)
    assert repr(caught.value.value) in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        SEED,
        "Bars: 8, Key: f#m, four on the floor, Swing: 60%, tempo: 128",
        "Instrument: Bass, dark, Genre: Techno, texture: grainy",
        "just words, nothing else",
    ],
)
def test_format_of_parse_is_stable(text: str) -> None:
    once = format_prompt(parse_prompt(text))
    assert format_prompt(parse_prompt(once)) == once
    assert parse_prompt(once) == parse_prompt(text)


def test_canonical_order_and_spelling() -> None:
    text = "Bars: 8, key: f#m, dark, tempo: 128.0, Swing: 60%"
    assert format_prompt(parse_prompt(text)) == (
        "dark, Tempo: 128, Key: F# minor, Bars: 8, Swing: 60%"
    )


def test_defaults_fill_only_missing_fields() -> None:
    prompt = parse_prompt("pad, Bars: 4").with_defaults(tempo=97.0, bars=2)
    assert (prompt.tempo, prompt.bars) == (97.0, 4)


def test_meter_is_a_bar_of_whole_quarter_notes() -> None:
    prompt = parse_prompt("waltz pad, Meter: 3 / 4")
    assert (prompt.meter, prompt.beats_per_bar) == ("3/4", 3)
    assert format_prompt(prompt) == "waltz pad, Meter: 3/4"
    assert parse_prompt("jig, meter: 6/8").beats_per_bar == 3
    assert parse_prompt("pad").with_defaults(120.0, 2, "6/8").meter == "6/8"
    assert parse_prompt("pad, Meter: 5/4").with_defaults(120.0, 2, "6/8").meter == "5/4"
    for bad in ("7/8", "3/5", "three", "0/4", "17/4"):
        with pytest.raises(PromptError, match=r"Meter: .* accepted: a meter such as 4/4"):
            parse_prompt(f"pad, Meter: {bad}")
