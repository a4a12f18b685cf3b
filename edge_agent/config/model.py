"""AgentConfig: the whole config.toml, composed from each subsystem's section model (unknown keys rejected)."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from edge_agent.config.agent import AgentSection

log = logging.getLogger(__name__)


def _section(module: str, name: str) -> type[BaseModel]:
    """Import a subsystem's section model; a part that has not landed yet gets an empty strict placeholder."""
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        log.debug("config section %s.%s not available; using an empty placeholder", module, name)
        return create_model(name, __config__=ConfigDict(extra="forbid"))


CameraConfig = _section("edge_agent.capture.config", "CameraConfig")
DetectorConfig = _section("edge_agent.detect.config", "DetectorConfig")
AttributesConfig = _section("edge_agent.classify.config", "AttributesConfig")
TrackerConfig = _section("edge_agent.track.config", "TrackerConfig")
AnalyticsConfig = _section("edge_agent.analytics.config", "AnalyticsConfig")
MqttConfig = _section("edge_agent.publish.config", "MqttConfig")
OutboxConfig = _section("edge_agent.publish.config", "OutboxConfig")


class AgentConfig(BaseModel):
    """Everything in config.toml. Every section is optional; an empty file is a valid config."""

    model_config = ConfigDict(extra="forbid")

    agent: AgentSection = Field(default_factory=AgentSection, description="Device-wide settings.")
    cameras: list[CameraConfig] = Field(  # type: ignore[valid-type]
        default_factory=list, description="One [[cameras]] table per camera; `--source` overrides the first."
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="Face detector.")  # type: ignore[valid-type]
    attributes: AttributesConfig = Field(  # type: ignore[valid-type]
        default_factory=AttributesConfig, description="Attribute model and which heads are computed."
    )
    tracking: TrackerConfig = Field(default_factory=TrackerConfig, description="Tracker.")  # type: ignore[valid-type]
    analytics: AnalyticsConfig = Field(  # type: ignore[valid-type]
        default_factory=AnalyticsConfig, description="Attention, dwell, summaries and live audience."
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT broker connection.")  # type: ignore[valid-type]
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Store-and-forward outbox.")  # type: ignore[valid-type]

    @field_validator("cameras")
    @classmethod
    def _unique_camera_ids(cls, cameras: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for cam in cameras:
            cid = getattr(cam, "id", None)
            if cid in seen:
                raise ValueError(f"camera id {cid!r} is used twice; each [[cameras]] needs its own id")
            seen.add(cid)
        return cameras


def section_models() -> dict[str, Any]:
    """Section name → model class, for the generated config reference."""
    return {name: f.annotation for name, f in AgentConfig.model_fields.items()}
