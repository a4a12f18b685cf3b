"""Capture stage: frame sources (v4l2, stream, file, folder, demo).

Also the latest-frame CameraWorker with its watchdog.
"""

from edge_agent.capture.base import BadFrame, FrameSource, SourceError, create_source, register_source, source_types
from edge_agent.capture.config import CameraConfig, SourceConfig, SourceSpecError, source_from_string
from edge_agent.capture.frames import normalize_frame
from edge_agent.capture.iterate import iter_frames
from edge_agent.capture.status import CaptureStatus
from edge_agent.capture.worker import CameraWorker

__all__ = [
    "BadFrame",
    "CameraConfig",
    "CameraWorker",
    "CaptureStatus",
    "FrameSource",
    "SourceConfig",
    "SourceError",
    "SourceSpecError",
    "create_source",
    "iter_frames",
    "normalize_frame",
    "register_source",
    "source_from_string",
    "source_types",
]
