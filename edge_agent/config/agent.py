"""The `[agent]` section: device identity, state directory, stats interval, threads and logging."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AgentSection(BaseModel):
    """Settings that belong to the whole device rather than to one stage."""

    model_config = ConfigDict(extra="forbid")

    device_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Device id used in MQTT topics (letters, digits, _ . -). Default: a hash of /etc/machine-id, "
        "else the hostname.",
    )
    state_dir: Path | None = Field(
        default=None,
        description="Directory for the outbox and state. Default: $STATE_DIRECTORY (systemd), else "
        "~/.local/state/edge-agent.",
    )
    stats_interval_s: float = Field(default=30.0, gt=0, le=3600, description="Seconds between `stats` messages.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level: debug, info, warning or error."
    )
    watchdog_stall_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="systemd watchdog pings stop when no frame has been processed for this long while a camera is "
        "online, so a wedged pipeline gets restarted.",
    )


def default_state_dir() -> Path:
    """$STATE_DIRECTORY (first entry) under systemd, else the XDG state directory."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "edge-agent"
