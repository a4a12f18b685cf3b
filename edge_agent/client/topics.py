"""The agent's topic table: every channel under `<prefix>/<device_id>/`, its schema and whether it is retained.

This is the one place that maps topics to schemas; the AsyncAPI generator and the subscriber library both read it,
and the payload shapes themselves come only from `edge_agent/schemas/*.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["agent_publishes", "agent_receives"]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One channel. `suffix` uses `{camera_id}` / `{command}` placeholders for the variable topic levels."""

    name: str
    suffix: str
    schema: str | None  # file stem in edge_agent/schemas; None: a free-form request (commands)
    retained: bool
    direction: Direction
    summary: str

    def filter(self) -> str:
        """The suffix as an MQTT filter: each placeholder level becomes `+`."""
        return "/".join("+" if part.startswith("{") else part for part in self.suffix.split("/"))


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "status",
        "status",
        "status",
        True,
        "agent_publishes",
        "Device liveness: online on every (re)connect; offline on a clean stop, or published by the broker as the "
        "agent's Last Will when the device vanishes.",
    ),
    TopicSpec(
        "info",
        "info",
        "info",
        True,
        "agent_publishes",
        "Software, models (name, version, sha256), config hash, cameras and enabled attributes; at start-up.",
    ),
    TopicSpec(
        "stats",
        "stats",
        "stats",
        False,
        "agent_publishes",
        "Every agent.stats_interval_s: rates, inference latencies, outbox counters and drops, memory.",
    ),
    TopicSpec(
        "camera_status",
        "cameras/{camera_id}/status",
        "camera_status",
        True,
        "agent_publishes",
        "A camera became online, stalled or offline.",
    ),
    TopicSpec(
        "tracks",
        "cameras/{camera_id}/tracks",
        "tracks",
        False,
        "agent_publishes",
        "Per visit: new, update and end; the end record carries the aggregated attributes, dwell and attention.",
    ),
    TopicSpec(
        "audience",
        "cameras/{camera_id}/audience",
        "audience",
        False,
        "agent_publishes",
        "Who is present and who is looking now, and the dominant group among lookers; only on change, at most 4 Hz.",
    ),
    TopicSpec(
        "summary",
        "cameras/{camera_id}/summary",
        "summary",
        False,
        "agent_publishes",
        "Every analytics interval: opportunities to see, viewers, passers-by, dwell and attention, groups.",
    ),
    TopicSpec(
        "command",
        "cmd/{command}",
        None,
        False,
        "agent_receives",
        "A remote command (pause, resume, reload, status): a JSON object whose optional `id` is echoed in the "
        "result. Protect it with the broker ACL.",
    ),
    TopicSpec(
        "command_result",
        "cmd/{command}/result",
        "cmd_result",
        False,
        "agent_publishes",
        "The agent's answer to a command.",
    ),
)

BY_SCHEMA: dict[str, TopicSpec] = {t.schema: t for t in TOPICS if t.schema}


def match(suffix: str) -> TopicSpec | None:
    """The spec whose pattern matches a topic suffix (the part after `<prefix>/<device_id>/`), or None."""
    parts = suffix.split("/")
    for spec in TOPICS:
        pattern = spec.suffix.split("/")
        if len(pattern) == len(parts) and all(p.startswith("{") or p == q for p, q in zip(pattern, parts, strict=True)):
            return spec
    return None
