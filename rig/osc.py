"""OSC 1.0 packets, decoded defensively (python-osc builds what the link sends).

python-osc's parser loops forever on a bundle element of negative size and recurses without a
limit on nested bundles, so one hostile datagram could stall or kill a receiver. This decoder
reads every length, offset and count against the bytes it has: a packet is decoded completely
or refused with :class:`OscError` naming what is wrong, in time proportional to its size.

Supported: messages with ``i f s b h d t T F N I`` arguments; bundles nested at most
:data:`MAX_DEPTH` deep, holding at most :data:`MAX_MESSAGES` messages; packets of at most
:data:`MAX_PACKET` bytes (a UDP datagram the rig's messages never approach).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

MAX_PACKET = 8192  # bytes
MAX_DEPTH = 4  # bundle nesting
MAX_MESSAGES = 64  # messages in one packet
MAX_ARGUMENTS = 32  # arguments of one message
BUNDLE = b"#bundle\x00"


class OscError(ValueError):
    """A packet that is not valid OSC (or exceeds a limit); the message says why."""


@dataclass(frozen=True)
class OscMessage:
    """One decoded message."""

    address: str
    args: tuple[Any, ...]


def decode(data: bytes) -> list[OscMessage]:
    """Every message in a datagram (a message or a bundle), in order.

    Raises:
        OscError: malformed, truncated or over a limit.
    """
    if len(data) > MAX_PACKET:
        raise OscError(f"{len(data)} bytes is over the {MAX_PACKET}-byte limit")
    messages: list[OscMessage] = []
    _packet(memoryview(data), 0, messages)
    return messages


def _packet(data: memoryview, depth: int, out: list[OscMessage]) -> None:
    if bytes(data[:8]) == BUNDLE:
        _bundle(data, depth, out)
    else:
        if len(out) >= MAX_MESSAGES:
            raise OscError(f"more than {MAX_MESSAGES} messages in one packet")
        out.append(_message(data))


def _bundle(data: memoryview, depth: int, out: list[OscMessage]) -> None:
    if depth >= MAX_DEPTH:
        raise OscError(f"bundles nested deeper than {MAX_DEPTH}")
    if len(data) < 16:
        raise OscError("a bundle without its time tag")
    offset = 16
    while offset < len(data):
        if offset + 4 > len(data):
            raise OscError("a bundle element's size is cut off")
        (size,) = struct.unpack_from(">i", data, offset)
        offset += 4
        if size <= 0 or size % 4 or offset + size > len(data):
            raise OscError(f"a bundle element of size {size} at byte {offset - 4}")
        _packet(data[offset : offset + size], depth + 1, out)
        offset += size


def _message(data: memoryview) -> OscMessage:
    address, offset = _string(data, 0)
    if not address.startswith("/"):
        raise OscError(f"not an OSC address: {address[:40]!r}")
    if offset >= len(data):
        return OscMessage(address, ())
    tags, offset = _string(data, offset)
    if not tags.startswith(","):
        raise OscError("missing type tags")
    if len(tags) - 1 > MAX_ARGUMENTS:
        raise OscError(f"more than {MAX_ARGUMENTS} arguments")
    args = []
    for tag in tags[1:]:
        value, offset = _argument(data, offset, tag)
        args.append(value)
    return OscMessage(address, tuple(args))


FIXED = {"i": ">i", "f": ">f", "h": ">q", "d": ">d", "t": ">Q"}
CONSTANT = {"T": True, "F": False, "N": None, "I": float("inf")}


def _argument(data: memoryview, offset: int, tag: str) -> tuple[Any, int]:
    if tag in CONSTANT:
        return CONSTANT[tag], offset
    if tag in FIXED:
        size = struct.calcsize(FIXED[tag])
        if offset + size > len(data):
            raise OscError(f"a {tag!r} argument is cut off")
        return struct.unpack_from(FIXED[tag], data, offset)[0], offset + size
    if tag == "s":
        return _string(data, offset)
    if tag == "b":
        if offset + 4 > len(data):
            raise OscError("a blob's size is cut off")
        (size,) = struct.unpack_from(">i", data, offset)
        end = offset + 4 + size
        if size < 0 or end > len(data):
            raise OscError(f"a blob of size {size}")
        return bytes(data[offset + 4 : end]), offset + 4 + ((size + 3) & ~3)
    raise OscError(f"unknown OSC type tag {tag!r}")


def _string(data: memoryview, offset: int) -> tuple[str, int]:
    raw = bytes(data[offset:])
    end = raw.find(b"\x00")
    if end < 0:
        raise OscError("a string without its NUL")
    try:
        text = raw[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise OscError("a string that is not UTF-8") from None
    return text, offset + ((end + 4) & ~3)
