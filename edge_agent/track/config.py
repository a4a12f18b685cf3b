"""Config section `[tracking]`: face association across frames, visit gaps, and when an attribute is reported."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class HeadConfidence(BaseModel):
    """Minimum aggregated top-class probability per head; below it the head reports `unknown`."""

    model_config = ConfigDict(extra="forbid")

    age: float = Field(
        default=0.3, ge=0.0, le=1.0, description="Age group (9 classes, so a lower bar than binary heads)."
    )
    gender: float = Field(default=0.6, ge=0.0, le=1.0, description="Gender.")
    race: float = Field(default=0.5, ge=0.0, le=1.0, description="Race (only used when the race head is enabled).")

    def for_head(self, head: str) -> float:
        """Threshold of `head`, 0 for a head this model does not know."""
        return float(getattr(self, head, 0.0))


class SamplingConfig(BaseModel):
    """When a tracked face is classified: a few good frames per visit instead of every frame."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["per_visit", "every_frame"] = Field(
        default="per_visit",
        description="per_visit: classify a track's face only on frames worth it (rate, quality, until confident). "
        "every_frame: every face at least `min_face_px` wide on every analysed frame (for comparison).",
    )
    max_rate_hz: float = Field(
        default=4.0, gt=0.0, le=100.0, description="At most this many classifications per second per track."
    )
    max_per_frame: int = Field(
        default=2,
        ge=1,
        le=100,
        description="At most this many classifications per analysed frame; the best-quality faces go first.",
    )
    min_samples: int = Field(
        default=4, ge=1, le=100, description="Classifications a visit needs before it may stop as confident."
    )
    max_samples: int = Field(default=30, ge=1, le=1000, description="A visit is never classified more often than this.")
    stop_margin: float = Field(
        default=0.15,
        ge=0.0,
        le=1.0,
        description="A visit stops being classified once every decision its labels rest on is at least this far "
        "(in probability) from flipping: top class vs runner-up and vs `min_confidence` per head, and the "
        "under-age mass vs `minor_probability`.",
    )
    quality_ratio: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="A frame is worth classifying when its face quality (score x size x frontality x sharpness) "
        "is at least this fraction of the best quality the track has shown.",
    )
    max_wait_s: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="After this long without a classification, the next face big enough is taken whatever its quality.",
    )
    sharp_ref: float = Field(
        default=300.0,
        gt=0.0,
        description="Laplacian variance of the 32x32 grey face at which sharpness is 0.5: faces blurrier than this "
        "rank lower for classification (sharp faces measure 600-2800).",
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> SamplingConfig:
        if self.min_samples > self.max_samples:
            raise ValueError(f"min_samples ({self.min_samples}) must be <= max_samples ({self.max_samples})")
        return self


class TrackerConfig(BaseModel):
    """How faces become tracks (visits) and when a track's aggregated attributes are reported."""

    model_config = ConfigDict(extra="forbid")

    iou_threshold: float = Field(
        default=0.3, gt=0.0, le=1.0, description="Minimum box IoU to continue a track from one frame to the next."
    )
    max_missed_s: float = Field(
        default=0.5,
        gt=0.0,
        le=10.0,
        description="A track missed for up to this long is still matched by IoU and still counts as present.",
    )
    visit_gap_s: float = Field(
        default=2.0,
        gt=0.0,
        le=60.0,
        description="A track that vanishes for less than this and reappears nearby is the same visit; "
        "after it the visit ends. Must be >= max_missed_s.",
    )
    reconnect_distance: float = Field(
        default=1.5,
        gt=0.0,
        le=10.0,
        description="'Nearby' for reconnecting a lost track: centre distance in face widths.",
    )
    confirm_frames: int = Field(
        default=2,
        ge=1,
        le=30,
        description="Detections needed before a track is published; shorter blips are dropped as noise (counted).",
    )
    update_interval_s: float = Field(
        default=1.0,
        ge=0.0,
        le=60.0,
        description="At most one `update` record per track per this many seconds (0 = no update records).",
    )
    min_face_px: float = Field(
        default=40.0,
        ge=0.0,
        description="Faces narrower than this (pixels) do not contribute to attributes; a track with none "
        "reports `unknown`.",
    )
    full_weight_face_px: float = Field(
        default=100.0,
        gt=0.0,
        description="Face width at which a sample gets full weight in the track's average (smaller faces weigh less).",
    )
    min_confidence: HeadConfidence = Field(
        default_factory=HeadConfidence, description="Per-head minimum confidence, below which the head is `unknown`."
    )
    min_age_years: int = Field(
        default=18,
        ge=0,
        le=100,
        description="Children gating: a visit whose age groups below this age carry at least `minor_probability` "
        "is reported only as a count, with no attributes. An age group counts as below when its lower bound is "
        "below this age (so 18 gates the whole 10-19 group). 0 disables. Needs the age head.",
    )
    minor_probability: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Probability mass on under-age groups that makes a visit a minor."
    )

    sampling: SamplingConfig = Field(
        default_factory=SamplingConfig,
        description="Which frames of a visit are classified (docs/analytics.md).",
    )

    @model_validator(mode="after")
    def _gap_covers_missed(self) -> TrackerConfig:
        if self.visit_gap_s < self.max_missed_s:
            raise ValueError(f"visit_gap_s ({self.visit_gap_s}) must be >= max_missed_s ({self.max_missed_s})")
        return self


class AttentionConfig(BaseModel):
    """When a face counts as looking at the screen (camera mounted at the screen)."""

    model_config = ConfigDict(extra="forbid")

    yaw_limit_deg: float = Field(default=25.0, gt=0.0, le=90.0, description="Looking while |yaw| stays within this.")
    pitch_limit_deg: float = Field(
        default=20.0, gt=0.0, le=90.0, description="Looking while |pitch| stays within this."
    )
    hysteresis_deg: float = Field(
        default=5.0,
        ge=0.0,
        le=30.0,
        description="Once looking, the face must turn this much past a limit to stop looking (no flicker).",
    )
    smoothing_s: float = Field(
        default=0.15, ge=0.0, le=5.0, description="Time constant of the yaw/pitch smoothing (exponential); 0 = none."
    )
    min_glance_s: float = Field(
        default=0.3,
        ge=0.0,
        le=10.0,
        description="A looking spell shorter than this is not a glance and adds no attention.",
    )


class VisitConfig(BaseModel):
    """Which visits count as viewers; everything else is a passer-by."""

    model_config = ConfigDict(extra="forbid")

    min_dwell_s: float = Field(
        default=1.0, ge=0.0, description="Visits shorter than this are passers-by even if they glanced."
    )
    min_samples: int = Field(default=3, ge=1, description="Visits with fewer face detections than this are passers-by.")
