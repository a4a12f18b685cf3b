"""Per-camera processing: detect → classify (enabled heads) → pose → track/analytics → outgoing messages."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from edge_agent.daemon.sinks import Outgoing
from edge_agent.daemon.stats import LatencyWindow, RateMeter
from edge_agent.records import Face, Frame

log = logging.getLogger(__name__)
_LOG_EVERY_S = 30.0  # rate limit for repeated per-frame warnings


class Timings:
    """Latency windows shared by all cameras (one detector and one classifier serve them all)."""

    def __init__(self) -> None:
        self.detect = LatencyWindow()
        self.classify = LatencyWindow()  # per frame with faces
        self.classify_face = LatencyWindow()  # per face
        self.pose = LatencyWindow()
        self.analytics = LatencyWindow()
        self.publish = LatencyWindow()
        self.total = LatencyWindow()
        self.capture_to_publish = LatencyWindow()

    def as_dict(self) -> dict[str, Any]:
        return {name: window.percentiles() for name, window in vars(self).items()}


class CameraRunner:
    """Analyses the frames of one camera; owns its worker and its tracker/analytics state."""

    def __init__(
        self,
        camera_id: str,
        worker: Any,
        analytics: Any,
        detector: Any,
        classifier: Any,
        pose_fn: Callable[[Any], Any] | None,
        timings: Timings,
        send: Callable[[Outgoing], None],
    ) -> None:
        self.camera_id = camera_id
        self.worker = worker
        self.analytics = analytics
        self.detector = detector
        self.classifier = classifier
        self.pose_fn = pose_fn
        self.timings = timings
        self.send = send
        self.processed = RateMeter()
        self.paused_frames = RateMeter()
        self.processed_total = 0
        self.faces_total = 0
        self.skipped: Counter[str] = Counter()
        self.stats_prev: dict[str, int] = {}
        self._last_warn: dict[str, float] = {}

    def _warn(self, reason: str, msg: str, *args: Any) -> None:
        self.skipped[reason] += 1
        now = time.monotonic()
        if now - self._last_warn.get(reason, -1e9) >= _LOG_EVERY_S:
            self._last_warn[reason] = now
            log.warning("camera %s: " + msg + " (%d so far)", self.camera_id, *args, self.skipped[reason])

    def poll(self, timeout: float, paused: bool) -> bool:
        """Take the newest frame (if any) and analyse it unless paused; True when a frame was taken."""
        frame = self.worker.latest(timeout)
        if frame is None:
            return False
        if paused:
            self.paused_frames.tick()
            self.skipped["paused"] += 1
            return True
        try:
            self.process(frame)
        except Exception as exc:  # noqa: BLE001 - one bad frame never stops the loop
            self._warn("error", "frame %d skipped: %s: %s", frame.index, type(exc).__name__, exc)
        return True

    def process(self, frame: Frame) -> None:
        """Run every stage on one frame and send what the analytics produce."""
        t0 = time.perf_counter()
        try:
            detections = self.detector.detect(frame.image)
        except ValueError as exc:  # DetectError: an unusable frame
            self._warn("bad_frame", "frame %d unusable: %s", frame.index, exc)
            return
        t1 = time.perf_counter()
        attributes: list[Any] = [None] * len(detections)
        if detections and self.classifier is not None:
            attributes = list(self.classifier.classify(frame.image, detections))
        t2 = time.perf_counter()
        faces = []
        for det, attr in zip(detections, attributes):
            pose = self.pose_fn(det.keypoints) if self.pose_fn is not None else None
            faces.append(Face(detection=det, attributes=attr, pose=pose, face_px=det.box.width))
        t3 = time.perf_counter()
        messages = self.analytics.update(faces, frame)
        t4 = time.perf_counter()
        for msg in messages:
            self.send(msg)
        t5 = time.perf_counter()
        self._record(frame, len(detections), (t0, t1, t2, t3, t4, t5), bool(messages))

    def _record(self, frame: Frame, n_faces: int, t: tuple[float, ...], sent: bool) -> None:
        tm = self.timings
        tm.detect.add_ms((t[1] - t[0]) * 1e3)
        if n_faces and self.classifier is not None:
            tm.classify.add_ms((t[2] - t[1]) * 1e3)
            tm.classify_face.add_ms((t[2] - t[1]) * 1e3 / n_faces)
        tm.pose.add_ms((t[3] - t[2]) * 1e3)
        tm.analytics.add_ms((t[4] - t[3]) * 1e3)
        tm.publish.add_ms((t[5] - t[4]) * 1e3)
        tm.total.add_ms((t[5] - t[0]) * 1e3)
        if sent:
            tm.capture_to_publish.add_ms((time.monotonic() - frame.mono) * 1e3)
        self.processed.tick()
        self.processed_total += 1
        self.faces_total += n_faces

    def flush(self, reason: str) -> None:
        """End open visits (shutdown, pause) and send the resulting records."""
        try:
            for msg in self.analytics.flush(reason):
                self.send(msg)
        except Exception as exc:  # noqa: BLE001 - teardown continues whatever happens
            log.error("camera %s: flushing tracks failed: %s", self.camera_id, exc)
