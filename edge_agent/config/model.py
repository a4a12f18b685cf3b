"""AgentConfig: the whole config.toml, composed from each subsystem's section model (unknown keys rejected)."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge_agent.analytics.config import AnalyticsConfig
from edge_agent.capture.config import CameraConfig
from edge_agent.classify.config import AttributesConfig
from edge_agent.config.agent import AgentSection
from edge_agent.detect.config import DetectorConfig
from edge_agent.integrations.config import IntegrationsConfig, MetricsConfig
from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.track.config import TrackerConfig

log = logging.getLogger(__name__)


class AgentConfig(BaseModel):
    """Everything in config.toml. Every section is optional; an empty file is a valid config."""

    model_config = ConfigDict(extra="forbid")

    agent: AgentSection = Field(default_factory=AgentSection, description="Device-wide settings.")
    cameras: list[CameraConfig] = Field(
        default_factory=list, description="One [[cameras]] table per camera; `--source` overrides the first."
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="Face detector.")
    attributes: AttributesConfig = Field(
        default_factory=AttributesConfig, description="Attribute model and which heads are computed."
    )
    tracking: TrackerConfig = Field(default_factory=TrackerConfig, description="Tracker.")
    analytics: AnalyticsConfig = Field(
        default_factory=AnalyticsConfig, description="Attention, dwell, summaries and live audience."
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT broker connection.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Store-and-forward outbox.")
    integrations: IntegrationsConfig = Field(
        default_factory=IntegrationsConfig, description="Opt-in integrations (Home Assistant discovery)."
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Opt-in Prometheus endpoint.")

    @field_validator("cameras")
    @classmethod
    def _unique_camera_ids(cls, cameras: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for cam in cameras:
            cid = str(getattr(cam, "id", ""))
            if cid in seen:
                raise ValueError(f"camera id {cid!r} is used twice; each [[cameras]] needs its own id")
            seen.add(cid)
        return cameras


def section_models() -> dict[str, Any]:
    """Section name → model class, for the generated config reference."""
    return {name: f.annotation for name, f in AgentConfig.model_fields.items()}
