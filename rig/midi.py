"""The MIDI controller: a TOML mapping from CCs and notes to controls and actions, learn mode,
and a reader thread on a mido input port chosen by name.

``midi.toml``::

    port = "nanoKONTROL2"           # input port name (or a unique part of it)
    channel = 0                      # optional: only this channel (0-15)
    [cc]                             # CC number = control: "engine.name", or a name of the
    16 = "morph"                     # chosen engine's controls (of the one engine that has it)
    17 = "variation"
    18 = "spread"
    19 = "complexity"
    [note]                           # note number = action ["argument"]
    36 = "generate 1"
    37 = "generate 2"
    44 = "vary"
    45 = "next_preset"

CCs set controls through the parameter schema (the CC value 0-127 spans the control's range with
its curve); notes with velocity > 0 run actions. The same mapping serves ``/rig/cc`` sent by the
device, so a controller plugged into the Live laptop works too.
"""

from __future__ import annotations

import logging
import threading
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.lograte import LogLimiter
from rig.performance import ACTIONS, ActionError, Performance

log = logging.getLogger(__name__)


class MidiError(RuntimeError):
    """A mapping file, port or MIDI system problem; the message says what to do."""


@dataclass
class MidiMapping:
    """CC → control name, note → (action, argument)."""

    port: str = ""
    channel: int | None = None
    cc: dict[int, str] = field(default_factory=dict)
    notes: dict[int, tuple[str, int | None]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> MidiMapping:
        """Read a mapping file.

        Raises:
            MidiError: unreadable TOML, or an entry out of range or naming an unknown action.
        """
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise MidiError(f"{path}: cannot be read as TOML: {error}") from None
        mapping = cls(port=str(table.get("port", "")), channel=table.get("channel"))
        try:
            for number, name in table.get("cc", {}).items():
                mapping.cc[_midi_number(number, "CC")] = str(name)
            for number, text in table.get("note", {}).items():
                mapping.notes[_midi_number(number, "note")] = parse_action(str(text))
        except (ValueError, AttributeError) as error:
            raise MidiError(f"{path}: {error}") from None
        if mapping.channel is not None and mapping.channel not in range(16):
            raise MidiError(f"{path}: channel must be 0-15, got {mapping.channel!r}")
        return mapping

    def save(self, path: Path) -> None:
        """Write the mapping (learned bindings included) as TOML, atomically."""
        lines = [f'port = "{self.port}"']
        if self.channel is not None:
            lines.append(f"channel = {self.channel}")
        lines += ["", "[cc]", *(f'{n} = "{name}"' for n, name in sorted(self.cc.items()))]
        lines += ["", "[note]"]
        for number, (action, argument) in sorted(self.notes.items()):
            text = action if argument is None else f"{action} {argument}"
            lines.append(f'{number} = "{text}"')
        part = path.with_name(f".{path.name}.part")
        part.write_text("\n".join(lines) + "\n", encoding="utf-8")
        part.replace(path)


def _midi_number(value: Any, what: str) -> int:
    number = int(value)
    if not 0 <= number <= 127:
        raise ValueError(f"{what} number {value!r} is outside 0-127")
    return number


def _is_action(target: str) -> bool:
    return bool(target.split()) and target.split()[0] in ACTIONS


def parse_action(text: str) -> tuple[str, int | None]:
    """``"generate 2"`` → ("generate", 2); ``"vary"`` → ("vary", None)."""
    parts = text.split()
    if not parts or parts[0] not in ACTIONS or len(parts) > 2:
        raise ValueError(f"{text!r} is not an action; known: {', '.join(ACTIONS)} [number]")
    return parts[0], int(parts[1]) if len(parts) == 2 else None


class MidiController:
    """Turns MIDI messages into control changes and actions on a :class:`Performance`."""

    def __init__(self, mapping: MidiMapping, performance: Performance) -> None:
        self.mapping = mapping
        self.performance = performance
        self._limited = LogLimiter(log)
        self.learning: str | None = None  # a control or action waiting for its CC or note
        self.last_event = ""  # what the last message did, for the UI
        self._port: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def learn(self, target: str) -> None:
        """Bind the next CC (for a control: ``engine.name`` or a bare name) or note (for an
        action, e.g. "generate 3").

        Raises:
            ActionError / ValueError: neither a control nor an action.
        """
        if _is_action(target):
            parse_action(target)
        else:
            try:
                self.performance.resolve(target)
            except ActionError as error:
                raise ActionError(f"cannot learn {target!r}: not an action, and {error}") from None
        self.learning = target

    def handle(self, message: Any) -> None:
        """One mido message (``control_change`` or ``note_on``); never raises."""
        try:
            self._handle(message)
        except (ActionError, ValueError) as error:
            self.last_event = f"{message}: {error}"
            self.performance.notice(f"MIDI {message}: {error}")
            self._limited.warning("midi", "MIDI %s: %s", message, error)

    def _handle(self, message: Any) -> None:
        channel = self.mapping.channel
        if channel is not None and getattr(message, "channel", channel) != channel:
            return
        if message.type == "control_change":
            self.on_cc(message.control, message.value)
        elif message.type == "note_on" and message.velocity > 0:
            self.on_note(message.note)

    def on_cc(self, number: int, value: int) -> None:
        """A CC (from a port or ``/rig/cc``): learn it, or move its control."""
        if self.learning and not _is_action(self.learning):
            self.mapping.cc[number] = self.learning
            self.last_event = f"CC {number} → {self.learning} (learned)"
            self.learning = None
            return
        name = self.mapping.cc.get(number)
        if name is not None:
            value_set = self.performance.set_control_unit(name, value / 127.0)
            self.last_event = f"CC {number} → {name} = {value_set:.3g}"

    def on_note(self, number: int) -> None:
        """A note-on: learn it, or run its action (which only enqueues)."""
        if self.learning and _is_action(self.learning):
            self.mapping.notes[number] = parse_action(self.learning)
            self.last_event = f"note {number} → {self.learning} (learned)"
            self.learning = None
            return
        bound = self.mapping.notes.get(number)
        if bound is not None:
            self.performance.action(*bound, source="midi")
            self.last_event = f"note {number} → {' '.join(str(x) for x in bound if x is not None)}"

    # -- ports -----------------------------------------------------------------------------
    def start(self, port: Any) -> MidiController:
        """Read ``port`` (any mido input) on a thread until :meth:`close`."""
        self._port = port
        self._thread = threading.Thread(target=self._read, name="rig-midi", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        while not self._stop.is_set():
            for message in self._port.iter_pending():
                self.handle(message)
            self._stop.wait(0.002)

    def close(self) -> None:
        """Stop reading and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._port is not None:
            self._port.close()


def open_input(name: str, names: Callable[[], Iterable[str]] | None = None) -> Any:
    """Open the input port whose name is ``name`` or contains it (one match).

    Raises:
        MidiError: no MIDI system, or no/several matching ports (the available ones are listed).
    """
    import mido

    try:
        available = list((names or mido.get_input_names)())
    except Exception as error:  # rtmidi raises its own SystemError types
        raise MidiError(
            f"no MIDI system is available here ({error}); "
            "plug in the controller or start the MIDI service"
        ) from None
    matches = [n for n in available if n == name] or [n for n in available if name in n]
    if len(matches) != 1:
        listed = ", ".join(repr(n) for n in available) or "none"
        problem = "matches several" if matches else "matches no"
        raise MidiError(f"MIDI port {name!r} {problem} input port; available: {listed}")
    return mido.open_input(matches[0])
