"""The JSON envelope every published message carries: schema id, msg_id, seq, ts, device_id, camera_id."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from edge_agent.timefmt import iso_ts  # the one formatter; re-exported here for the publisher's callers

ENVELOPE_KEYS: frozenset[str] = frozenset(
    {"schema", "msg_id", "seq", "epoch", "ts", "device_id", "camera_id", "buffered"}
)
SCHEMA_ID_RE = re.compile(r"^edge-agent/[a-z][a-z0-9_]*/[0-9]+$")
BUFFERED_SUFFIX = b',"buffered":true}'
STATUS_SCHEMA = "edge-agent/status/1"
TOPIC_RE = re.compile(r"^[^#+/\x00]+(/[^#+/\x00]+)*$")  # a topic suffix: non-empty levels, no wildcards
FILTER_RE = re.compile(r"^([^#+/\x00]+|\+)(/([^#+/\x00]+|\+))*(/#)?$|^#$")  # a subscription filter


class MessageError(ValueError):
    """A payload that cannot be published (not a JSON object, reserved key, bad schema id); a caller bug."""


def new_msg_id() -> str:
    """A random UUID4 string; consumers de-duplicate by it."""
    return str(uuid.uuid4())


def encode(
    payload: dict[str, Any],
    *,
    schema: str,
    msg_id: str,
    seq: int | None,
    epoch: int,
    ts: float,
    device_id: str,
    camera_id: str | None,
) -> bytes:
    """Serialise envelope + payload as compact UTF-8 JSON, envelope keys first.

    `seq` is None only for `status` messages, which are outside the sequence (docs/mqtt.md, the contract).

    Raises MessageError for a payload that is not a JSON object, uses a reserved envelope key, or holds
    values JSON cannot represent (NaN, numpy arrays, ...).
    """
    if not isinstance(payload, dict):
        raise MessageError(f"payload must be a dict, got {type(payload).__name__}")
    if not SCHEMA_ID_RE.match(schema):
        raise MessageError(f"schema id {schema!r} is not of the form edge-agent/<name>/<version>")
    clash = ENVELOPE_KEYS.intersection(payload)
    if clash:
        raise MessageError(f"payload uses reserved envelope key(s) {sorted(clash)}")
    doc: dict[str, Any] = {
        "schema": schema,
        "msg_id": msg_id,
        "seq": seq,
        "epoch": epoch,
        "ts": iso_ts(ts),
        "device_id": device_id,
        "camera_id": camera_id,
    }
    doc.update(payload)
    try:
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MessageError(f"payload for {schema} is not JSON-serialisable: {exc}") from None
    return text.encode("utf-8")


def status(state: str, reason: str | None, *, epoch: int, device_id: str) -> bytes:
    """The `status` message (online/offline), published outside the outbox and as the Last Will: no seq.

    Pure (no disk access), so it is safe on paho's network thread even when the disk is full.
    """
    body: dict[str, Any] = {"state": state}
    if reason:
        body["reason"] = reason
    return encode(
        body,
        schema=STATUS_SCHEMA,
        msg_id=new_msg_id(),
        seq=None,
        epoch=epoch,
        ts=time.time(),
        device_id=device_id,
        camera_id=None,
    )


def mark_buffered(data: bytes) -> bytes:
    """Add `"buffered": true` to an encoded envelope without re-parsing it (it always ends with `}`)."""
    return data[:-1] + BUFFERED_SUFFIX


def schema_file_name(schema_id: str) -> str:
    """`edge-agent/camera_status/1` → `camera_status.json` (the file in edge_agent/schemas/)."""
    return schema_id.split("/")[1] + ".json"
