"""Run-time measurements for `stats`: latency windows, frozen snapshots, and the one reporter that owns the previous.

Each part of the running agent hands over a frozen snapshot (`RunnerSnapshot`, `CaptureSnapshot`, `ProcessSnapshot`);
`StatsReporter` keeps the previous `StatsSnapshot` so interval rates are differences of totals, and the payload
itself is built by pure functions (`stats_payload`, `camera_stats`) that the tests call directly.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_agent.procstats import rss_mb

if TYPE_CHECKING:
    from edge_agent.capture.status import CaptureSnapshot
    from edge_agent.detect.guided import ScheduleStats


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50/p95 (ms) over a latency window and its sample count; p50/p95 are None when the window is empty."""

    p50: float | None
    p95: float | None
    n: int


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

    def percentiles(self) -> Percentiles:
        """p50, p95 and n over the window."""
        with self._lock:
            data = np.fromiter(self._samples, dtype=np.float64)
        if data.size == 0:
            return Percentiles(None, None, 0)
        p50, p95 = np.percentile(data, [50, 95])
        return Percentiles(round(float(p50), 3), round(float(p95), 3), int(data.size))


@dataclass(frozen=True, slots=True)
class RunnerSnapshot:
    """One camera's totals since start: capture counters plus what the analysis loop did with the frames."""

    camera_id: str
    capture: CaptureSnapshot
    processed: int  # frames analysed to the end
    faces: int
    paused: int  # frames taken while analysis was paused (never analysed: reported as dropped)
    bad: int  # unusable frames (DetectError): bad input
    errors: int  # frames that failed with an unexpected error: a bug or a broken stage
    errors_by_type: tuple[tuple[str, int], ...] = ()
    healthy: bool = True
    classified: int = 0  # faces classified (the sampler's picks)
    detection: ScheduleStats | None = None  # scheduled detection; None: a full scan on every frame


@dataclass(frozen=True, slots=True)
class ProcessSnapshot:
    """Process-wide figures at one instant."""

    mono: float
    cpu_s: float
    rss_mb: float
    threads: int
    open_fds: int

    @classmethod
    def now(cls) -> ProcessSnapshot:
        return cls(
            time.monotonic(),
            time.process_time(),
            rss_mb(),
            _proc_count("/proc/self/task"),
            _proc_count("/proc/self/fd"),
        )


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Everything one `stats` message reports, read at one instant."""

    process: ProcessSnapshot
    uptime_s: float
    cameras: tuple[RunnerSnapshot, ...]
    timings: Mapping[str, Percentiles]
    publish: Mapping[str, Any]  # Publisher.stats(): passed through as the schema's `publish` object


# Stage windows (camera.Timings attribute names) → keys of the payload's `inference_ms`.
INFERENCE_KEYS = {
    "detector": "detect",
    "attributes": "classify_face",
    "attributes_frame": "classify",
    "pose": "pose",
    "analytics": "analytics",
    "publish": "publish",
    "frame": "total",
}


def latency_payload(p: Percentiles) -> dict[str, float | int]:
    """Percentiles → the schema's {p50, p95, count} (an empty window gives count 0 only)."""
    out: dict[str, float | int] = {"count": p.n}
    if p.p50 is not None and p.p95 is not None:
        out.update(p50=p.p50, p95=p.p95)
    return out


def camera_stats(cur: RunnerSnapshot, prev: RunnerSnapshot | None, elapsed_s: float) -> dict[str, Any]:
    """One camera's entry in `stats.cameras`: interval rates from the totals' differences, and the totals."""
    elapsed = max(elapsed_s, 1e-3)
    cap = cur.capture
    prev_processed = prev.processed if prev is not None else 0
    prev_dropped = prev.capture.dropped + prev.paused if prev is not None else 0
    dropped = cap.dropped + cur.paused
    return {
        "status": cap.state,
        "healthy": cur.healthy,
        "capture_fps": cap.capture_fps,
        "processed_fps": round(max(0, cur.processed - prev_processed) / elapsed, 2),
        "dropped_fps": round(max(0, dropped - prev_dropped) / elapsed, 2),
        "frames_captured": cap.captured,
        "frames_processed": cur.processed,
        "frames_dropped": dropped,
        "frames_bad": cap.bad + cur.bad,
        "errors": cur.errors,
        "reopens": cap.reopens,
        "detection": detection_stats(cur, prev, elapsed),
    }


def detection_stats(cur: RunnerSnapshot, prev: RunnerSnapshot | None, elapsed: float) -> dict[str, Any]:
    """Where detection and classification time went: per-second rates over the interval, and totals."""
    d, p = cur.detection, prev.detection if prev is not None else None
    full = d.full_scans if d is not None else cur.processed  # no scheduling: a full scan per analysed frame
    totals = {
        "full_scans": full,
        "region_searches": d.region_searches if d is not None else 0,
        "still_frames": d.still_frames if d is not None else 0,
        "classifications": cur.classified,
    }
    before = {
        "full_scans": (p.full_scans if p is not None else prev.processed if prev is not None else 0),
        "region_searches": p.region_searches if p is not None else 0,
        "still_frames": p.still_frames if p is not None else 0,
        "classifications": prev.classified if prev is not None else 0,
    }
    out: dict[str, Any] = {k + "_per_s": round(max(0, v - before[k]) / elapsed, 2) for k, v in totals.items()}
    out.update(totals)
    if d is not None:
        out["region_misses"] = d.region_misses
        out["full_scans_by_reason"] = dict(d.full_by_reason)
    return out


def stats_payload(cur: StatsSnapshot, prev: StatsSnapshot | None, started: ProcessSnapshot) -> dict[str, Any]:
    """The `stats` payload for the interval from `prev` (or from `started`, for the first message) to `cur`."""
    base = prev.process if prev is not None else started
    elapsed = max(cur.process.mono - base.mono, 1e-3)
    prev_cameras = {c.camera_id: c for c in prev.cameras} if prev is not None else {}
    empty = Percentiles(None, None, 0)
    return {
        "uptime_s": round(cur.uptime_s, 1),
        "interval_s": round(elapsed, 3),
        "cameras": {c.camera_id: camera_stats(c, prev_cameras.get(c.camera_id), elapsed) for c in cur.cameras},
        "inference_ms": {k: latency_payload(cur.timings.get(v, empty)) for k, v in INFERENCE_KEYS.items()},
        "latency_ms": latency_payload(cur.timings.get("capture_to_publish", empty)),
        "publish": dict(cur.publish),
        "memory_rss_mb": cur.process.rss_mb,
        "threads": cur.process.threads,
        "open_fds": cur.process.open_fds,
        "cpu_percent": round(100.0 * max(0.0, cur.process.cpu_s - base.cpu_s) / elapsed, 1),
    }


class StatsReporter:
    """Owns the previous snapshot: `report(snapshot)` gives the payload for the interval since the last call."""

    def __init__(self, started: ProcessSnapshot | None = None) -> None:
        self.started = started or ProcessSnapshot.now()
        self._prev: StatsSnapshot | None = None
        self._lock = threading.Lock()  # the main loop and teardown may both report

    def report(self, snapshot: StatsSnapshot) -> dict[str, Any]:
        with self._lock:
            payload = stats_payload(snapshot, self._prev, self.started)
            self._prev = snapshot
        return payload


def _proc_count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return 0
