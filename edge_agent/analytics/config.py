"""Config section `[analytics]`: attention (head pose limits), visits, interval summaries and the live audience."""

from __future__ import annotations

from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, field_validator


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


class SummaryConfig(BaseModel):
    """Interval summaries on `cameras/<camera_id>/summary`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Publish interval summaries.")
    interval_s: float = Field(
        default=60.0,
        ge=1.0,
        le=86400.0,
        description="Summary period; intervals are aligned to multiples of it since the epoch (UTC).",
    )
    dwell_buckets_s: list[float] = Field(
        default_factory=lambda: [5.0, 15.0, 30.0, 60.0],
        description="Upper edges of the dwell-time buckets; a last open bucket is added (default 0-5 ... 60+).",
    )

    @field_validator("dwell_buckets_s")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if not v or any(b <= 0 for b in v) or any(b2 <= b1 for b1, b2 in pairwise(v)):
            raise ValueError("dwell_buckets_s must be a non-empty list of increasing positive seconds")
        return v


class AudienceConfig(BaseModel):
    """Live audience on `cameras/<camera_id>/audience`, for switching content when someone looks."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Publish the live audience.")
    max_rate_hz: float = Field(
        default=4.0, gt=0.0, le=30.0, description="At most this many audience messages per second."
    )
    heartbeat_s: float = Field(
        default=0.0, ge=0.0, description="Re-send an unchanged audience after this many seconds (0 = only on change)."
    )


class AnalyticsConfig(BaseModel):
    """Attention, dwell and visits, interval summaries and the live audience."""

    model_config = ConfigDict(extra="forbid")

    attention: AttentionConfig = Field(default_factory=AttentionConfig, description="Head-pose attention.")
    visits: VisitConfig = Field(default_factory=VisitConfig, description="Viewers versus passers-by.")
    summary: SummaryConfig = Field(default_factory=SummaryConfig, description="Interval summaries.")
    audience: AudienceConfig = Field(default_factory=AudienceConfig, description="Live audience.")
