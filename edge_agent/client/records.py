"""Typed, frozen records for every payload the agent publishes, parsed from schema-validated JSON.

Each record keeps the envelope in `meta` and the full validated document in `raw` (read-only), so a field the
record does not lift into an attribute is still one lookup away, and a newer minor schema never breaks parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from edge_agent.client.validation import validate
from edge_agent.publish.schemas import SchemaError


class ParseError(ValueError):
    """A message that is not JSON, fails its schema, or does not match its topic; one-line reason."""


def parse_ts(text: str) -> datetime:
    """The envelope's `...T..:..:..mmmZ` as an aware UTC datetime."""
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Meta:
    """The envelope of one message, plus how it arrived."""

    schema: str
    msg_id: str
    seq: int | None  # None on `status`, which is outside the sequence
    ts: datetime
    device_id: str
    camera_id: str | None
    epoch: int | None  # the sequence `seq` belongs to; a larger one starts after the device's outbox was reset
    buffered: bool  # replayed from the device's outbox after an outage
    topic: str
    retained: bool  # delivered from the broker's retained store (state as of before we subscribed)

    @property
    def schema_name(self) -> str:
        return self.schema.split("/")[1]


@dataclass(frozen=True, slots=True)
class Status:
    """`status`: the device's own online/offline state. `reason="connection_lost"` is its Last Will."""

    meta: Meta
    raw: Mapping[str, Any]
    state: str
    reason: str | None

    @property
    def is_last_will(self) -> bool:
        return self.state == "offline" and self.reason == "connection_lost"


@dataclass(frozen=True, slots=True)
class Info:
    """`info`: software, models, config hash, cameras and enabled attribute heads."""

    meta: Meta
    raw: Mapping[str, Any]
    software_version: str | None
    models: Mapping[str, Any]
    config_sha256: str | None
    cameras: tuple[str, ...]
    attributes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Stats:
    """`stats`: rates, latencies and the outbox counters, including what the device had to drop."""

    meta: Meta
    raw: Mapping[str, Any]
    uptime_s: float | None
    connected: bool | None
    queue_depth: int | None
    dropped: Mapping[str, int]  # reason → count, as reported by the device


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """`cameras/<id>/status`: online, stalled or offline."""

    meta: Meta
    raw: Mapping[str, Any]
    state: str
    since: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """`cameras/<id>/tracks`: one visit's new / update / end. `labels` is head → label for the enabled heads."""

    meta: Meta
    raw: Mapping[str, Any]
    event: str
    track_id: str
    dwell_s: float | None
    attention_s: float | None
    viewer: bool | None
    minor: bool
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Audience:
    """`cameras/<id>/audience`: who is present and looking now; `dominant` is head → label among lookers."""

    meta: Meta
    raw: Mapping[str, Any]
    count: int
    looking_count: int
    minors: int
    looking: tuple[str, ...]
    dominant: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class Summary:
    """`cameras/<id>/summary`: one interval; `groups[head][label]` is (viewers, passers_by)."""

    meta: Meta
    raw: Mapping[str, Any]
    interval_start: datetime
    interval_end: datetime
    interval_s: float
    partial: bool
    opportunities_to_see: int
    viewers: int
    passers_by: int
    dwell_avg_s: float
    attention_avg_s: float
    groups: Mapping[str, Mapping[str, tuple[int, int]]]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """`cmd/<name>/result`: the device's answer to a command."""

    meta: Meta
    raw: Mapping[str, Any]
    command: str
    request_id: str | None
    ok: bool
    result: Mapping[str, Any] | None
    error: str | None


Record = Status | Info | Stats | CameraStatus | TrackEvent | Audience | Summary | CommandResult
HEADS = ("age", "gender", "race")


def _ro(d: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(d)) if isinstance(d, dict) else MappingProxyType({})


def _build(meta: Meta, doc: dict[str, Any]) -> Record:
    name, raw = meta.schema_name, _ro(doc)
    if name == "status":
        return Status(meta, raw, doc["state"], doc.get("reason"))
    if name == "info":
        cams = tuple(str(c.get("camera_id")) for c in doc.get("cameras", []) if isinstance(c, dict))
        software = doc.get("software") or {}
        return Info(
            meta,
            raw,
            software.get("version"),
            _ro(doc.get("models")),
            doc.get("config_sha256"),
            cams,
            tuple(doc.get("attributes", ())),
        )
    if name == "stats":
        pub = doc.get("publish") or {}
        dropped = {str(k): int(v) for k, v in (pub.get("dropped") or {}).items() if isinstance(v, int)}
        return Stats(meta, raw, doc.get("uptime_s"), pub.get("connected"), pub.get("queue_depth"), _ro(dropped))
    if name == "camera_status":
        return CameraStatus(meta, raw, doc["state"], doc.get("since"), doc.get("reason"))
    if name == "tracks":
        attrs = doc.get("attributes") or {}
        labels = {h: str(attrs[h]["label"]) for h in HEADS if isinstance(attrs.get(h), dict)}
        return TrackEvent(
            meta,
            raw,
            doc["event"],
            doc["track_id"],
            doc.get("dwell_s"),
            doc.get("attention_s"),
            doc.get("viewer"),
            bool(doc.get("minor", False)),
            _ro(labels),
        )
    if name == "audience":
        dom = doc.get("dominant")
        return Audience(
            meta,
            raw,
            doc["count"],
            doc["looking_count"],
            doc["minors"],
            tuple(doc["looking"]),
            None if dom is None else _ro(dom),
        )
    if name == "summary":
        return _summary(meta, raw, doc)
    if name == "cmd_result":
        return CommandResult(
            meta,
            raw,
            doc["command"],
            doc.get("request_id"),
            doc["ok"],
            None if doc.get("result") is None else _ro(doc["result"]),
            doc.get("error"),
        )
    raise ParseError(f"{meta.topic}: no record type for schema {meta.schema}")


def _summary(meta: Meta, raw: Mapping[str, Any], doc: dict[str, Any]) -> Summary:
    groups = {
        head: _ro({label: (int(s["viewers"]), int(s["passers_by"])) for label, s in doc[head].items()})
        for head in HEADS
        if isinstance(doc.get(head), dict)
    }
    return Summary(
        meta,
        raw,
        parse_ts(doc["interval_start"]),
        parse_ts(doc["interval_end"]),
        float(doc["interval_s"]),
        bool(doc["partial"]),
        doc["opportunities_to_see"],
        doc["viewers"],
        doc["passers_by"],
        float(doc["dwell_s"]["average"]),
        float(doc["attention_s"]["average"]),
        _ro(groups),
    )


def parse(topic: str, payload: bytes, *, retained: bool = False, device_id: str | None = None) -> Record:
    """Validate one message against the schema it names and build its record; raises ParseError.

    The topic must agree with the envelope (device id, camera id, schema), so a message published on the wrong
    topic (a misconfigured device, a forged message) is refused rather than attributed to the wrong place.
    """
    try:
        doc = validate(payload)
    except (SchemaError, UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"{topic}: {' '.join(str(exc).split())[:300]}") from None
    if device_id is not None and doc["device_id"] != device_id:
        raise ParseError(f"{topic}: envelope device_id {doc['device_id']!r} does not match the topic")
    if doc.get("camera_id") is not None and f"/cameras/{doc['camera_id']}/" not in topic:
        raise ParseError(f"{topic}: envelope camera_id {doc['camera_id']!r} does not match the topic")
    meta = Meta(
        schema=doc["schema"],
        msg_id=doc["msg_id"],
        seq=doc.get("seq"),
        ts=parse_ts(doc["ts"]),
        device_id=doc["device_id"],
        camera_id=doc.get("camera_id"),
        epoch=doc.get("epoch"),
        buffered=bool(doc.get("buffered", False)),
        topic=topic,
        retained=retained,
    )
    return _build(meta, doc)
