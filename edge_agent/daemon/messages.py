"""Device-level payloads the composition root publishes: info, stats, camera status, command status."""

from __future__ import annotations

import logging
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent import __version__
from edge_agent.config import config_hash
from edge_agent.daemon.builders import camera_status_of, enabled_heads
from edge_agent.daemon.sinks import Outgoing
from edge_agent.daemon.stats import rss_mb

log = logging.getLogger(__name__)

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


def _detector_model(cfg: Any) -> dict[str, Any]:
    """Name and sha256 of the detector file: the pinned store copy, or the explicit model_path."""
    det = cfg.detector
    from edge_agent.detect.blazeface import MODEL_NAMES
    from edge_agent.models_store import PINS

    name = MODEL_NAMES.get(det.model, str(det.model))
    if det.model_path is not None:
        from edge_agent.modelmeta import file_sha256

        try:
            return {"name": Path(det.model_path).name, "version": None, "sha256": file_sha256(Path(det.model_path))}
        except OSError:
            pass
    pin = PINS.get(name)
    return {"name": name, "version": "mediapipe", "sha256": pin.sha256 if pin else "0" * 64}


def models_info(agent: Agent) -> dict[str, Any]:
    out = {"detector": _detector_model(agent.cfg)}
    meta = agent.meta
    if meta is not None:
        out["attributes"] = {"name": meta.name, "version": meta.version, "sha256": meta.sha256}
    return out


def info(agent: Agent) -> Outgoing:
    """Retained `info`: software, models, config hash, cameras (source kind only), enabled attributes."""
    cfg = agent.cfg
    payload = {
        "software": {
            "name": "edge-agent",
            "version": VERSION,
            "python": platform.python_version(),
            "runtime": _runtime(),
        },
        "models": models_info(agent),
        "config_sha256": config_hash(cfg),
        "cameras": [{"camera_id": c.id, "source": c.source.type} for c in cfg.cameras if c.enabled],
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
    kind = next((c.source.type for c in agent.cfg.cameras if c.id == camera_id), None)
    if kind is not None:
        payload["source"] = kind  # the kind only: a URL may hold credentials
    payload["paused"] = bool(agent.paused)
    if agent.paused:
        payload["reason"] = PAUSED_REASON + (f" ({payload['reason']})" if payload["reason"] else "")
    return Outgoing(f"cameras/{camera_id}/status", payload, CAMERA_STATUS_SCHEMA, camera_id, retain=True)


def _latency(p: dict[str, Any]) -> dict[str, Any]:
    """LatencyWindow percentiles → the schema's {p50, p95, count} (empty windows give count 0 only)."""
    out: dict[str, Any] = {"count": p["n"]}
    if p["p50"] is not None:
        out.update(p50=p["p50"], p95=p["p95"])
    return out


def _camera_stats(runner: Any, elapsed: float) -> dict[str, Any]:
    try:
        cap = dict(runner.worker.stats())
    except Exception:  # noqa: BLE001 - stats must never fail the loop
        cap = {}
    dropped = int(cap.get("dropped", 0) or 0)
    prev = runner.stats_prev
    runner.stats_prev = {"dropped": dropped}
    skipped_capture = cap.get("skipped") or {}
    bad = sum(int(v) for v in skipped_capture.values()) + sum(v for k, v in runner.skipped.items() if k != "paused")
    return {
        "status": _status_fields(camera_status_of(runner.worker))["state"],
        "capture_fps": float(cap.get("capture_fps", 0.0) or 0.0),
        "processed_fps": runner.processed.rate(),
        "dropped_fps": round(max(0, dropped - prev.get("dropped", 0)) / max(elapsed, 1e-3), 2),
        "frames_captured": int(cap.get("captured", 0) or 0),
        "frames_processed": runner.processed_total,
        "frames_dropped": dropped + runner.skipped.get("paused", 0),
        "frames_bad": bad,
        "reopens": int(cap.get("reopens", 0) or 0),
    }


def _proc_count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


def stats(agent: Agent) -> Outgoing:
    """`stats`: per-camera rates, ms p50/p95 per model and stage, capture→publish latency, outbox, RSS, CPU."""
    now, cpu = time.monotonic(), time.process_time()
    elapsed = max(now - agent.stats_prev[0], 1e-3)
    cpu_percent = round(100.0 * max(0.0, cpu - agent.stats_prev[1]) / elapsed, 1)
    agent.stats_prev = (now, cpu)
    t = agent.timings.as_dict()
    publish: dict[str, Any] = {"connected": False, "queue_depth": 0, "dropped": {}}
    if agent.publisher is not None:
        try:
            publish = dict(agent.publisher.stats())
        except Exception as exc:  # noqa: BLE001 - stats must never fail the loop
            log.debug("publisher stats unavailable: %s", exc)
    inference = {
        "detector": t["detect"],
        "attributes": t["classify_face"],
        "attributes_frame": t["classify"],
        "pose": t["pose"],
        "analytics": t["analytics"],
        "publish": t["publish"],
        "frame": t["total"],
    }
    payload = {
        "uptime_s": round(now - agent.started_mono, 1),
        "interval_s": round(elapsed, 3),
        "cameras": {r.camera_id: _camera_stats(r, elapsed) for r in agent.runners},
        "inference_ms": {k: _latency(v) for k, v in inference.items()},
        "latency_ms": _latency(t["capture_to_publish"]),
        "publish": publish,
        "memory_rss_mb": rss_mb(),
        "threads": _proc_count("/proc/self/task"),
        "open_fds": _proc_count("/proc/self/fd"),
        "cpu_percent": cpu_percent,
    }
    return Outgoing("stats", payload, STATS_SCHEMA, None)


def status_summary(agent: Agent) -> dict[str, Any]:
    """What `cmd/status` returns: paused, uptime, cameras, config hash."""
    return {
        "paused": agent.paused,
        "uptime_s": round(time.monotonic() - agent.started_mono, 1),
        "config_hash": config_hash(agent.cfg),
        "attributes": list(enabled_heads(agent.cfg)),
        "cameras": {
            r.camera_id: {**_status_fields(camera_status_of(r.worker)), "processed_total": r.processed_total}
            for r in agent.runners
        },
    }
