"""Config section `[detector.schedule]` (and its `[detector.schedule.motion]`): when to scan the whole frame."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MotionConfig(BaseModel):
    """The change detector that lets a still, empty scene cost almost nothing."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True,
        description="Gate detection on motion: a still frame with nobody tracked is not scanned (only the idle "
        "scan looks). Off: full scans keep their cadence on still scenes too.",
    )
    width: int = Field(
        default=80,
        ge=16,
        le=640,
        description="Width in samples of the copy compared: every (frame width / this)-th pixel of the green "
        "channel (~80x60).",
    )
    cell: int = Field(
        default=5, ge=1, le=32, description="Cell side, in samples of that copy, that changes are averaged over."
    )
    threshold: float = Field(
        default=10.0,
        gt=0.0,
        le=255.0,
        description="Mean grey-level difference (0-255, after the global gain is divided out) that marks a cell "
        "changed.",
    )
    min_cells: int = Field(default=2, ge=1, le=1000, description="Changed cells needed to call a frame moving.")
    global_fraction: float = Field(
        default=0.6,
        gt=0.0,
        le=1.0,
        description="A change over at least this fraction of the cells is a lighting or exposure change, not "
        "motion: the background is rebased and one full scan is made.",
    )
    settle_s: float = Field(
        default=0.0,
        ge=0.0,
        le=5.0,
        description="0 = off. A cell that differs from the background but not from the picture this many seconds "
        "ago has stopped changing (a lighting step with clipping, something put down): it joins the background at "
        "once and is not motion. Cheaper on scenes with lighting steps, but off by default: it cost 3 points of "
        "track recall on the busy walk-in stream (docs/detection.md).",
    )
    background_s: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="Time constant of the running background, s: something that stops moving stops counting as "
        "motion after about twice this.",
    )


class ScheduleConfig(BaseModel):
    """Track-guided detection: full-frame scans at a cadence and on motion, short region searches in between."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["guided", "every_frame"] = Field(
        default="guided",
        description="guided: full scans at the cadence below, known faces re-found on a small square around each "
        "track. every_frame: a full scan on every frame (the behaviour before scheduling, for comparison).",
    )
    full_scan_every: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="While anything is tracked or moving, a full scan at least every this many analysed frames.",
    )
    max_latency_s: float = Field(
        default=0.3,
        gt=0.0,
        le=10.0,
        description="Bound on the time from a face entering to its first detection: while anything is tracked or "
        "moving, full scans are never further apart than this; motion where no track is triggers one at once.",
    )
    motion_scan_interval_s: float = Field(
        default=0.1,
        ge=0.0,
        le=10.0,
        description="At most one motion-triggered full scan per this many seconds (moving things that are not "
        "faces, e.g. a body seen from behind, cannot force a scan on every frame). Keep it below max_latency_s.",
    )
    idle_scan_s: float = Field(
        default=2.0,
        gt=0.0,
        le=600.0,
        description="On a still scene with nobody tracked, a full scan this often anyway (a safety net for "
        "someone who appears without visible motion).",
    )
    motion_hold_s: float = Field(
        default=1.0,
        ge=0.0,
        le=60.0,
        description="The scene counts as active (cadence scans) for this long after the last motion.",
    )
    region_interval_s: float = Field(
        default=0.1,
        ge=0.0,
        le=5.0,
        description="Re-find each known face at most this often (0: on every frame). The tracker bridges the "
        "frames in between.",
    )
    region_max_shift: float = Field(
        default=0.25,
        gt=0.0,
        le=5.0,
        description="A face moving fast is looked at sooner: as soon as it may have moved this many face widths "
        "since its last look (at its measured speed), whatever region_interval_s says.",
    )
    region_input: int = Field(
        default=128,
        ge=64,
        le=256,
        description="Input side in px of a region search (the short-range graph's native 128 by default).",
    )
    region_context: float = Field(
        default=2.0,
        ge=1.2,
        le=4.0,
        description="Smallest side of the searched square, in face widths, around the track's predicted box. The "
        "square is also at least region_input / the full scan's input scale wide (366 px on 640x480 at input_width "
        "224), so a face is re-found at the scale the full scan sees it and gets the same box; faces narrower than "
        "refine_below_px are re-found with the second look's geometry (refine_context, refine_input) instead.",
    )
    region_threshold: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="Score, 0-1, a face re-found by a region search must reach (a face was there a moment ago, so "
        "less evidence is needed than for a new face).",
    )
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion gating.")

    @model_validator(mode="after")
    def _check(self) -> ScheduleConfig:
        if self.region_input % 16:
            raise ValueError(f"region_input must be a multiple of 16, got {self.region_input}")
        return self
