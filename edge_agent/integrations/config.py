"""Config sections of the opt-in integrations: `[integrations.home_assistant]` and `[metrics]` (Prometheus)."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NODE_ID = r"^[A-Za-z0-9_-]+$"


class HomeAssistantConfig(BaseModel):
    """Home Assistant MQTT discovery: retained entity configs that point at the agent's own topics."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="Publish retained discovery configs at start-up, so Home Assistant shows the sign's entities "
        "(people present and looking, viewers and passers-by, average dwell, camera status). "
        "`edge-agent decommission` removes them.",
    )
    discovery_prefix: str = Field(
        default="homeassistant",
        pattern=r"^[^#+\x00]+$",
        description="Home Assistant's discovery prefix (its MQTT integration setting of the same name).",
    )
    node_id: str | None = Field(
        default=None,
        pattern=_NODE_ID,
        description="Discovery node id (letters, digits, _ and -). Default: edge_agent_<device_id>.",
    )
    summary_expiry_intervals: float = Field(
        default=3.0,
        ge=0,
        description="Interval sensors (viewers, passers-by, dwell) become unavailable after this many analytics "
        "intervals without a summary; 0 keeps the last value forever.",
    )


class IntegrationsConfig(BaseModel):
    """Opt-in integrations with other systems."""

    model_config = ConfigDict(extra="forbid")

    home_assistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig, description="Home Assistant MQTT discovery."
    )


class MetricsConfig(BaseModel):
    """The Prometheus endpoint (`/metrics`). Off unless `listen` is set."""

    model_config = ConfigDict(extra="forbid")

    listen: str | None = Field(
        default=None,
        description='host:port to serve Prometheus metrics on, e.g. "127.0.0.1:9464" (IPv6: "[::1]:9464"). '
        "Unset: no endpoint. The endpoint has no authentication: keep it on loopback and scrape through an "
        "SSH tunnel, a reverse proxy or a local agent (node_exporter textfile, Grafana Alloy, vmagent).",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        return None if self.listen is None else split_listen(self.listen)


def split_listen(value: str) -> tuple[str, int]:
    """`"127.0.0.1:9464"` / `"[::1]:9464"` / `"localhost:9464"` → (host, port); ValueError with the fix."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", value.strip())
    if m is None:
        raise ValueError('expected "host:port", e.g. "127.0.0.1:9464" or "[::1]:9464"')
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if m.group(1):
        ipaddress.IPv6Address(host)  # raises ValueError for a malformed address
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is out of range 1-65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (the safe default for an unauthenticated endpoint)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
