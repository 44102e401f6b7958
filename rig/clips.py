"""Takes as Live clips: the name and colour a take's clip gets, and the request to the device
(``/rig/clip``, max4live/PROTOCOL.md). The device places, warps and loops it (Live 12.0.5+)."""

from __future__ import annotations

import zlib

from rig.config import ClipsConfig
from rig.link import Link
from rig.takes import Take

# Eight colours that stay apart on Live's clip palette and on Push (0xRRGGBB; Live takes the
# nearest of its own).
PALETTE = (0xFF5A5A, 0xFFA12B, 0xF7E34A, 0x7BE06A, 0x3CC8C8, 0x5A8CFF, 0xB46AFF, 0xFF6AC1)
NAME_CHARS = 40  # of the prompt in a clip's name


def clip_name(take: Take) -> str:
    """The prompt's text (shortened) and the take id: ``dusty drums · 20261130-0102-0007``."""
    text = " ".join(take.recipe.prompt.text.split()) or take.recipe.engine
    if len(text) > NAME_CHARS:
        text = text[: NAME_CHARS - 1].rstrip() + "…"
    return f"{text} · {take.id}"


def clip_color(take: Take) -> int:
    """One colour per model (a GAN material), else per engine: the same every run."""
    key = str(take.engine_info.get("model") or take.replay.model or take.recipe.engine)
    return PALETTE[zlib.crc32(key.encode()) % len(PALETTE)]


def place_clip(
    link: Link, clips: ClipsConfig, take: Take, track: int | None = None, scene: int = 0
) -> int:
    """Ask the device to put ``take`` on ``track`` (default ``clips.track``) as a clip, in
    ``scene`` (from 1; 0: the track's first empty clip slot); returns the request id.

    Raises:
        LinkError: no track chosen, or the take is outside the take folder.
    """
    return link.place_clip(track or clips.track, take, clip_name(take), clip_color(take),
                           clips.fire, scene)  # fmt: skip
