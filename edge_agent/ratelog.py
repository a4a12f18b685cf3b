"""Rate-limited warnings for what can repeat per message or frame: one line per kind per interval, with a count.

Why: a full disk, an ACL or a flood of bad commands can repeat a warning thousands of times a minute; the journal
(and the SD card under it) should get one line a minute that says how many, and `stats.warnings` the exact counts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

INTERVAL_S = 60.0


class RateLimitedLog:
    """`warn(kind, logger, fmt, *args)`: logs the first occurrence of a kind, then at most one line per interval."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}
        self._logged: dict[str, int] = {}
        self._since_line: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def warn(self, kind: str, logger: logging.Logger, fmt: str, *args: Any, level: int = logging.WARNING) -> bool:
        """Count one occurrence; log it (with how many were not logged since the last line) when due."""
        now = time.monotonic()
        with self._lock:
            self._count[kind] = self._count.get(kind, 0) + 1
            self._since_line[kind] = self._since_line.get(kind, 0) + 1
            if now - self._last.get(kind, -1e18) < self.interval_s:
                return False
            self._last[kind] = now
            repeats = self._since_line[kind] - 1
            self._since_line[kind] = 0
            self._logged[kind] = self._logged.get(kind, 0) + 1
        suffix = f" (+{repeats} more like this in the last {self.interval_s:g}s)" if repeats else ""
        logger.log(level, fmt + "%s", *args, suffix)
        return True

    def snapshot(self) -> dict[str, dict[str, int]]:
        """`stats.warnings`: per kind, occurrences and log lines so far."""
        with self._lock:
            return {k: {"count": n, "logged": self._logged.get(k, 0)} for k, n in sorted(self._count.items())}
