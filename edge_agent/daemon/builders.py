"""Factories that build each stage from config; the only place that knows the stages' constructors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig

log = logging.getLogger(__name__)

HEADS = ("age", "gender", "race")


def enabled_heads(cfg: AgentConfig) -> tuple[str, ...]:
    """Heads switched on in `[attributes]` (a switched-off head is never computed or sent)."""
    return tuple(h for h in HEADS if getattr(cfg.attributes, h, False))


def detector(cfg: AgentConfig) -> Any:
    """The configured face detector (raises ModelLoadError with a one-line reason)."""
    from edge_agent.detect.base import create_detector

    return create_detector(cfg.detector)


def classifier(cfg: AgentConfig) -> tuple[Any, Any]:
    """(AttributeClassifier, ModelMetadata), or (None, metadata-or-None) when every head is switched off."""
    from edge_agent.modelmeta import load_metadata

    heads = enabled_heads(cfg)
    model = getattr(cfg.attributes, "model", None)
    if model is None:
        return None, None
    model_path = Path(model)
    meta = load_metadata(model_path) if model_path.exists() or heads else None
    if not heads:
        log.info("every attribute head is disabled: faces are detected and tracked, never classified")
        return None, meta
    from edge_agent.classify import AttributeClassifier

    return AttributeClassifier(model_path, heads, cfg.agent.num_threads), meta


def publisher(cfg: AgentConfig, device_id: str, state_dir: Path) -> Any:
    from edge_agent.publish.mqtt import Publisher

    return Publisher(cfg.mqtt, cfg.outbox, device_id, state_dir)


def subscribe_commands(pub: Any, callback: Callable[[str, bytes], None]) -> None:
    pub.subscribe("cmd/#", callback)


def camera_worker(cam: Any, on_status: Callable[[str, Any], None]) -> Any:
    """A started-on-demand capture worker for one [[cameras]] entry; status changes go to on_status(id, status)."""
    from edge_agent.capture.worker import CameraWorker

    return CameraWorker(cam, on_status=on_status)


def camera_finished(worker: Any) -> bool:
    """A finite source (non-looping file/folder/demo) has delivered its last frame."""
    return bool(getattr(worker, "finished", False))


def camera_status_of(worker: Any) -> Any:
    return worker.status


def camera_analytics(cfg: AgentConfig, camera_id: str, meta: Any) -> Any:
    from edge_agent.daemon.analytics_adapter import CameraAnalytics

    return CameraAnalytics(camera_id, cfg, meta, enabled_heads(cfg))


def pose_fn() -> Callable[[Any], Any]:
    from edge_agent.analytics.pose import estimate_pose

    return estimate_pose
