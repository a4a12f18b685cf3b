"""Face detection stage: BlazeFace short/full range with numpy anchor decoding and NMS (see docs/detection.md)."""

from edge_agent.detect.base import DetectError, FaceDetector, create_detector, registered_types
from edge_agent.detect.config import DetectorConfig

__all__ = ["DetectError", "DetectorConfig", "FaceDetector", "create_detector", "registered_types"]
