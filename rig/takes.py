"""Take store: every loop is written atomically as a WAV plus a JSON sidecar.

Layout: ``<takes>/<session>/<NNNN>_<slug>_<tempo>bpm_<bars>bars.wav`` and ``.json`` beside it,
where ``<session>`` is the start time of the rig session (``20261123-142141``) and ``NNNN`` counts
takes within it. A take id is ``<session>-<NNNN>``. Files are first written to hidden ``.part``
files in the same folder, flushed and fsynced, then renamed (sidecar first, WAV last), so a reader
that lists ``*.wav`` never sees a partial file and every WAV it sees has its sidecar.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from rig import __version__
from rig.engines.base import RECIPE_VERSION, Recipe
from rig.loops import Loop

TAKE_ID_RE = re.compile(r"^(\d{8}-\d{6}(?:-\d+)?)-(\d{4,})$")
SESSION_RE = re.compile(r"^\d{8}-\d{6}(?:-\d+)?$")  # a session folder name
SLUG_WORDS = 4


class TakeError(OSError):
    """A take cannot be written or found; earlier takes are never touched."""


SIDECAR_FORMAT = 2  # 1: the first plan's flat sidecar (still read, see Take.from_json)


@dataclass(frozen=True)
class LoopFacts:
    """The loop as written: its grid and its audio."""

    bpm: float
    bars: int
    beats_per_bar: int
    sample_rate: int  # Hz
    channels: int
    samples: int  # one loop, exactly
    duration_s: float
    loudness_lufs: float
    peak_dbfs: float
    wav_format: str  # soundfile subtype, e.g. "PCM_24"

    @property
    def quarters(self) -> int:
        """Quarter notes in the loop (what the device's transport counts)."""
        return self.bars * self.beats_per_bar

    @classmethod
    def of(cls, loop: Loop, wav_format: str) -> LoopFacts:
        """The facts of a finished loop."""
        return cls(
            loop.bpm,
            loop.bars,
            loop.beats_per_bar,
            loop.sample_rate,
            int(loop.audio.shape[0]),
            int(loop.audio.shape[1]),
            round(loop.seconds, 6),
            round(loop.lufs, 2),
            round(loop.peak_dbfs, 2),
            wav_format,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoopFacts:
        """From a sidecar's ``"loop"`` (or a format-1 sidecar's top level, which has
        ``"tempo"``)."""
        return cls(
            float(data["bpm"] if "bpm" in data else data["tempo"]),
            int(data["bars"]),
            int(data.get("beats_per_bar", 4)),
            int(data["sample_rate"]),
            int(data["channels"]),
            int(data["samples"]),
            float(data["duration_s"]),
            float(data["loudness_lufs"]),
            float(data["peak_dbfs"]),
            str(data.get("wav_format", "PCM_24")),
        )


@dataclass(frozen=True)
class Take:
    """A take on disk: the recipe asked for, the recipe that makes it again, the loop's facts and
    the engine's account. Written by :meth:`TakeStore.write`, read by :meth:`from_json` — every
    reader uses these attributes, never the sidecar's keys."""

    id: str  # "<session>-<NNNN>"
    wav: Path  # absolute path of the WAV
    sidecar: Path  # absolute path of the JSON sidecar
    recipe: Recipe  # as asked, with the defaults that applied and the seed drawn
    replay: Recipe  # makes this take again exactly (the GAN engine's w with morph 1, ...)
    loop: LoopFacts
    engine_info: Mapping[str, Any] = field(default_factory=dict)  # the engine's own account
    request_id: int = 0
    created: str = ""  # local time, ISO 8601
    rig_version: str = ""
    # The engine's own spectrogram [n_mels, frames] (log-mel) when it has one; kept in memory for
    # the UI, never written (the WAV is the take).
    spectrogram: np.ndarray | None = field(default=None, compare=False, repr=False)
    # The other takes the same request made to audition (in memory; each is a take on disk).
    variations: tuple[Take, ...] = field(default=(), compare=False, repr=False)

    @property
    def number(self) -> int:
        """The take's number within its session."""
        return int(self.id.rsplit("-", 1)[1])

    def to_json(self) -> dict[str, Any]:
        """The sidecar (format :data:`SIDECAR_FORMAT`)."""
        return {
            "format": SIDECAR_FORMAT,
            "take_id": self.id,
            "file": self.wav.name,
            "recipe": self.recipe.to_json(),
            "replay": self.replay.to_json(),
            "loop": dataclasses.asdict(self.loop),
            "engine_info": dict(self.engine_info),
            "request_id": self.request_id,
            "created": self.created,
            "rig_version": self.rig_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], sidecar: Path) -> Take:
        """A take from its sidecar's content (format 2, or format 1 migrated: its recipe from the
        prompt, engine, model, slot, seed and controls; a GAN take's replay from its recorded w).

        Raises:
            TakeError: a sidecar that cannot be read as a take (the field is named).
        """
        try:
            if data.get("format") == SIDECAR_FORMAT:
                recipe = Recipe.from_json(data["recipe"])
                replay = Recipe.from_json(data["replay"])
                loop = LoopFacts.from_json(data["loop"])
            else:
                recipe, replay = _format1_recipes(data)
                loop = LoopFacts.from_json(data)
            return cls(
                str(data["take_id"]),
                sidecar.with_suffix(".wav"),
                sidecar,
                recipe,
                replay,
                loop,
                dict(data.get("engine_info") or {}),
                int(data.get("request_id") or 0),
                str(data.get("created", "")),
                str(data.get("rig_version", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise TakeError(errno.EINVAL, f"{sidecar}: not a take sidecar ({error})") from None


def _format1_recipes(data: Mapping[str, Any]) -> tuple[Recipe, Recipe]:
    """(recipe, replay) of a format-1 sidecar: flat prompt/engine/model/seed/slot/controls, and
    for a GAN take the latent it landed on in ``engine_info``."""
    flat = ("prompt", "engine", "model", "slot", "seed", "controls")  # a version-1 recipe's
    recipe = Recipe.from_json({"version": RECIPE_VERSION, **{k: data.get(k) for k in flat}})
    info = data.get("engine_info") or {}
    if recipe.engine == "gan" and isinstance(info.get("w"), list):
        replay = dataclasses.replace(
            recipe,
            model=info.get("model", recipe.model),
            controls={**recipe.controls, "morph": 1.0},
            target=tuple(info["w"]),
        )
        return recipe, replay
    return recipe, recipe


def slugify(text: str, words: int = SLUG_WORDS) -> str:
    """``"Gritty and noisy pad!"`` → ``"gritty-noisy-pad"``: lowercase ASCII words, no fillers,
    each word at most 20 characters and the whole at most 60 (file names stay short)."""
    fillers = {"a", "an", "and", "the", "of", "with", "in", "on", "for", "to"}
    found = [w[:20] for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in fillers]
    return "-".join(found[:words])[:60].strip("-") or "loop"


def session_name(when: float | None = None) -> str:
    """A session folder name from a time: ``20261123-142141``."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(when))


class TakeStore:
    """Writes and recalls takes under ``root``; one store per rig session."""

    def __init__(self, root: Path, session: str | None = None, wav_subtype: str = "PCM_24") -> None:
        self.root = Path(root).resolve()
        self.session = session or session_name()
        self.folder = self.root / self.session
        self.wav_subtype = wav_subtype
        self._lock = threading.Lock()

    def write(
        self,
        loop: Loop,
        recipe: Recipe,
        replay: Recipe | None = None,
        engine_info: Mapping[str, Any] | None = None,
        request_id: int = 0,
    ) -> Take:
        """Write ``loop`` and its sidecar atomically (the one writer of takes).

        Args:
            loop: the finished loop.
            recipe: what was asked (defaults applied, seed drawn).
            replay: the recipe that makes this take again (default: ``recipe``).
            engine_info: the engine's own account (JSON-able).
            request_id: the session's request id.

        Returns:
            The written :class:`Take`.

        Raises:
            TakeError: the folder cannot be created or written (disk full, read-only, ...);
                no partial file is left and earlier takes are intact.
        """
        with self._lock:
            self._make_folder()
            number = self._next_number()
            take_id = f"{self.session}-{number:04d}"
            stem = f"{number:04d}_{slugify(recipe.prompt.text)}_{loop.bpm:g}bpm_{loop.bars}bars"
            wav, sidecar = self.folder / f"{stem}.wav", self.folder / f"{stem}.json"
            take = Take(
                take_id,
                wav,
                sidecar,
                recipe,
                replay or recipe,
                LoopFacts.of(loop, self.wav_subtype),
                dict(engine_info or {}),
                request_id,
                time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                __version__,
            )
            parts = [self.folder / f".{stem}.wav.part", self.folder / f".{stem}.json.part"]
            try:
                _write_wav(parts[0], loop.audio, loop.sample_rate, self.wav_subtype)
                _write_json(parts[1], take.to_json())
                os.replace(parts[1], sidecar)
                os.replace(parts[0], wav)
                _fsync_dir(self.folder)
            except OSError as error:
                for path in (*parts, sidecar):
                    with contextlib.suppress(OSError):  # a read-only disk refuses this too
                        path.unlink(missing_ok=True)
                raise TakeError(error.errno, _describe(error, self.folder)) from error
            return take

    def recall(self, take_id: str) -> Take:
        """Find a take by id (``20261123-142141-0042``) or by number in this session (``42``).

        Raises:
            TakeError: no such take, or its sidecar is unreadable.
        """
        session, number = self._parse_id(take_id)
        folder = self.root / session
        matches = sorted(folder.glob(f"{number:04d}_*.json"))
        if not matches:
            raise TakeError(errno.ENOENT, f"no take {take_id!r} in {folder}")
        sidecar = matches[0]
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise TakeError(
                errno.EIO, f"take {take_id}: unreadable sidecar {sidecar}: {error}"
            ) from None
        return Take.from_json(data, sidecar)

    def takes(self) -> list[Take]:
        """Every take of this session, oldest first."""
        numbers = sorted(self._numbers())
        return [self.recall(str(n)) for n in numbers]

    def _parse_id(self, take_id: str) -> tuple[str, int]:
        text = str(take_id).strip()
        if text.isdigit():
            return self.session, int(text)
        match = TAKE_ID_RE.match(text)
        if not match:
            raise TakeError(
                errno.EINVAL,
                f"{take_id!r} is not a take id (expected SESSION-NNNN such as "
                f"{self.session}-0001, or a take number)",
            )
        return match.group(1), int(match.group(2))

    def check(self) -> None:
        """Make sure takes can be written under the root (``rig perform`` and ``rig doctor``
        check it before the show).

        Raises:
            TakeError: the folder cannot be created or written, naming it and the setting.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".rig-check-"):
                pass
        except OSError as error:
            raise TakeError(error.errno, _describe(error, self.root)) from error

    def _make_folder(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TakeError(error.errno, _describe(error, self.folder)) from error

    def _numbers(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        found = (re.match(r"^(\d{4,})_", p.name) for p in self.folder.glob("*.json"))
        return [int(m.group(1)) for m in found if m]

    def _next_number(self) -> int:
        return max(self._numbers(), default=0) + 1


def atomic_write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str) -> None:
    """Write ``[channels, samples]`` audio to ``path`` atomically (hidden part file, fsync, rename).

    Raises:
        OSError: nothing is left behind; an existing ``path`` is untouched.
    """
    path = Path(path)
    part = path.with_name(f".{path.name}.part")
    try:
        _write_wav(part, audio, sample_rate, subtype)
        os.replace(part, path)
    except OSError:
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str) -> None:
    # Encoded in memory first: soundfile reports a short write (disk full) as an AssertionError,
    # while a plain file write raises the OSError (ENOSPC, EFBIG, ...) that names the problem.
    encoded = io.BytesIO()
    soundfile.write(encoded, audio.T, sample_rate, subtype=subtype, format="WAV")
    with path.open("wb") as handle:
        handle.write(encoded.getbuffer())
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe(error: OSError, folder: Path) -> str:
    if error.errno == errno.ENOSPC:
        return f"disk full while writing a take to {folder}; earlier takes are intact"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"take folder {folder} is not writable ({error.strerror}); set RIG_TAKES"
    return f"cannot write a take to {folder}: {error}"
