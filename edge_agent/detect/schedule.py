"""Detection scheduling: decide per frame between a full-frame scan, region searches around known faces, or nothing.

Pure logic, no model: `plan(t, motion, hints)` says what to run on the frame at time t, and `report(...)` tells
it what the region searches found. The rules, in order:
1. `every_frame` mode, the first frame, a pending recovery (a region search lost a track) or a lighting change:
   a full scan;
2. motion where no track is (outside every track's zone: its face widened, and everything below it, since a
   body hangs under a face): a full scan at once, at most one per `motion_scan_interval_s`;
3. while the scene is active (something tracked, or motion within `motion_hold_s`): a full scan every
   `full_scan_every` frames and never later than `max_latency_s` after the previous one, so a face that enters
   without triggering rule 2 is still found within the latency bound;
4. on a still scene with nobody tracked: a full scan every `idle_scan_s` only; the other frames are skipped;
5. otherwise each live track whose last look is `region_interval_s` old gets a region search (a face new since
   the last full scan gets one on the very next frame, so its track is confirmed as soon as with every frame).
A track is live when its latest look found it: the region search that misses it stops following it, and the next
full scan (requested at once, rule 1) finds it again or lets it end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.detect.motion import Motion
from edge_agent.detect.schedule_config import ScheduleConfig
from edge_agent.records import Box, TrackHint

_EPS = 1e-6  # frame times are floats: 5/30 - 2/30 must count as 0.1 s
FULL_REASONS = ("every_frame", "first", "recovery", "lighting", "motion", "cadence", "idle")


@dataclass(frozen=True, slots=True)
class Plan:
    """What to run on one frame: a full scan (`full`), region searches (`regions`), or nothing (both empty)."""

    full: bool
    reason: str  # one of FULL_REASONS for a full scan; "regions", "still" or "between" otherwise
    regions: tuple[TrackHint, ...] = ()


def track_zone(box: Box) -> Box:
    """Where a tracked person's own motion is expected: the face widened by one width each side, and down."""
    w = box.width
    return Box(box.x1 - w, box.y1 - 0.5 * w, box.x2 + w, math.inf)


class DetectionScheduler:
    """Per-camera scheduling state (times are the frames' monotonic seconds)."""

    def __init__(self, cfg: ScheduleConfig) -> None:
        self._cfg = cfg
        self._last_full = -math.inf
        self._last_motion_scan = -math.inf
        self._last_motion = -math.inf
        self._since_full = 0  # analysed frames since the last full scan
        self._last_look: dict[str, float] = {}  # track id -> time of its latest region search
        self._recover = False
        self._period = 0.0  # smoothed frame period, s
        self._prev_t: float | None = None

    @property
    def every_frame(self) -> bool:
        return self._cfg.mode == "every_frame"

    def reset(self) -> None:
        """Start over (paused, source reopened): the next frame gets a full scan."""
        self._last_full = -math.inf
        self._last_look.clear()
        self._recover = False
        self._prev_t = None

    def plan(self, t: float, motion: Motion | None, hints: Sequence[TrackHint]) -> Plan:
        """What to run on the frame at `t`; `motion` None means no gate (the scene always counts as moving)."""
        self._tick(t)
        reason = self._full_reason(t, motion, hints)
        if reason is not None:
            self._last_full = t
            self._since_full = 0
            self._recover = False
            if reason == "motion":
                self._last_motion_scan = t
            return Plan(True, reason)
        self._since_full += 1
        regions = tuple(h for h in self._live(hints) if self._due(h, t))
        for h in regions:
            self._last_look[h.track_id] = t
        if regions:
            return Plan(False, "regions", regions)
        return Plan(False, "still" if not hints else "between")

    def report(self, plan: Plan, found: set[str]) -> int:
        """What the region searches of `plan` found (track ids); a miss requests a full scan next. Returns misses."""
        missed = sum(1 for h in plan.regions if h.track_id not in found)
        if missed:
            self._recover = True
        return missed

    def _tick(self, t: float) -> None:
        if self._prev_t is not None and t > self._prev_t:
            dt = t - self._prev_t
            self._period = dt if self._period == 0.0 else 0.9 * self._period + 0.1 * dt
        self._prev_t = t

    def _full_reason(self, t: float, motion: Motion | None, hints: Sequence[TrackHint]) -> str | None:
        cfg = self._cfg
        if self.every_frame:
            return "every_frame"
        if self._last_full == -math.inf:
            return "first"
        if self._recover:
            return "recovery"
        if motion is not None and motion.global_change:
            return "lighting"
        moving = motion is None or motion.moving
        if moving:
            self._last_motion = t
        if (
            motion is not None
            and motion.outside([track_zone(h.box) for h in hints])
            and t - self._last_motion_scan + _EPS >= cfg.motion_scan_interval_s
        ):
            return "motion"
        active = bool(hints) or t - self._last_motion <= cfg.motion_hold_s
        since = t - self._last_full
        if active:
            # One frame early rather than one late: the face may have entered just after the previous scan.
            if self._since_full + 1 >= cfg.full_scan_every or since + self._period + _EPS >= cfg.max_latency_s:
                return "cadence"
            return None
        if since + _EPS >= cfg.idle_scan_s:
            return "idle"
        return None

    def _live(self, hints: Sequence[TrackHint]) -> list[TrackHint]:
        """Tracks their own latest region search found (or never searched yet).

        A full scan that misses a known face does not drop it: the full scan is the less sensitive of the two
        for small faces (a 50 px face is ~17 px at its input), so the region search gets the next word.
        """
        alive = {h.track_id for h in hints}
        for key in [k for k in self._last_look if k not in alive]:
            del self._last_look[key]  # ended tracks
        return [h for h in hints if h.last_seen >= self._last_look.get(h.track_id, -math.inf)]

    def _due(self, hint: TrackHint, t: float) -> bool:
        """A face new since the last full scan is looked at again at once (the tracker confirms a track on its
        second sighting, as it would with every frame scanned); a known one every `region_interval_s`."""
        if hint.track_id not in self._last_look or hint.last_seen < self._last_full:
            return True  # new since the last full scan, or missed by it: look again at once
        since = t - self._last_look_of(hint) + _EPS
        return since >= self._cfg.region_interval_s or hint.speed * since >= self._cfg.region_max_shift

    def _last_look_of(self, hint: TrackHint) -> float:
        return max(self._last_full, self._last_look.get(hint.track_id, -math.inf))
