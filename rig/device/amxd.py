"""The unfrozen ``.amxd`` container: a 32-byte header, the patcher JSON and a trailing NUL.

Layout (all integers little-endian u32), as Max saves it (checked against Ableton's reference
devices in ``shared/max/reference``)::

    "ampf" 4 <type>           type: b"aaaa" audio effect, b"mmmm" MIDI effect, b"iiii" instrument
    "meta" 4 <flags>          1 in devices Max saves today, 0 in older ones
    "ptch" <length>           length of what follows, counting the trailing NUL
    <patcher JSON> NUL

A frozen device's ``ptch`` payload starts with ``mx@c`` (Max's collective format holding the patch
and its dependencies); it is not source and is refused. The JSON text is kept byte for byte, so
reading and writing back a device gives the identical file.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

HEADER_SIZE = 32
DEVICE_TYPES = {b"aaaa": "audio effect", b"mmmm": "MIDI effect", b"iiii": "instrument"}
FROZEN_MAGIC = b"mx@c"


class AmxdError(ValueError):
    """A file is not an unfrozen Max for Live device."""


@dataclass(frozen=True)
class Amxd:
    """An unfrozen device: its type, meta flags and patcher JSON text (UTF-8 bytes, no NUL)."""

    device_type: bytes  # b"aaaa", b"mmmm" or b"iiii"
    flags: int
    patcher_json: bytes

    def patcher(self) -> dict[str, Any]:
        """The JSON parsed (``{"patcher": {...}}``)."""
        try:
            parsed = json.loads(self.patcher_json.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AmxdError(f"the device's patcher is not valid JSON: {error}") from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("patcher"), dict):
            raise AmxdError('the device\'s JSON has no "patcher" object')
        return parsed


def read_amxd(data: bytes) -> Amxd:
    """Parse an ``.amxd`` file's bytes.

    Raises:
        AmxdError: naming what is wrong (not an amxd, a bad header or length, a frozen device).
    """
    if len(data) < HEADER_SIZE or data[:4] != b"ampf":
        raise AmxdError('not a Max for Live device: it does not start with "ampf"')
    amp_len, device_type = struct.unpack_from("<I4s", data, 4)
    meta, meta_len, flags, ptch, length = struct.unpack_from("<4sII4sI", data, 12)
    if amp_len != 4 or meta != b"meta" or meta_len != 4 or ptch != b"ptch":
        raise AmxdError("unknown .amxd header layout (expected ampf/meta/ptch sections of 4 bytes)")
    if device_type not in DEVICE_TYPES:
        raise AmxdError(
            f"unknown device type {device_type!r}; known: "
            + ", ".join(f"{k.decode()} ({v})" for k, v in DEVICE_TYPES.items())
        )
    payload = data[HEADER_SIZE:]
    if payload.startswith(FROZEN_MAGIC):
        raise AmxdError(
            "this device is frozen (its patch is packed with its dependencies): "
            "unfreeze it in Max (the snowflake button in the device's editor), save, "
            "and use that file"
        )
    if length != len(payload):
        raise AmxdError(
            f"the ptch section says {length} bytes but {len(payload)} follow "
            "(a truncated or padded file)"
        )
    if not payload.endswith(b"\0"):
        raise AmxdError("the patcher JSON is not NUL-terminated")
    return Amxd(device_type, flags, payload[:-1])


def write_amxd(device: Amxd) -> bytes:
    """The ``.amxd`` bytes of ``device`` (the exact inverse of :func:`read_amxd`)."""
    if device.device_type not in DEVICE_TYPES:
        raise AmxdError(f"unknown device type {device.device_type!r}")
    payload = device.patcher_json + b"\0"
    header = struct.pack(
        "<4sI4s4sII4sI",
        b"ampf",
        4,
        device.device_type,
        b"meta",
        4,
        device.flags,
        b"ptch",
        len(payload),
    )
    return header + payload


def patcher_bytes(patcher: dict[str, Any]) -> bytes:
    """A patcher dict as JSON text for a device (tab-indented, as Max writes)."""
    return (json.dumps(patcher, indent="\t", ensure_ascii=False) + "\n").encode("utf-8")
