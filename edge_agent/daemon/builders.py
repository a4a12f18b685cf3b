"""Factories that build each stage from its own config section; the only place that knows the stages' constructors.

Each factory returns the stage's interface type, so the composition root (daemon/agent.py) is type-checked end to
end. Heavy imports (the TFLite runtime, OpenCV, paho) stay inside the factories: importing this module is cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_agent.analytics.config import AnalyticsConfig
    from edge_agent.capture.config import CameraConfig
    from edge_agent.capture.status import CaptureStatus
    from edge_agent.capture.worker import CameraWorker
    from edge_agent.classify import AttributeClassifier
    from edge_agent.classify.config import AttributesConfig
    from edge_agent.daemon.analytics_adapter import AnalyticsAdapter
    from edge_agent.daemon.camera import PoseFn
    from edge_agent.detect.base import FaceDetector
    from edge_agent.detect.config import DetectorConfig
    from edge_agent.detect.guided import GuidedDetector
    from edge_agent.detect.region import RegionFinder
    from edge_agent.modelmeta import ModelMetadata
    from edge_agent.publish.config import MqttConfig, OutboxConfig
    from edge_agent.publish.mqtt import Publisher
    from edge_agent.track.config import TrackerConfig

log = logging.getLogger(__name__)


def detector(cfg: DetectorConfig) -> FaceDetector:
    """The configured face detector (raises ModelLoadError with a one-line reason)."""
    from edge_agent.detect.base import create_detector

    return create_detector(cfg)


def region_finder(cfg: DetectorConfig) -> RegionFinder | None:
    """The short-range interpreter for region searches (shared by the cameras); None when every frame is scanned."""
    if cfg.schedule.mode == "every_frame":
        return None
    from edge_agent.detect.region import RegionFinder

    return RegionFinder(cfg)


def guided_detector(
    cfg: DetectorConfig, cam: CameraConfig, full: FaceDetector, region: RegionFinder | None
) -> GuidedDetector | None:
    """Per-camera detection scheduling over the shared interpreters; None for a folder of independent photos."""
    from edge_agent.detect.guided import GuidedDetector

    source = cam.source
    if source.type == "folder" and not getattr(source, "sequence", False):
        return None  # no scene to follow: every photo gets a full scan and every face a classification
    return GuidedDetector(cfg.schedule, full, region)


def classifier(cfg: AttributesConfig) -> tuple[AttributeClassifier | None, ModelMetadata | None]:
    """(classifier, its model's metadata); with every head switched off no interpreter is loaded at all."""
    from edge_agent.classify import PACKAGED_MODEL, AttributeClassifier

    heads = cfg.enabled()
    model_path = Path(cfg.model) if cfg.model else PACKAGED_MODEL
    if not heads:
        log.info("every attribute head is disabled: faces are detected and tracked, never classified")
        return None, _metadata_if_present(model_path)
    clf = AttributeClassifier(model_path, heads, cfg.num_threads)
    return clf, clf.model.meta


def _metadata_if_present(model_path: Path) -> ModelMetadata | None:
    """The model's metadata for `info` when no head is on; a missing or broken model is then irrelevant."""
    from edge_agent.modelmeta import MetadataError, load_metadata

    try:
        return load_metadata(model_path) if model_path.is_file() else None
    except MetadataError as exc:
        log.warning("attribute model metadata unusable (no head is enabled, so it is not needed): %s", exc)
        return None


def publisher(mqtt: MqttConfig, outbox: OutboxConfig, device_id: str, state_dir: Path) -> Publisher:
    """The MQTT publisher with its SQLite outbox under `state_dir` (not started)."""
    from edge_agent.publish.mqtt import Publisher

    return Publisher(mqtt, outbox, device_id, state_dir)


def camera_worker(cam: CameraConfig, on_status: Callable[[str, CaptureStatus], None]) -> CameraWorker:
    """A started-on-demand capture worker for one [[cameras]] entry; status changes go to on_status(id, status)."""
    from edge_agent.capture.worker import CameraWorker

    return CameraWorker(cam, on_status=on_status)


def camera_analytics(
    camera_id: str,
    tracking: TrackerConfig,
    analytics: AnalyticsConfig,
    meta: ModelMetadata | None,
    heads: tuple[str, ...],
    *,
    stills: bool = False,
) -> AnalyticsAdapter:
    """Tracker + analytics for one camera, publishing the enabled heads only (`stills`: independent photos)."""
    from edge_agent.daemon.analytics_adapter import AnalyticsAdapter

    if stills:
        from edge_agent.daemon.stills import StillsAnalytics

        return StillsAnalytics(camera_id, tracking, analytics, meta, heads)
    return AnalyticsAdapter(camera_id, tracking, analytics, meta, heads)


def is_stills(cameras: list[CameraConfig], camera_id: str) -> bool:
    """The camera reads a folder of independent photos (not `sequence = true` frames of one camera)."""
    cam = next((c for c in cameras if c.id == camera_id), None)
    source = None if cam is None else cam.source
    return source is not None and source.type == "folder" and not source.sequence


def pose_fn() -> PoseFn:
    from edge_agent.analytics.pose import estimate_pose

    return estimate_pose
