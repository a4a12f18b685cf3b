"""V4L2 as far as this kernel allows: real OpenCV V4L2 opens, and the open/read/reopen path of a camera that unplugs.

This machine's kernel has no loadable modules (no /proc/modules), so `v4l2loopback` cannot be loaded and there is
no /dev/video* (see docs/capture.md). What can run for real does so elsewhere:
OpenCV's V4L2 backend refusing a node that is not a camera, and the no-such-device check, are in
`test_capture_sources.py`. For the unplug/replug cycle the
only substitute is at the driver edge: `_open_capture` returns a real `cv2.VideoCapture` over a short clip, so
V4L2Source's own configure/grab/retrieve and the worker's watchdog and reopen run unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from edge_agent.capture import CameraConfig, CameraWorker
from edge_agent.capture.config import V4L2SourceConfig
from edge_agent.capture.opencv_sources import V4L2Source
from tests.fixtures.media import moving_face_frames, write_clip


class _UnpluggingCamera(V4L2Source):
    """A V4L2 camera whose driver edge is a real clip: it delivers the clip's frames, then "unplugs" (reads fail)."""

    def __init__(self, cfg: V4L2SourceConfig, clip: Path) -> None:
        super().__init__(cfg)
        self.clip = clip
        self.opens = 0

    def _open_capture(self) -> cv2.VideoCapture:
        self.opens += 1
        return cv2.VideoCapture(str(self.clip), cv2.CAP_FFMPEG)


def test_a_camera_that_unplugs_goes_stalled_is_reopened_and_delivers_frames_again(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "cam.mp4", moving_face_frames(15), fps=30.0)
    cfg = CameraConfig.model_validate(
        {
            "id": "usb",
            "source": {"type": "v4l2", "device": "/dev/video0", "fps": 30},
            "max_fps": 0,
            "watchdog": {"stall_timeout_s": 1.0, "max_read_failures": 2, "backoff_min_s": 0.05, "backoff_max_s": 0.1},
        }
    )
    camera = _UnpluggingCamera(cfg.source, clip)  # type: ignore[arg-type]
    states: list[str] = []
    worker = CameraWorker(cfg, on_status=lambda _id, st: states.append(st.state), source=camera)
    frames = []
    with worker:
        deadline = time.monotonic() + 20
        while camera.opens < 3 and time.monotonic() < deadline:  # the first open and two reopens
            frame = worker.latest(0.2)
            if frame is not None:
                frames.append(frame)
        stats = worker.stats()
    assert camera.opens >= 3, stats
    assert states[:3] == ["online", "stalled", "online"], states
    assert stats["reopens"] >= 2 and stats["read_failures"] >= 2, stats
    assert stats["decoded"] >= 30  # the first pass (15) and at least one more after a reopen
    assert len(frames) >= 10 and all(f.image.shape == (240, 320, 3) for f in frames)
