"""Run-time measurements for `stats`: per-stage latency windows (p50/p95), rates, RSS and uptime."""

from __future__ import annotations

import resource
import threading
import time
from collections import deque

import numpy as np


class LatencyWindow:
    """The last `size` durations of one stage, in milliseconds; thread-safe, O(1) per sample."""

    def __init__(self, size: int = 512) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def add_ms(self, ms: float) -> None:
        with self._lock:
            self._samples.append(ms)
            self.count += 1

    def percentiles(self) -> dict[str, float | int | None]:
        """{"p50", "p95", "n"} over the window; None when empty."""
        with self._lock:
            data = np.fromiter(self._samples, dtype=np.float64)
        if data.size == 0:
            return {"p50": None, "p95": None, "n": 0}
        p50, p95 = np.percentile(data, [50, 95])
        return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "n": int(data.size)}


class RateMeter:
    """Events per second between two reads (reset on read), for fps figures in `stats`."""

    def __init__(self) -> None:
        self._count = 0
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self._count += n

    def rate(self) -> float:
        with self._lock:
            now = time.monotonic()
            elapsed = max(now - self._since, 1e-6)
            value = self._count / elapsed
            self._count, self._since = 0, now
        return round(value, 2)


def rss_mb() -> float:
    """Current resident set size in MiB from /proc (falls back to the peak from getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return round(pages * resource.getpagesize() / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
