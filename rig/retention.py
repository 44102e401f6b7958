"""Retention of takes: old session folders go, within ``takes.keep_sessions`` and
``takes.max_gb``; the current session and every take a device slot holds stay.

The link records which file each slot holds in ``<take root>/.slots.json`` (the latest
acknowledged load per slot), so a prune in another process (``rig takes prune``) knows them too.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rig.takes import SESSION_RE, Take

SLOTS_FILE = ".slots.json"


@dataclass
class PruneReport:
    """What a prune removed (or would remove, on a dry run)."""

    sessions: list[Path] = field(default_factory=list)  # whole session folders
    files: list[Path] = field(default_factory=list)  # single takes of a session kept in part
    freed_bytes: int = 0
    kept_for_slots: list[Path] = field(default_factory=list)


def record_slot(root: Path, slot: int, path: Path) -> None:
    """Remember that device ``slot`` holds ``path`` (written atomically)."""
    held = slot_files(root)
    held[str(slot)] = str(Path(path).resolve())
    part = root / f"{SLOTS_FILE}.part"
    part.write_text(json.dumps(held, indent=1) + "\n", encoding="utf-8")
    os.replace(part, root / SLOTS_FILE)


def slot_files(root: Path) -> dict[str, str]:
    """slot (as text) → the file it holds, as recorded; {} when none or unreadable."""
    try:
        held = json.loads((root / SLOTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in held.items()} if isinstance(held, dict) else {}


def held_takes(root: Path) -> dict[int, Take]:
    """slot → the take it holds, as recorded (a take whose files are gone or unreadable is left
    out: a device that still holds it keeps playing it)."""
    held: dict[int, Take] = {}
    for slot, path in slot_files(root).items():
        sidecar = Path(path).with_suffix(".json")
        try:
            take = Take.from_json(json.loads(sidecar.read_text(encoding="utf-8")), sidecar)
        except (OSError, ValueError):
            continue
        if slot.isdigit() and take.wav.is_file():
            held[int(slot)] = take
    return held


def prune(
    root: Path, keep_sessions: int, max_gb: float, current: str | None = None, dry_run: bool = False
) -> PruneReport:
    """Remove the oldest session folders beyond ``keep_sessions`` (0: no limit) and until the
    root is under ``max_gb`` (0: no limit). A session holding a take a slot uses keeps that take
    (its WAV and sidecar) and loses the rest.
    """
    root = root.resolve()
    report = PruneReport()
    held = {Path(p) for p in slot_files(root).values()}
    sessions = sorted(p for p in root.iterdir() if p.is_dir() and SESSION_RE.match(p.name))
    candidates = [s for s in sessions if s.name != current]
    total = sum(_size(s) for s in sessions)
    excess = max(0, len(sessions) - keep_sessions) if keep_sessions else 0
    for index, folder in enumerate(candidates):
        over_count = index < excess
        over_size = bool(max_gb) and total > max_gb * 1e9
        if not (over_count or over_size):
            break
        kept = sorted(p for p in held if folder in p.parents)
        freed = _remove(folder, kept, report, dry_run)
        total -= freed
        report.freed_bytes += freed
    return report


def _remove(folder: Path, kept: list[Path], report: PruneReport, dry_run: bool) -> int:
    """Remove ``folder`` but the takes in ``kept``; returns the bytes freed."""
    if not kept:
        freed = _size(folder)
        report.sessions.append(folder)
        if not dry_run:
            shutil.rmtree(folder, ignore_errors=True)
        return freed
    keep = {p for k in kept for p in (k, k.with_suffix(".json"))}
    report.kept_for_slots.extend(kept)
    freed = 0
    for path in sorted(folder.iterdir()):
        if path.is_file() and path not in keep:
            freed += path.stat().st_size
            report.files.append(path)
            if not dry_run:
                path.unlink(missing_ok=True)
    return freed


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
