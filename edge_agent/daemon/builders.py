"""Factories that build each stage from config; the only place that knows the stages' constructors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig

log = logging.getLogger(__name__)


def enabled_heads(cfg: AgentConfig) -> tuple[str, ...]:
    """Heads switched on in `[attributes]` (a switched-off head is never computed or sent)."""
    return cfg.attributes.enabled()


def detector(cfg: AgentConfig) -> Any:
    """The configured face detector (raises ModelLoadError with a one-line reason)."""
    from edge_agent.detect.base import create_detector

    return create_detector(cfg.detector)


def classifier(cfg: AgentConfig) -> tuple[Any, Any]:
    """(AttributeClassifier, ModelMetadata); with every head switched off no interpreter is loaded at all."""
    from edge_agent.classify import PACKAGED_MODEL, AttributeClassifier

    heads = enabled_heads(cfg)
    model_path = Path(cfg.attributes.model) if cfg.attributes.model else PACKAGED_MODEL
    if not heads:
        log.info("every attribute head is disabled: faces are detected and tracked, never classified")
        return None, _metadata_if_present(model_path)
    clf = AttributeClassifier(model_path, heads, cfg.attributes.num_threads)
    return clf, clf.metadata


def _metadata_if_present(model_path: Path) -> Any:
    """The model's metadata for `info` when no head is on; a missing or broken model is then irrelevant."""
    from edge_agent.modelmeta import MetadataError, load_metadata

    try:
        return load_metadata(model_path) if model_path.is_file() else None
    except MetadataError as exc:
        log.warning("attribute model metadata unusable (no head is enabled, so it is not needed): %s", exc)
        return None


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
