"""Device-level payloads the composition root publishes: info, stats, camera status, command status.

Pure functions of what they are given (config, metadata, frozen status records): nothing here reads or mutates
the agent, so each payload is unit-tested on its own.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent import __version__
from edge_agent.config import AgentConfig, config_hash
from edge_agent.daemon.sinks import Outgoing
from edge_agent.timefmt import iso_ts

if TYPE_CHECKING:
    from edge_agent.capture.status import CaptureStatus
    from edge_agent.detect.config import DetectorConfig
    from edge_agent.modelmeta import ModelMetadata

log = logging.getLogger(__name__)

VERSION = __version__
INFO_SCHEMA = "edge-agent/info/1"
STATS_SCHEMA = "edge-agent/stats/1"
CAMERA_STATUS_SCHEMA = "edge-agent/camera_status/1"
CMD_RESULT_SCHEMA = "edge-agent/cmd_result/1"
PAUSED_REASON = "analysis paused by remote command"


@dataclass(frozen=True, slots=True)
class CameraReport:
    """What the agent knows about one camera at one instant, for `cameras/<id>/status` and `cmd/status`."""

    camera_id: str
    status: CaptureStatus
    paused: bool = False
    healthy: bool = True
    error: str | None = None  # the last unexpected error's type and text, while unhealthy
    processed_total: int = 0


def _runtime() -> str:
    from edge_agent.runtime import runtime_version

    try:
        return runtime_version()
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def _detector_model(det: DetectorConfig) -> dict[str, Any]:
    """Name and sha256 of the detector file: the pinned store copy, or the explicit model_path."""
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


def models_info(cfg: AgentConfig, meta: ModelMetadata | None) -> dict[str, Any]:
    out = {"detector": _detector_model(cfg.detector)}
    if meta is not None:
        out["attributes"] = {"name": meta.name, "version": meta.version, "sha256": meta.sha256}
    return out


def info(cfg: AgentConfig, meta: ModelMetadata | None, started_ts: float) -> Outgoing:
    """Retained `info`: software, models, config hash, cameras (source kind only), enabled attributes."""
    payload = {
        "software": {
            "name": "edge-agent",
            "version": VERSION,
            "python": platform.python_version(),
            "runtime": _runtime(),
        },
        "models": models_info(cfg, meta),
        "config_sha256": config_hash(cfg),
        "cameras": [{"camera_id": c.id, "source": c.source.type} for c in cfg.cameras if c.enabled],
        "attributes": list(cfg.attributes.enabled()),
        "started_at": iso_ts(started_ts),
    }
    return Outgoing("info", payload, INFO_SCHEMA, None, retain=True)


def status_fields(status: CaptureStatus) -> dict[str, Any]:
    """The capture worker's CaptureStatus → {"state", "since", "reason"}."""
    return {"state": status.state, "since": iso_ts(status.since), "reason": status.reason or None}


def camera_status(report: CameraReport, source_kind: str | None) -> Outgoing:
    """Retained `cameras/<id>/status`: online/stalled/offline with since; paused and unhealthy say why."""
    payload = status_fields(report.status)
    if source_kind is not None:
        payload["source"] = source_kind  # the kind only: a URL may hold credentials
    payload["paused"] = report.paused
    payload["healthy"] = report.healthy
    if not report.healthy:
        payload["reason"] = f"every frame fails: {report.error}" if report.error else "every frame fails"
    if report.paused:
        payload["reason"] = PAUSED_REASON + (f" ({payload['reason']})" if payload["reason"] else "")
    cid = report.camera_id
    return Outgoing(f"cameras/{cid}/status", payload, CAMERA_STATUS_SCHEMA, cid, retain=True)


def stats(payload: dict[str, Any]) -> Outgoing:
    """`stats` (the payload comes from daemon.stats.StatsReporter)."""
    return Outgoing("stats", payload, STATS_SCHEMA, None)


def status_summary(cfg: AgentConfig, paused: bool, uptime_s: float, cameras: Sequence[CameraReport]) -> dict[str, Any]:
    """What `cmd/status` returns: paused, uptime, cameras, config hash."""
    return {
        "paused": paused,
        "uptime_s": round(uptime_s, 1),
        "config_hash": config_hash(cfg),
        "attributes": list(cfg.attributes.enabled()),
        "cameras": {
            c.camera_id: {**status_fields(c.status), "healthy": c.healthy, "processed_total": c.processed_total}
            for c in cameras
        },
    }
