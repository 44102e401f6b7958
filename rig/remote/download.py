"""Fetch one take file from the host: resumable, verified, atomic.

The bytes go to ``<file>.part`` next to the destination. A dropped connection keeps what
arrived, and the next attempt asks only for the rest (``Range: bytes=N-``; a server that answers
200 instead of 206 sends it all again). A complete file is checked against the size and SHA-256
the host announced and only then renamed into place, so the device never reads half a take.
Attempts back off (``first_s``, doubling up to ``max_s``); a refused token or a missing file
ends at once.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rig.remote.wire import TakeFile, sha256_file

PERMANENT = (401, 403, 404, 410)  # statuses no retry will change


class FetchError(OSError):
    """A take that could not be fetched (the reason and the URL are named)."""


@dataclass(frozen=True)
class FetchPolicy:
    """Attempts and back-off of one take's download."""

    attempts: int = 8  # requests in all
    first_s: float = 0.2  # wait after the first failed attempt
    max_s: float = 4.0  # longest wait between attempts
    timeout_s: float = 10.0  # connect / read timeout of one request

    def delay(self, failed: int) -> float:
        """Seconds to wait after the ``failed``-th failed attempt (1-based)."""
        return min(self.max_s, self.first_s * 2 ** (failed - 1))


@dataclass
class FetchReport:
    """How a download went."""

    attempts: int = 0  # requests made
    resumed_from: list[int] = field(default_factory=list)  # byte offsets a request resumed at
    had_it: bool = False  # the destination already held the verified file


def fetch_take(
    client: httpx.Client,
    url: str,
    dest: Path,
    file: TakeFile,
    policy: FetchPolicy | None = None,
) -> FetchReport:
    """Download ``url`` to ``dest`` and verify it against ``file``.

    Raises:
        FetchError: the token was refused, the host has no such file, or every attempt failed
            (the last reason is named).
    """
    policy = policy or FetchPolicy()
    report = FetchReport()
    if _verified(dest, file):
        report.had_it = True
        return report
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    reason = "no attempt"
    for attempt in range(1, policy.attempts + 1):
        report.attempts = attempt
        try:
            _request(client, url, part, file.size, report, policy.timeout_s)
            if _verified(part, file):
                _publish(part, dest)
                return report
            reason = f"the file does not match the host's size {file.size} and SHA-256"
            part.unlink(missing_ok=True)
        except httpx.HTTPStatusError as error:
            status = error.response.status_code
            reason = f"HTTP {status}"
            if status in PERMANENT:
                raise FetchError(f"{url}: the host answered {reason}" + _hint(status)) from None
        except httpx.TransportError as error:
            reason = f"{type(error).__name__}: {error}"
        if attempt < policy.attempts:
            time.sleep(policy.delay(attempt))
    raise FetchError(f"{url}: {reason} after {policy.attempts} attempts")


def _request(
    client: httpx.Client, url: str, part: Path, size: int, report: FetchReport, timeout: float
) -> None:
    """One GET, appended to ``part`` from where it ends."""
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    if have == size:
        return
    headers = {"Range": f"bytes={have}-"} if have else {}
    if have:
        report.resumed_from.append(have)
    with client.stream("GET", url, headers=headers, timeout=timeout) as response:
        if response.status_code == 416:  # the part is off: start again
            part.unlink(missing_ok=True)
            raise httpx.TransportError("the host refused the resume range")
        response.raise_for_status()
        mode = "ab" if response.status_code == 206 else "wb"
        with part.open(mode) as handle:
            for chunk in response.iter_raw():
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())


def _verified(path: Path, file: TakeFile) -> bool:
    return path.is_file() and path.stat().st_size == file.size and sha256_file(path) == file.sha256


def _publish(part: Path, dest: Path) -> None:
    os.replace(part, dest)
    with contextlib.suppress(OSError):  # some file systems cannot sync a folder
        folder = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _hint(status: int) -> str:
    if status in (401, 403):
        return " (the token is wrong: use the one `rig perform --remote` printed)"
    return ""
