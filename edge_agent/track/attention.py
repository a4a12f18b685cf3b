"""Attention of one track: smoothed head pose against yaw/pitch limits with hysteresis, glances and their times.

The pose is first median-filtered over the last 3 observations (one wild keypoint frame or failed fit cannot
start or end a glance), then smoothed exponentially with time constant `smoothing_s`. A glance is a looking
spell lasting at least `min_glance_s`, measured from the first to the last looking observation, so a face that
looks during its whole visit has attention_s == dwell_s. A spell ends when the face turns away past the limits
plus the hysteresis, or when the face is not observed for longer than `max_gap_s` (a missed detection or
occlusion longer than that is not counted as looking). An unknown pose counts as turned away.
"""

from __future__ import annotations

import math
from collections import deque

from edge_agent.records import Pose
from edge_agent.track.config import AttentionConfig

_AWAY = Pose(yaw=90.0, pitch=0.0)


class AttentionMeter:
    """Per-track looking state fed with (time, pose) observations in time order."""

    def __init__(self, cfg: AttentionConfig, max_gap_s: float) -> None:
        self._cfg = cfg
        self._max_gap = max_gap_s
        self._last_t: float | None = None
        self._yaw: float | None = None
        self._pitch: float | None = None
        self._recent: deque[tuple[float, float]] = deque(maxlen=3)
        self.looking = False
        self._spell_start = 0.0
        self._spell_last = 0.0
        self._attention = 0.0
        self._glances = 0
        self.first_glance_t: float | None = None

    def observe(self, t: float, pose: Pose | None) -> bool:
        """Add one observation at time `t` (None pose = face seen but pose unknown); returns looking now."""
        if self._last_t is not None and t - self._last_t > self._max_gap:
            self._close()
            self._reset_smoothing()  # do not smooth across a gap
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        if pose is None or not (math.isfinite(pose.yaw) and math.isfinite(pose.pitch)):
            # An unknown pose counts as turned away, through the same filter: one failed fit inside a glance is
            # voted out by the median, a run of them ends the glance.
            pose = _AWAY
        self._smooth(pose, dt)
        now = self._within_limits()
        if now and not self.looking:
            self._spell_start = t
        if now:
            self._spell_last = t
        elif self.looking:
            self._close()
        self.looking = now
        return now

    def _reset_smoothing(self) -> None:
        self._yaw = self._pitch = None
        self._recent.clear()

    def _smooth(self, pose: Pose, dt: float) -> None:
        self._recent.append((pose.yaw, pose.pitch))
        yaw = sorted(y for y, _ in self._recent)[len(self._recent) // 2]
        pitch = sorted(p for _, p in self._recent)[len(self._recent) // 2]
        tau = self._cfg.smoothing_s
        if self._yaw is None or self._pitch is None or tau <= 0:
            self._yaw, self._pitch = yaw, pitch
            return
        alpha = 1.0 - math.exp(-dt / tau)
        self._yaw += alpha * (yaw - self._yaw)
        self._pitch += alpha * (pitch - self._pitch)

    def _within_limits(self) -> bool:
        assert self._yaw is not None and self._pitch is not None
        extra = self._cfg.hysteresis_deg if self.looking else 0.0
        return (
            abs(self._yaw) <= self._cfg.yaw_limit_deg + extra and abs(self._pitch) <= self._cfg.pitch_limit_deg + extra
        )

    def _open_spell(self) -> float:
        return self._spell_last - self._spell_start if self.looking else 0.0

    def _close(self) -> None:
        length = self._open_spell()
        if self.looking and length >= self._cfg.min_glance_s:
            self._glances += 1
            self._attention += length
            if self.first_glance_t is None:
                self.first_glance_t = self._spell_start
        self.looking = False

    def finish(self) -> None:
        """End of the visit: close any open spell."""
        self._close()

    @property
    def attention_s(self) -> float:
        """Looking time of counted glances, including an open spell once it is long enough."""
        spell = self._open_spell()
        return self._attention + (spell if spell >= self._cfg.min_glance_s and self.looking else 0.0)

    @property
    def glances(self) -> int:
        spell = self._open_spell()
        return self._glances + (1 if self.looking and spell >= self._cfg.min_glance_s else 0)

    def first_glance(self) -> float | None:
        """Start time of the first counted glance (including an open one that is long enough)."""
        if self.first_glance_t is not None:
            return self.first_glance_t
        if self.looking and self._open_spell() >= self._cfg.min_glance_s:
            return self._spell_start
        return None
