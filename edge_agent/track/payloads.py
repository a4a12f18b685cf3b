"""Track events -> `cameras/<camera_id>/tracks` payload dicts (the publisher adds the envelope fields).

Only heads present in the estimate are written, so a disabled head never appears; a minor's record carries
`minor: true` and no `attributes` key at all. No pixels, no embeddings: boxes, angles and probabilities only.
"""

from __future__ import annotations

from typing import Any

from edge_agent.records import Pose
from edge_agent.timefmt import iso_ts
from edge_agent.track.events import AttributeEstimate, HeadEstimate, TrackEnd, TrackEvent, TrackNew, TrackUpdate

SCHEMA_TRACKS = "edge-agent/tracks/1"


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def head_payload(est: HeadEstimate, with_probs: bool) -> dict[str, Any]:
    """{"label", "p"} plus the distribution (end records) and why it is unknown."""
    out: dict[str, Any] = {"label": est.label, "p": est.p}
    if with_probs and est.probs:
        out["probs"] = dict(est.probs)
    if est.reason is not None:
        out["reason"] = est.reason
    return out


def attributes_payload(attrs: AttributeEstimate, with_probs: bool = False) -> dict[str, Any]:
    """The `minor` flag (when known) and, unless a minor, the `attributes` object of the enabled heads."""
    out: dict[str, Any] = {}
    if attrs.minor is not None:
        out["minor"] = attrs.minor
    if attrs.minor:
        return out
    heads: dict[str, Any] = {name: head_payload(est, with_probs) for name, est in attrs.heads().items()}
    if attrs.age_years is not None:
        heads["age_years"] = attrs.age_years
    if heads:
        out["attributes"] = heads
    return out


def _pose(pose: Pose | None) -> dict[str, float] | None:
    if pose is None:
        return None
    return {"yaw": _r(pose.yaw, 1), "pitch": _r(pose.pitch, 1), "roll": _r(pose.roll, 1)}


def track_payload(ev: TrackEvent) -> dict[str, Any]:
    """The payload of one track event."""
    if isinstance(ev, TrackNew):
        return {
            "event": "new",
            "track_id": ev.track_id,
            "t_start": iso_ts(ev.ts),
            "box": ev.box.as_list(),
            "score": _r(ev.score),
        }
    if isinstance(ev, TrackUpdate):
        out = {
            "event": "update",
            "track_id": ev.track_id,
            "t_start": iso_ts(ev.start_ts),
            "t": iso_ts(ev.ts),
            "box": ev.box.as_list(),
            "dwell_s": _r(ev.dwell_s),
            "looking": ev.looking,
            "pose": _pose(ev.pose),
            "attention_s": _r(ev.attention_s),
            "glances": ev.glances,
        }
        out.update(attributes_payload(ev.attributes))
        return out
    return end_payload(ev)


def end_payload(ev: TrackEnd) -> dict[str, Any]:
    """The `end` record: the visit's aggregated attributes, dwell and attention."""
    out: dict[str, Any] = {
        "event": "end",
        "track_id": ev.track_id,
        "t_start": iso_ts(ev.start_ts),
        "t_end": iso_ts(ev.ts),
        "dwell_s": _r(ev.dwell_s),
        "samples": ev.samples,
        "attention_s": _r(ev.attention_s),
        "glances": ev.glances,
        "time_to_first_glance_s": None if ev.time_to_first_glance_s is None else _r(ev.time_to_first_glance_s),
        "viewer": ev.viewer,
        "short": ev.short,
        "reconnects": ev.reconnects,
        "reason": ev.reason,
    }
    out.update(attributes_payload(ev.attributes, with_probs=True))
    return out
