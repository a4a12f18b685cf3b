"""This process's memory figures from /proc: current RSS and peak RSS (the one implementation; Linux first)."""

from __future__ import annotations

import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_kb(field: str, status: Path = _STATUS) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, …), or None where /proc is missing."""
    try:
        for line in status.read_text(encoding="ascii").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mb(status: Path = _STATUS) -> float:
    """Current resident set size in MiB (VmRSS; falls back to the peak where /proc is missing)."""
    kb = _status_kb("VmRSS", status)
    return round(kb / 1024, 1) if kb is not None else peak_rss_mb(status)


def peak_rss_mb(status: Path = _STATUS) -> float:
    """Peak resident set size of this process image in MiB.

    VmHWM, not getrusage: Linux carries ru_maxrss across execve, so a process started by a large parent (a test
    runner, a benchmark orchestrator) would report the parent's peak. ru_maxrss is only the fallback without /proc.
    """
    kb = _status_kb("VmHWM", status)
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return round(kb / 1024, 1)
