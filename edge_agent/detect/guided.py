"""Track-guided detection for one camera: the motion gate, the scheduler, the full-frame detector and region search.

`GuidedDetector.detect(image, t, hints)` returns a `Look`: the faces found on this frame and how they were
looked for. A frame the scheduler skips (a still scene, or a frame between two region searches) returns no
faces with `ran=False`; the tracker then bridges it from its memory.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_agent.detect.base import FaceDetector, check_image
from edge_agent.detect.motion import MotionGate
from edge_agent.detect.region import RegionFinder
from edge_agent.detect.schedule import DetectionScheduler, Plan
from edge_agent.detect.schedule_config import ScheduleConfig
from edge_agent.records import Detection, TrackHint

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Look:
    """The outcome of one frame's detection: faces found and the plan that found them."""

    detections: list[Detection] = field(compare=False)
    plan: Plan

    @property
    def ran(self) -> bool:
        """A detector ran on this frame (a full scan or at least one region search)."""
        return self.plan.full or bool(self.plan.regions)


@dataclass(frozen=True, slots=True)
class ScheduleStats:
    """Counters since start: full scans by reason, region searches and misses, frames with no detection run."""

    frames: int
    full_scans: int
    full_by_reason: dict[str, int]
    region_searches: int
    region_misses: int
    still_frames: int  # skipped: a still scene with nobody tracked
    between_frames: int  # skipped: tracks present, none due for a region search
    motion_frames: int
    lighting_changes: int


class GuidedDetector:
    """One per camera (scheduling state is per scene); the interpreters of `full` and `region` may be shared."""

    def __init__(self, cfg: ScheduleConfig, full: FaceDetector, region: RegionFinder | None) -> None:
        if cfg.mode == "guided" and region is None:
            raise ValueError("guided detection needs a RegionFinder")
        self.full = full
        self.region = region
        self._scheduler = DetectionScheduler(cfg)
        self._gate = MotionGate(cfg.motion) if cfg.mode == "guided" and cfg.motion.enabled else None
        self._counts: Counter[str] = Counter()

    def reset(self) -> None:
        """Forget the scene (pause, reload): the next frame seeds the background and gets a full scan."""
        self._scheduler.reset()
        if self._gate is not None:
            self._gate.reset()

    def detect(self, image: np.ndarray, t: float, hints: Sequence[TrackHint]) -> Look:
        """Faces on the frame at monotonic time `t`, given the tracks' predicted boxes. Raises DetectError."""
        image = check_image(image)
        motion = self._gate.update(image, t) if self._gate is not None else None
        plan = self._scheduler.plan(t, motion, hints)
        self._counts["frames"] += 1
        if plan.full:
            self._counts["full"] += 1
            self._counts["full:" + plan.reason] += 1
            return Look(self.full.detect(image), plan)
        if plan.regions:
            assert self.region is not None  # guided mode always has one (checked in __init__)
            dets, found = self.region.search(image, plan.regions)
            self._counts["regions"] += len(plan.regions)
            self._counts["region_misses"] += self._scheduler.report(plan, found)
            return Look(dets, plan)
        self._counts[plan.reason] += 1
        return Look([], plan)

    def stats(self) -> ScheduleStats:
        c = self._counts
        gate = self._gate
        return ScheduleStats(
            frames=c["frames"],
            full_scans=c["full"],
            full_by_reason={k[5:]: v for k, v in sorted(c.items()) if k.startswith("full:")},
            region_searches=c["regions"],
            region_misses=c["region_misses"],
            still_frames=c["still"],
            between_frames=c["between"],
            motion_frames=gate.moving_frames if gate is not None else 0,
            lighting_changes=gate.global_changes if gate is not None else 0,
        )
