"""The structured prompt: free text plus ``Key: Value`` fields anywhere, comma separated.

Example::

    gritty and noisy pad, Tempo: 107, Key: E minor, Genre: Ambient, Instrument: Synthesizer, Bars: 4

Field names are case-insensitive. Known fields are validated (tempo 40–240 BPM, bars 1/2/4/8/16,
musical keys such as ``E minor``, ``F# maj``, ``Bbm``, meters such as ``3/4`` or ``6/8`` whose bar
is a whole number of quarter notes); unknown fields are kept as tags.
``format_prompt(parse_prompt(p))`` is a fixed point: parsing it again gives the same prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from rig.config import ALLOWED_BARS, TEMPO_RANGE

FIELD_RE = re.compile(r"^\s*([A-Za-z][A-Za-z _-]{0,31}?)\s*:\s*(.*?)\s*$", re.DOTALL)
KEY_RE = re.compile(r"^([A-Ga-g])([#♯b♭]?)\s*([A-Za-z]*)$")
MAJOR_WORDS = ("", "M", "maj", "major")
MINOR_WORDS = ("m", "min", "minor")
TEMPO_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:bpm)?$", re.IGNORECASE)
METER_RE = re.compile(r"^(\d{1,2})\s*/\s*(1|2|4|8|16)$")
KNOWN_FIELDS = ("tempo", "key", "genre", "instrument", "bars", "meter")
MAX_PROMPT = 500  # characters of a whole prompt
MAX_FIELD = 80  # characters of one free field (genre, instrument, a tag)
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class PromptError(ValueError):
    """A prompt field has a value outside what the rig accepts."""

    def __init__(self, name: str, value: str, accepted: str) -> None:
        super().__init__(f"{name}: {value!r} is not valid; accepted: {accepted}")
        self.field = name
        self.value = value
        self.accepted = accepted


@dataclass(frozen=True)
class Prompt:
    """A parsed prompt. ``None`` means the performer did not say (the defaults apply)."""

    text: str = ""  # the free text, comma-joined
    tempo: float | None = None  # BPM, 40-240
    key: str | None = None  # normalised, e.g. "E minor", "F# major"
    bars: int | None = None  # 1, 2, 4, 8 or 16
    genre: str | None = None
    instrument: str | None = None
    tags: tuple[tuple[str, str], ...] = field(default=())  # unknown fields, in order
    meter: str | None = None  # time signature, e.g. "3/4" (a bar of whole quarter notes)

    def with_defaults(self, tempo: float, bars: int, meter: str = "4/4") -> Prompt:
        """The prompt with ``tempo``, ``bars`` and ``meter`` filled in where it does not say."""
        return replace(
            self,
            tempo=self.tempo if self.tempo is not None else tempo,
            bars=self.bars if self.bars is not None else bars,
            meter=self.meter if self.meter is not None else meter,
        )

    @property
    def beats_per_bar(self) -> int:
        """Quarter notes in a bar of the meter (4 when none is set)."""
        return meter_beats(self.meter) if self.meter else 4


def check_text(name: str, value: str, limit: int = MAX_FIELD) -> str:
    """Free text of a field: at most ``limit`` characters, no control characters (a tab or a
    newline becomes a space); raises :class:`PromptError` naming the field."""
    if not isinstance(value, str):
        raise PromptError(name, str(value)[:40], "text")
    if CONTROL_RE.search(value):
        raise PromptError(name, value[:40], "text without control characters")
    if len(value) > limit:
        raise PromptError(name, value[:40] + "…", f"at most {limit} characters")
    return " ".join(value.split())


def parse_tempo(value: str) -> float:
    """``"107"``, ``"107 bpm"``, ``"92.5"`` → BPM; raises :class:`PromptError` outside 40–240."""
    match = TEMPO_RE.match(value.strip())
    accepted = f"a tempo of {TEMPO_RANGE[0]:g}-{TEMPO_RANGE[1]:g} BPM"
    if not match:
        raise PromptError("Tempo", value, accepted)
    tempo = float(match.group(1))
    if not TEMPO_RANGE[0] <= tempo <= TEMPO_RANGE[1]:
        raise PromptError("Tempo", value, accepted)
    return tempo


def parse_bars(value: str) -> int:
    """``"4"`` → 4; raises :class:`PromptError` unless 1, 2, 4, 8 or 16."""
    accepted = "bars of " + ", ".join(str(b) for b in ALLOWED_BARS)
    try:
        bars = int(value.strip())
    except ValueError:
        raise PromptError("Bars", value, accepted) from None
    if bars not in ALLOWED_BARS:
        raise PromptError("Bars", value, accepted)
    return bars


def parse_key(value: str) -> str:
    """``"F# maj"``, ``"Bbm"``, ``"e minor"`` → ``"F# major"``, ``"Bb minor"``, ``"E minor"``."""
    match = KEY_RE.match(value.strip())
    if not match:
        raise PromptError("Key", value, "a key such as 'E minor', 'F# maj', 'Bbm' or 'C'")
    letter, accidental, mode = match.groups()
    accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
    mode = mode if mode in ("M", "m") else mode.lower()
    if mode not in MAJOR_WORDS + MINOR_WORDS:
        raise PromptError("Key", value, "a mode of major/maj/M or minor/min/m")
    minor = mode in MINOR_WORDS
    return f"{letter.upper()}{accidental} {'minor' if minor else 'major'}"


def parse_meter(value: str) -> str:
    """``"3/4"``, ``"6 / 8"`` → ``"3/4"``, ``"6/8"``; raises :class:`PromptError` unless the bar
    is a whole number (1-16) of quarter notes (so 7/8 is refused: 3.5 beats)."""
    accepted = "a meter such as 4/4, 3/4 or 6/8 whose bar is 1-16 quarter notes"
    match = METER_RE.match(value.strip())
    if not match:
        raise PromptError("Meter", value, accepted)
    meter = f"{int(match.group(1))}/{int(match.group(2))}"
    quarters = int(match.group(1)) * 4 / int(match.group(2))
    if not (quarters.is_integer() and 1 <= quarters <= 16):
        raise PromptError("Meter", value, accepted)
    return meter


def meter_beats(meter: str) -> int:
    """Quarter notes in a bar of ``meter`` (``"6/8"`` → 3)."""
    num, den = (int(x) for x in meter.split("/"))
    return num * 4 // den


def _format_tempo(tempo: float) -> str:
    return f"{tempo:g}"


def parse_prompt(text: str) -> Prompt:
    """Parse a structured prompt.

    Args:
        text: free text and ``Name: value`` fields separated by commas.

    Returns:
        The :class:`Prompt`.

    Raises:
        PromptError: naming the field, the value and the accepted range; also for a field given
            twice or with an empty value.
    """
    text = check_text("Prompt", text, MAX_PROMPT)
    free: list[str] = []
    fields: dict[str, str] = {}
    tags: list[tuple[str, str]] = []
    seen: set[str] = set()
    for segment in text.split(","):
        match = FIELD_RE.match(segment)
        if not match:
            if segment.strip():
                free.append(" ".join(segment.split()))
            continue
        name, value = match.group(1).strip(), " ".join(match.group(2).split())
        lower = name.lower()
        if lower in seen:
            raise PromptError(name, value, "each field once")
        seen.add(lower)
        if not value:
            raise PromptError(name, value, "a value after the colon")
        if lower in KNOWN_FIELDS:
            fields[lower] = value
        else:
            tags.append((name[0].upper() + name[1:], check_text(name, value)))
    return Prompt(
        text=", ".join(free),
        tempo=parse_tempo(fields["tempo"]) if "tempo" in fields else None,
        key=parse_key(fields["key"]) if "key" in fields else None,
        bars=parse_bars(fields["bars"]) if "bars" in fields else None,
        genre=check_text("Genre", fields["genre"]) if "genre" in fields else None,
        instrument=check_text("Instrument", fields["instrument"])
        if "instrument" in fields
        else None,
        tags=tuple(tags),
        meter=parse_meter(fields["meter"]) if "meter" in fields else None,
    )


def format_prompt(prompt: Prompt) -> str:
    """The canonical text of a prompt: free text, then Tempo, Key, Genre, Instrument, Bars,
    Meter, tags."""
    parts = [prompt.text] if prompt.text else []
    if prompt.tempo is not None:
        parts.append(f"Tempo: {_format_tempo(prompt.tempo)}")
    if prompt.key is not None:
        parts.append(f"Key: {prompt.key}")
    if prompt.genre is not None:
        parts.append(f"Genre: {prompt.genre}")
    if prompt.instrument is not None:
        parts.append(f"Instrument: {prompt.instrument}")
    if prompt.bars is not None:
        parts.append(f"Bars: {prompt.bars}")
    if prompt.meter is not None:
        parts.append(f"Meter: {prompt.meter}")
    parts.extend(f"{name}: {value}" for name, value in prompt.tags)
    return ", ".join(parts)
