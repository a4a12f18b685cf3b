"""Per-camera processing: detect → pose → track/analytics (classifying the faces it samples) → outgoing messages.

With a `GuidedDetector` (the default) detection is scheduled per frame: full scans at a cadence and on motion,
region searches around known faces in between, nothing on a still empty scene; the tracker's sampler decides
which faces are classified. Without one (folders of independent photos) every frame gets a full scan and every
face a classification.

The frame loop never stops for one frame. What it catches it sorts by type: a `DetectError` is an unusable frame
(bad input: counted as `frames_bad`), anything else is a programming or runtime error (counted as `errors`, logged
with its traceback the first time each type occurs). A camera whose every frame has failed for longer than the
health limit is unhealthy: the agent reports it and stops the systemd watchdog pings, so systemd restarts us.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from edge_agent.daemon.sinks import Outgoing
from edge_agent.daemon.stats import LatencyWindow, Percentiles, RunnerSnapshot
from edge_agent.detect.base import DetectError, FaceDetector
from edge_agent.records import Attributes, Detection, Face, Frame, Pose, TrackHint
from edge_agent.track.sampling import laplacian_variance, visible_fraction

if TYPE_CHECKING:
    from edge_agent.capture.status import CaptureSnapshot, CaptureStatus
    from edge_agent.detect.guided import GuidedDetector
    from edge_agent.track.tracker import Classify

log = logging.getLogger(__name__)
_LOG_EVERY_S = 30.0  # rate limit for repeated per-frame log lines of one kind
# Errors that mean "this frame is unusable", not "our code is broken": counted as frames_bad, logged without a
# traceback. Everything else that a stage raises is an error (counted apart, logged with its traceback).
EXPECTED_FRAME_ERRORS: tuple[type[Exception], ...] = (DetectError,)

PoseFn = Callable[[np.ndarray], Pose | None]


class FrameFeed(Protocol):
    """What a runner needs from a capture worker (capture.worker.CameraWorker is the implementation)."""

    @property
    def status(self) -> CaptureStatus: ...

    @property
    def finished(self) -> bool: ...

    def latest(self, timeout: float | None = None) -> Frame | None: ...

    def snapshot(self) -> CaptureSnapshot: ...


class Classifier(Protocol):
    """The attribute stage as the runner uses it (classify.AttributeClassifier is the implementation)."""

    def classify(self, image_bgr: np.ndarray, detections: list[Detection]) -> list[Attributes]: ...


class AnalyticsStage(Protocol):
    """Per-camera tracking and analytics (daemon.analytics_adapter.AnalyticsAdapter is the implementation)."""

    def update(self, faces: list[Face], frame: Frame) -> list[Outgoing]: ...

    def flush(self, reason: str) -> list[Outgoing]: ...


class GuidedAnalyticsStage(AnalyticsStage, Protocol):
    """Analytics that also guide detection (track hints) and sample classifications (AnalyticsAdapter)."""

    def hints(self, t: float) -> list[TrackHint]: ...

    def update(self, faces: list[Face], frame: Frame, classify: Classify | None = None) -> list[Outgoing]: ...


class Timings:
    """Latency windows shared by all cameras (one detector and one classifier serve them all)."""

    def __init__(self) -> None:
        self.detect = LatencyWindow()  # per frame a detector ran on (a full scan or region searches)
        self.full_scan = LatencyWindow()
        self.region_search = LatencyWindow()  # per frame with region searches
        self.classify = LatencyWindow()  # per frame with faces
        self.classify_face = LatencyWindow()  # per face
        self.pose = LatencyWindow()
        self.analytics = LatencyWindow()
        self.publish = LatencyWindow()
        self.total = LatencyWindow()
        self.capture_to_publish = LatencyWindow()

    def snapshot(self) -> dict[str, Percentiles]:
        return {name: window.percentiles() for name, window in vars(self).items()}


@dataclass(frozen=True, slots=True)
class CameraStages:
    """The stages one runner calls, swapped as a whole by a live reconfigure."""

    detector: FaceDetector
    classifier: Classifier | None
    analytics: AnalyticsStage
    pose_fn: PoseFn | None


class ErrorLog:
    """Logs unexpected per-frame errors: the traceback on the first occurrence of each type, then rate-limited."""

    def __init__(self, camera_id: str, every_s: float = _LOG_EVERY_S) -> None:
        self.camera_id = camera_id
        self.every_s = every_s
        self.counts: Counter[str] = Counter()
        self.last: str | None = None  # "Type: message" of the latest error, for the camera status
        self._last: dict[str, float] = {}

    def report(self, frame_index: int, exc: Exception, now: float) -> None:
        kind = type(exc).__qualname__
        self.counts[kind] += 1
        self.last = f"{kind}: {exc}"
        last = self._last.get(kind)
        if last is None:
            self._last[kind] = now
            log.error("camera %s: frame %d failed: %s: %s", self.camera_id, frame_index, kind, exc, exc_info=exc)
        elif now - last >= self.every_s:
            self._last[kind] = now
            n = self.counts[kind]
            log.error("camera %s: frame %d failed: %s: %s (%d so far)", self.camera_id, frame_index, kind, exc, n)


class CameraRunner:
    """Analyses the frames of one camera; owns its worker and its tracker/analytics state."""

    def __init__(
        self,
        camera_id: str,
        feed: FrameFeed,
        stages: CameraStages,
        timings: Timings,
        send: Callable[[Outgoing], None],
        unhealthy_after_s: float = 10.0,
        guide: GuidedDetector | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.feed = feed
        self.stages = stages
        self.timings = timings
        self.send = send
        self.unhealthy_after_s = unhealthy_after_s
        self.guide = guide
        self.classified_total = 0
        self.processed_total = 0
        self.faces_total = 0
        self.paused_total = 0
        self.bad_total = 0
        self.errors = ErrorLog(camera_id)
        self._last_bad_log = -1e9
        self._failing_since: float | None = None  # monotonic time of the first error since the last good frame

    # ----- the loop ------------------------------------------------------------------------------------------
    def poll(self, timeout: float, paused: bool) -> bool:
        """Take the newest frame (if any) and analyse it unless paused; True when a frame was taken."""
        frame = self.feed.latest(timeout)
        if frame is None:
            return False
        if paused:
            self.paused_total += 1
            return True
        try:
            self.process(frame)
        except EXPECTED_FRAME_ERRORS as exc:
            self._bad_frame(frame, exc)
        except Exception as exc:  # noqa: BLE001 - one failing frame never stops the loop; counted and surfaced
            now = time.monotonic()
            self.errors.report(frame.index, exc, now)
            if self._failing_since is None:
                self._failing_since = now
        else:
            self._failing_since = None
        return True

    def _bad_frame(self, frame: Frame, exc: Exception) -> None:
        self.bad_total += 1
        now = time.monotonic()
        if now - self._last_bad_log >= _LOG_EVERY_S:
            self._last_bad_log = now
            log.warning(
                "camera %s: frame %d unusable: %s (%d so far)", self.camera_id, frame.index, exc, self.bad_total
            )

    def process(self, frame: Frame) -> None:
        """Run every stage on one frame and send what the analytics produce (stage errors propagate)."""
        if self.guide is None:
            self._process_every_frame(frame)
        else:
            self._process_guided(frame, self.guide)

    def _process_guided(self, frame: Frame, guide: GuidedDetector) -> None:
        """Scheduled detection; the tracker's sampler picks the faces to classify (through `classify`)."""
        st = self.stages
        analytics: GuidedAnalyticsStage = st.analytics  # type: ignore[assignment]
        t0 = time.perf_counter()
        look = guide.detect(frame.image, frame.mono, analytics.hints(frame.mono))
        t1 = time.perf_counter()
        faces = [self._face(frame.image, det) for det in look.detections]
        t2 = time.perf_counter()
        spent = [0.0, 0]  # classification seconds and faces, measured inside the callback

        def classify(batch: Sequence[Face]) -> Sequence[Attributes]:
            c0 = time.perf_counter()
            assert st.classifier is not None
            out = st.classifier.classify(frame.image, [f.detection for f in batch])
            spent[0] += time.perf_counter() - c0
            spent[1] += len(batch)
            return out

        messages = analytics.update(faces, frame, classify if st.classifier is not None else None)
        t3 = time.perf_counter()
        for msg in messages:
            self.send(msg)
        t4 = time.perf_counter()
        tm = self.timings
        if look.ran:
            tm.detect.add_ms((t1 - t0) * 1e3)
            (tm.full_scan if look.plan.full else tm.region_search).add_ms((t1 - t0) * 1e3)
        if spent[1]:
            tm.classify.add_ms(spent[0] * 1e3)
            tm.classify_face.add_ms(spent[0] * 1e3 / int(spent[1]))
        self.classified_total += int(spent[1])
        tm.pose.add_ms((t2 - t1) * 1e3)
        tm.analytics.add_ms((t3 - t2 - spent[0]) * 1e3)
        self._finish(frame, len(faces), t0, t3, t4, bool(messages))

    def _face(self, image: np.ndarray, det: Detection) -> Face:
        """The detection with its pose (computed once, here) and its blur measure, for the sampler."""
        pose_fn = self.stages.pose_fn
        pose = pose_fn(det.keypoints) if pose_fn is not None else None
        h, w = image.shape[:2]
        return Face(det, None, pose, det.box.width, laplacian_variance(image, det.box), visible_fraction(det.box, w, h))

    def _process_every_frame(self, frame: Frame) -> None:
        st = self.stages
        t0 = time.perf_counter()
        detections = st.detector.detect(frame.image)
        t1 = time.perf_counter()
        attributes: Sequence[Attributes | None] = [None] * len(detections)
        if detections and st.classifier is not None:
            attributes = st.classifier.classify(frame.image, detections)
        t2 = time.perf_counter()
        faces = [
            Face(
                detection=det,
                attributes=attr,
                pose=st.pose_fn(det.keypoints) if st.pose_fn is not None else None,
                face_px=det.box.width,
            )
            for det, attr in zip(detections, attributes, strict=True)
        ]
        t3 = time.perf_counter()
        messages = st.analytics.update(faces, frame)
        t4 = time.perf_counter()
        for msg in messages:
            self.send(msg)
        t5 = time.perf_counter()
        self._record(frame, len(detections), (t0, t1, t2, t3, t4, t5), bool(messages))

    def _record(self, frame: Frame, n_faces: int, t: tuple[float, ...], sent: bool) -> None:
        tm = self.timings
        tm.detect.add_ms((t[1] - t[0]) * 1e3)
        if n_faces and self.stages.classifier is not None:
            tm.classify.add_ms((t[2] - t[1]) * 1e3)
            tm.classify_face.add_ms((t[2] - t[1]) * 1e3 / n_faces)
        tm.pose.add_ms((t[3] - t[2]) * 1e3)
        tm.analytics.add_ms((t[4] - t[3]) * 1e3)
        if n_faces and self.stages.classifier is not None:
            self.classified_total += n_faces
        self._finish(frame, n_faces, t[0], t[4], t[5], sent)

    def _finish(self, frame: Frame, n_faces: int, t_start: float, t_sent: float, t_end: float, sent: bool) -> None:
        tm = self.timings
        tm.publish.add_ms((t_end - t_sent) * 1e3)
        tm.total.add_ms((t_end - t_start) * 1e3)
        if sent:
            tm.capture_to_publish.add_ms((time.monotonic() - frame.mono) * 1e3)
        self.processed_total += 1
        self.faces_total += n_faces

    # ----- health, snapshots, reconfigure --------------------------------------------------------------------
    def healthy(self, now: float) -> bool:
        """False once every analysed frame has failed with an error for `unhealthy_after_s` seconds."""
        return self._failing_since is None or now - self._failing_since < self.unhealthy_after_s

    def snapshot(self, now: float) -> RunnerSnapshot:
        """This camera's counters (analysis and capture) as one frozen record for the stats reporter."""
        return RunnerSnapshot(
            camera_id=self.camera_id,
            capture=self.feed.snapshot(),
            processed=self.processed_total,
            faces=self.faces_total,
            paused=self.paused_total,
            bad=self.bad_total,
            errors=sum(self.errors.counts.values()),
            errors_by_type=tuple(sorted(self.errors.counts.items())),
            healthy=self.healthy(now),
            classified=self.classified_total,
            detection=self.guide.stats() if self.guide is not None else None,
        )

    def reconfigure(self, classifier: Classifier | None, analytics: AnalyticsStage) -> None:
        """Swap the classifier and analytics live: open visits end first (reason "reload") under the old ones."""
        self.flush("reload")
        if self.guide is not None:
            self.guide.reset()  # the new tracker starts empty: the next frame gets a full scan
        self.stages = CameraStages(self.stages.detector, classifier, analytics, self.stages.pose_fn)

    def flush(self, reason: str) -> None:
        """End open visits (shutdown, pause, reload) and send the resulting records."""
        try:
            for msg in self.stages.analytics.flush(reason):
                self.send(msg)
        except Exception:
            log.exception("camera %s: flushing tracks failed", self.camera_id)
