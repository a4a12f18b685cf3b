"""Device-level payloads the composition root publishes: info, stats, camera status, command status."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from edge_agent import __version__
from edge_agent.config import config_hash
from edge_agent.daemon.builders import camera_status_of, enabled_heads
from edge_agent.daemon.sinks import Outgoing
from edge_agent.daemon.stats import peak_rss_mb, rss_mb

if TYPE_CHECKING:
    from edge_agent.daemon.agent import Agent

VERSION = __version__
INFO_SCHEMA = "edge-agent/info/1"
STATS_SCHEMA = "edge-agent/stats/1"
CAMERA_STATUS_SCHEMA = "edge-agent/camera_status/1"
CMD_RESULT_SCHEMA = "edge-agent/cmd_result/1"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _runtime() -> str:
    from edge_agent.runtime import runtime_version

    try:
        return runtime_version()
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def model_info(agent: Agent) -> dict[str, Any] | None:
    meta = agent.meta
    if meta is None:
        return None
    return {"name": meta.name, "version": meta.version, "sha256": meta.sha256}


def info(agent: Agent) -> Outgoing:
    """Retained `info`: software, models, config hash, cameras, enabled attributes."""
    cfg = agent.cfg
    det = cfg.detector
    payload = {
        "software": {"name": "edge-agent", "version": VERSION, "runtime": _runtime()},
        "model": model_info(agent),
        "detector": {"type": det.type, "model": det.model},
        "config_hash": config_hash(cfg),
        "cameras": [c.id for c in cfg.cameras if c.enabled],
        "attributes": list(enabled_heads(cfg)),
        "started_at": iso(agent.started_ts),
    }
    return Outgoing("info", payload, INFO_SCHEMA, None, retain=True)


def _status_fields(status: Any) -> dict[str, Any]:
    """The capture worker's CameraStatus → {"state", "since", "reason"} (tolerates a plain string)."""
    if isinstance(status, str):
        return {"state": status, "since": iso(time.time()), "reason": None}
    since = getattr(status, "since", None)
    return {
        "state": str(getattr(status, "state", "offline")),
        "since": iso(since) if isinstance(since, (int, float)) else since or iso(time.time()),
        "reason": getattr(status, "reason", None) or None,
    }


PAUSED_REASON = "analysis paused by remote command"


def camera_status(agent: Agent, camera_id: str, status: Any) -> Outgoing:
    """Retained `cameras/<id>/status`: online/stalled/offline with since; the reason says when analysis is paused."""
    payload = _status_fields(status)
    if agent.paused:
        payload["reason"] = PAUSED_REASON + (f" ({payload['reason']})" if payload["reason"] else "")
    return Outgoing(f"cameras/{camera_id}/status", payload, CAMERA_STATUS_SCHEMA, camera_id, retain=True)


def _camera_stats(runner: Any) -> dict[str, Any]:
    try:
        capture = dict(runner.worker.stats())
    except Exception:  # noqa: BLE001 - stats must never fail the loop
        capture = {}
    return {
        "state": _status_fields(camera_status_of(runner.worker))["state"],
        "processed_fps": runner.processed.rate(),
        "paused_fps": runner.paused_frames.rate(),
        "processed_total": runner.processed_total,
        "faces_total": runner.faces_total,
        "skipped": dict(runner.skipped),
        "capture": capture,
        "tracking": runner.analytics.stats() if hasattr(runner.analytics, "stats") else {},
    }


def stats(agent: Agent) -> Outgoing:
    """`stats`: per-camera rates, inference ms p50/p95 per model and stage, outbox, uptime, RSS."""
    t = agent.timings.as_dict()
    publish: dict[str, Any] = {}
    if agent.publisher is not None:
        try:
            publish = dict(agent.publisher.stats())
        except Exception:  # noqa: BLE001
            publish = {}
    payload = {
        "uptime_s": round(time.monotonic() - agent.started_mono, 1),
        "paused": agent.paused,
        "cameras": {r.camera_id: _camera_stats(r) for r in agent.runners},
        "inference_ms": {"detector": t["detect"], "attributes": t["classify_face"]},
        "stages_ms": t,
        "publish": publish,
        "commands": {"received": agent.commands.received, "dropped": agent.commands.dropped},
        "rss_mb": rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
    }
    return Outgoing("stats", payload, STATS_SCHEMA, None)


def status_summary(agent: Agent) -> dict[str, Any]:
    """What `cmd/status` returns: paused, uptime, cameras, config hash."""
    return {
        "paused": agent.paused,
        "uptime_s": round(time.monotonic() - agent.started_mono, 1),
        "config_hash": config_hash(agent.cfg),
        "attributes": list(enabled_heads(agent.cfg)),
        "cameras": {r.camera_id: {**_status_fields(camera_status_of(r.worker)), "processed_total": r.processed_total}
                    for r in agent.runners},
    }
