"""Rate-limited log lines, so hostile or broken input cannot flood the terminal or the disk."""

from __future__ import annotations

import logging
import threading
import time


class LogLimiter:
    """At most one line per ``key`` every ``every_s`` seconds; the next one says how many were
    left out in between."""

    def __init__(self, logger: logging.Logger, every_s: float = 5.0) -> None:
        self.logger = logger
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log ``message % args`` under ``key`` unless one was logged too recently; True if
        logged."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -1e9) < self.every_s:
                self._skipped[key] = self._skipped.get(key, 0) + 1
                return False
            self._last[key] = now
            skipped = self._skipped.pop(key, 0)
        suffix = f" ({skipped} more like it not shown)" if skipped else ""
        self.logger.warning(message + suffix, *args)
        return True
