"""Camera status record (online / stalled / offline, with since and reason) and the capture counters."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal

State = Literal["online", "stalled", "offline"]


@dataclass(frozen=True, slots=True)
class CaptureStatus:
    """What `cameras/<id>/status` says: the state, since when (wall clock, epoch seconds) and a one-line reason.

    Reasons: offline → "starting", "eof" (a finite file/folder/demo finished), "closed"; stalled → "no frame for Ns",
    "read failed", "open failed: …"; online → "".
    """

    state: State
    since: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CaptureSnapshot:
    """The capture counters at one instant, for the stats reporter (totals since start; fps over the last 5 s)."""

    state: State
    captured: int
    dropped: int  # dropped_rate_cap + dropped_stale
    bad: int  # frames the capture skipped as unusable (all reasons)
    reopens: int
    capture_fps: float


@dataclass
class CaptureCounters:
    """Counters updated by the capture thread and read by stats(); guarded by the worker's lock."""

    captured: int = 0  # frames the source produced (grabbed)
    decoded: int = 0  # frames decoded and put in the slot
    delivered: int = 0  # frames handed to the consumer by latest()
    dropped_rate_cap: int = 0  # grabbed but never decoded, because of the max_fps cap
    dropped_stale: int = 0  # decoded but replaced by a newer frame before the consumer took it
    read_failures: int = 0
    open_failures: int = 0
    reopens: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # bad frames by reason
    normalised: Counter[str] = field(default_factory=Counter)  # frames fixed up by reason (grey, bgra, downscaled…)
    _grab_times: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    _deliver_times: deque[float] = field(default_factory=lambda: deque(maxlen=64))

    def note_grab(self, mono: float) -> None:
        self.captured += 1
        self._grab_times.append(mono)

    def note_delivery(self, mono: float) -> None:
        self.delivered += 1
        self._deliver_times.append(mono)

    def as_dict(self, now: float) -> dict[str, object]:
        return {
            "captured": self.captured,
            "decoded": self.decoded,
            "delivered": self.delivered,
            "dropped": self.dropped_rate_cap + self.dropped_stale,
            "dropped_rate_cap": self.dropped_rate_cap,
            "dropped_stale": self.dropped_stale,
            "read_failures": self.read_failures,
            "open_failures": self.open_failures,
            "reopens": self.reopens,
            "skipped": dict(self.skipped),
            "normalised": dict(self.normalised),
            "capture_fps": round(_rate(self._grab_times, now), 2),
            "delivered_fps": round(_rate(self._deliver_times, now), 2),
        }

    def snapshot(self, state: State, now: float) -> CaptureSnapshot:
        return CaptureSnapshot(
            state=state,
            captured=self.captured,
            dropped=self.dropped_rate_cap + self.dropped_stale,
            bad=sum(self.skipped.values()),
            reopens=self.reopens,
            capture_fps=round(_rate(self._grab_times, now), 2),
        )


def _rate(times: deque[float], now: float, window: float = 5.0) -> float:
    """Events per second over the last `window` seconds (0 if fewer than two events)."""
    recent = [t for t in times if now - t <= window]
    if len(recent) < 2:
        return 0.0
    span = max(recent[-1] - recent[0], 1e-6)
    return (len(recent) - 1) / span


class StatusBox:
    """The current CaptureStatus plus a lock; `set` returns the new status only when the state changed."""

    def __init__(self, initial: CaptureStatus) -> None:
        self._status = initial
        self._lock = threading.Lock()

    def get(self) -> CaptureStatus:
        with self._lock:
            return self._status

    def set(self, state: State, reason: str, now: float) -> CaptureStatus | None:
        """Change state (returns the new status), or only refresh the reason if the state is unchanged (None)."""
        with self._lock:
            if self._status.state == state:
                if reason and reason != self._status.reason:
                    self._status = CaptureStatus(state, self._status.since, reason)
                return None
            self._status = CaptureStatus(state, now, reason)
            return self._status
