"""What the host and a companion say to each other over the relay's WebSocket.

Every frame is one JSON text message, in either direction::

    {"address": "/rig/load", "args": [1, "/host/takes/s/0001_x.wav", 120.0, 2, 8, "s-0001", 7],
     "file": {"path": "s/0001_x.wav", "size": 1411244, "sha256": "9f2c…"}}

``address`` and ``args`` are the device protocol's own (max4live/PROTOCOL.md); JSON keeps ints
and floats apart (``7`` vs ``7.0``) and the rig's messages hold nothing else. ``file`` rides on
the messages that name a take (:data:`CARRIES_FILE`: ``/rig/load``, ``/rig/clip``): the take's
path relative to the take folder (its URL below :data:`TAKES_ROUTE`), its length in bytes and
its SHA-256, so the companion can fetch it, verify it and rewrite the path into its own folder
before the device sees the message.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

RELAY_ROUTE = "/rig/relay"  # the WebSocket
TAKES_ROUTE = "/rig/takes"  # read-only take files: GET /rig/takes/<session>/<file>.wav
MAX_FRAME = 64 * 1024  # bytes of one JSON frame
MAX_ARGS = 32
TAKE_SUFFIXES = (".wav", ".json")  # what the take route serves


@dataclass(frozen=True)
class FileArgs:
    """Where a message that names a take keeps the take's path, its request id and its slot."""

    path: int  # index of the path argument
    req_id: int  # index of the request id
    slot: int | None  # index of the slot (a newer request for it wins), None: no slot


CARRIES_FILE = {"/rig/load": FileArgs(1, 6, 0), "/rig/clip": FileArgs(2, 9, None)}


class WireError(ValueError):
    """A relay frame that is not a valid message (the reason is named)."""


@dataclass(frozen=True)
class TakeFile:
    """A take's WAV as the host serves it."""

    path: str  # relative to the take folder, "/"-separated: "<session>/<file>.wav"
    size: int  # bytes
    sha256: str  # hex digest of the whole file


@dataclass(frozen=True)
class RelayMessage:
    """One device-protocol message crossing the relay."""

    address: str
    args: tuple[Any, ...]
    file: TakeFile | None = None

    def encode(self) -> str:
        """The JSON text frame."""
        body: dict[str, Any] = {"address": self.address, "args": list(self.args)}
        if self.file is not None:
            body["file"] = {"path": self.file.path, "size": self.file.size,
                            "sha256": self.file.sha256}  # fmt: skip
        return json.dumps(body, separators=(",", ":"))


def decode(frame: str | bytes) -> RelayMessage:
    """A frame as a message.

    Raises:
        WireError: not JSON, over :data:`MAX_FRAME`, or a field of the wrong type.
    """
    if len(frame) > MAX_FRAME:
        raise WireError(f"a {len(frame)}-byte frame is over the {MAX_FRAME}-byte limit")
    try:
        body = json.loads(frame)
    except ValueError as error:
        raise WireError(f"not JSON: {error}") from None
    if not isinstance(body, dict):
        raise WireError("a frame must be a JSON object")
    address, args = body.get("address"), body.get("args", [])
    if not isinstance(address, str) or not address.startswith("/rig/"):
        raise WireError(f"address {address!r:.60} is not a /rig/ address")
    if not isinstance(args, list) or len(args) > MAX_ARGS or not all(map(_osc_value, args)):
        raise WireError(f"{address}: args must be at most {MAX_ARGS} ints, floats and strings")
    file = _take_file(body["file"]) if "file" in body else None
    return RelayMessage(address, tuple(args), file)


def _osc_value(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | str) or (isinstance(value, float) and math.isfinite(value))


def _take_file(value: Any) -> TakeFile:
    if not isinstance(value, dict):
        raise WireError("file must be an object")
    path, size, digest = value.get("path"), value.get("size"), value.get("sha256")
    if not isinstance(path, str) or not safe_relative(path):
        raise WireError(f"file path {path!r:.80} is not a relative path inside the take folder")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise WireError(f"file size {size!r:.20} is not a byte count")
    if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
        raise WireError(f"file sha256 {digest!r:.80} is not 64 hex digits")
    return TakeFile(path, size, digest.lower())


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def safe_relative(path: str) -> bool:
    """A "/"-separated relative path with no ``..``, no empty or hidden parts, ending in a take
    file's suffix."""
    parts = PurePosixPath(path).parts
    return (
        bool(parts)
        and not path.startswith("/")
        and "\\" not in path
        and all(p not in ("", ".", "..") and not p.startswith(".") for p in parts)
        and path.endswith(TAKE_SUFFIXES)
    )


class Digests:
    """SHA-256 of take files, each read once (a take never changes once written; a file whose
    size or modification time changed is read again)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def of(self, path: Path) -> TakeFile:
        """The file's size and digest; ``TakeFile.path`` is left as the file's name.

        Raises:
            OSError: the file cannot be read.
        """
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            digest = self._known.get(key)
        if digest is None:
            digest = sha256_file(path)
            with self._lock:
                self._known[key] = digest
        return TakeFile(path.name, stat.st_size, digest)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in ``chunk``-byte pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
