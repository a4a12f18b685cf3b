"""Config section `[analytics]`: attention (head pose limits), visits, interval summaries and the live audience."""

from __future__ import annotations

from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Attention and visit rules are the tracker's (per-track state); the [analytics] section only groups their keys.
from edge_agent.track.config import AttentionConfig, VisitConfig

__all__ = ["AnalyticsConfig", "AttentionConfig", "AudienceConfig", "SummaryConfig", "VisitConfig"]


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
