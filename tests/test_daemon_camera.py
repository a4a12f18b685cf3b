"""The camera loop's seams: real detector, classifier and analytics on real face photos; errors that surface.

The only stand-ins are at the loop's edges: a frame feed that hands over prepared frames (the capture worker has
its own tests) and, where a test needs a stage that breaks, a stage that raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.capture.status import CaptureSnapshot, CaptureStatus
from edge_agent.daemon import builders
from edge_agent.daemon.camera import CameraRunner, CameraStages, Timings
from edge_agent.daemon.sinks import Outgoing
from edge_agent.detect.base import FaceDetector
from edge_agent.detect.config import DetectorConfig
from edge_agent.records import Face, Frame, TrackHint
from edge_agent.track.config import TrackerConfig
from tests.fixtures.media import astronaut_bgr
from tests.test_e2e import models_dir  # noqa: F401 - the session fixture that pulls the detector models

ATTRIBUTE_MODEL = Path(__file__).resolve().parents[1] / "edge_agent" / "models" / "attributes_int8.tflite"


class ListFeed:
    """Hands out the given frames one per latest() call, then nothing (the edge of the loop)."""

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = list(frames)

    @property
    def status(self) -> CaptureStatus:
        return CaptureStatus("online", time.time())

    @property
    def finished(self) -> bool:
        return not self.frames

    def latest(self, timeout: float | None = None) -> Frame | None:
        return self.frames.pop(0) if self.frames else None

    def snapshot(self) -> CaptureSnapshot:
        return CaptureSnapshot("online", 0, 0, 0, 0, 0.0)


class Recording:
    """An analytics stage that keeps the faces it is given (wraps nothing: the test reads what the runner built)."""

    def __init__(self) -> None:
        self.faces: list[list[Face]] = []

    def hints(self, t: float) -> list[TrackHint]:
        return []

    def update(self, faces: list[Face], frame: Frame, classify: object = None) -> list[Outgoing]:
        self.faces.append(list(faces))
        return []

    def flush(self, reason: str) -> list[Outgoing]:
        return []


class Broken:
    """An analytics stage with a programming error."""

    def hints(self, t: float) -> list[TrackHint]:
        return []

    def update(self, faces: list[Face], frame: Frame, classify: object = None) -> list[Outgoing]:
        raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")

    def flush(self, reason: str) -> list[Outgoing]:
        return []


@pytest.fixture(scope="module")
def detector(models_dir: Path) -> Iterator[FaceDetector]:  # noqa: F811
    det = builders.detector(DetectorConfig(models_dir=models_dir))
    yield det
    det.close()


def frames(n: int, image: np.ndarray | None = None) -> list[Frame]:
    img = astronaut_bgr() if image is None else image
    # 10 fps, all captured before the test reads them (capture time never lies in the future)
    now, mono = time.time() - n * 0.1, time.monotonic() - n * 0.1
    return [Frame("cam0", i, now + i * 0.1, mono + i * 0.1, img) for i in range(n)]


def runner_with(detector: FaceDetector, analytics: object, feed: ListFeed, classifier: object = None) -> CameraRunner:
    stages = CameraStages(detector, classifier, analytics, builders.pose_fn())  # type: ignore[arg-type]
    sent: list[Outgoing] = []
    return CameraRunner("cam0", feed, stages, Timings(), sent.append, unhealthy_after_s=0.2)


def test_each_face_carries_its_width_pose_and_attributes_into_analytics(detector: FaceDetector) -> None:
    from edge_agent.classify.config import AttributesConfig
    from edge_agent.daemon.builders import classifier

    clf, _ = classifier(AttributesConfig(model=ATTRIBUTE_MODEL))
    assert clf is not None
    rec = Recording()
    runner = runner_with(detector, rec, ListFeed(frames(2)), clf)
    try:
        while runner.poll(0.0, paused=False):
            pass
    finally:
        clf.close()
    assert runner.processed_total == 2 and runner.faces_total == 2
    face = rec.faces[0][0]
    assert face.face_px == pytest.approx(face.detection.box.width) and face.face_px > 60  # a 512 px portrait
    assert face.pose is not None and abs(face.pose.yaw) < 45
    assert face.attributes is not None and face.attributes.gender is not None


def test_face_width_decides_whether_a_visit_gets_attributes(detector: FaceDetector) -> None:
    """Through the real analytics: faces wider than the threshold are classified, narrower ones never are."""
    from edge_agent.analytics.config import AnalyticsConfig
    from edge_agent.classify.config import AttributesConfig
    from edge_agent.daemon.builders import camera_analytics, classifier

    clf, meta = classifier(AttributesConfig(model=ATTRIBUTE_MODEL, age=False, race=False))
    assert clf is not None
    ends = {}
    try:
        for threshold in (40.0, 4000.0):
            analytics = camera_analytics(
                "cam0", TrackerConfig(min_face_px=threshold), AnalyticsConfig(), meta, ("gender",)
            )
            sent: list[Outgoing] = []
            stages = CameraStages(detector, clf, analytics, builders.pose_fn())
            runner = CameraRunner("cam0", ListFeed(frames(6)), stages, Timings(), sent.append)
            while runner.poll(0.0, paused=False):
                pass
            runner.flush("shutdown")
            ends[threshold] = [m.payload for m in sent if m.payload.get("event") == "end"]
    finally:
        clf.close()
    # Classified (a probability; published, or `unknown` only for low confidence) against never classified.
    big, small = ends[40.0][0]["attributes"]["gender"], ends[4000.0][0]["attributes"]["gender"]
    assert big.get("p") is not None and big.get("reason") in (None, "low_confidence"), big
    assert small["label"] == "unknown" and small.get("reason") == "small_face" and small.get("p") is None, small


def test_an_unusable_frame_is_counted_bad_not_as_an_error(detector: FaceDetector) -> None:
    empty = Frame("cam0", 0, time.time(), time.monotonic(), np.zeros((0, 0, 3), np.uint8))
    rec = Recording()
    runner = runner_with(detector, rec, ListFeed([empty, *frames(1)]))
    while runner.poll(0.0, paused=False):
        pass
    snap = runner.snapshot(time.monotonic())
    assert (snap.bad, snap.errors, snap.processed) == (1, 0, 1)
    assert snap.healthy


def test_a_programming_error_is_counted_as_error_with_one_traceback_per_type(
    detector: FaceDetector, caplog: pytest.LogCaptureFixture
) -> None:
    runner = runner_with(detector, Broken(), ListFeed(frames(5)))
    with caplog.at_level(logging.ERROR, logger="edge_agent.daemon.camera"):
        while runner.poll(0.0, paused=False):
            pass
    snap = runner.snapshot(time.monotonic())
    assert (snap.errors, snap.bad, snap.processed) == (5, 0, 0)
    assert snap.errors_by_type == (("TypeError", 5),)
    with_tb = [r for r in caplog.records if r.exc_info]
    assert len(with_tb) == 1 and with_tb[0].exc_info[0] is TypeError  # type: ignore[index]
    assert "TypeError" in (runner.errors.last or "")


def test_a_camera_whose_every_frame_fails_turns_unhealthy_and_recovers_on_a_good_frame(detector: FaceDetector) -> None:
    feed = ListFeed(frames(3))
    runner = runner_with(detector, Broken(), feed)
    runner.poll(0.0, paused=False)
    assert runner.healthy(time.monotonic())  # one failure is not yet a failing camera
    time.sleep(0.25)
    runner.poll(0.0, paused=False)
    assert not runner.healthy(time.monotonic()) and not runner.snapshot(time.monotonic()).healthy
    runner.reconfigure(None, Recording())
    runner.poll(0.0, paused=False)
    assert runner.healthy(time.monotonic())


def test_paused_frames_are_taken_but_never_analysed(detector: FaceDetector) -> None:
    rec = Recording()
    runner = runner_with(detector, rec, ListFeed(frames(3)))
    while runner.poll(0.0, paused=True):
        pass
    assert runner.paused_total == 3 and runner.processed_total == 0 and not rec.faces


def test_reconfigure_ends_open_visits_under_the_old_analytics_then_uses_the_new(detector: FaceDetector) -> None:
    from edge_agent.analytics.config import AnalyticsConfig

    old = builders.camera_analytics("cam0", TrackerConfig(), AnalyticsConfig(), None, ())
    sent: list[Outgoing] = []
    runner = CameraRunner("cam0", ListFeed(frames(6)), CameraStages(detector, None, old, None), Timings(), sent.append)
    for _ in range(5):  # enough frames for the tracker to confirm the visit
        runner.poll(0.0, paused=False)
    new = Recording()
    runner.reconfigure(None, new)
    ends = [m.payload for m in sent if m.payload.get("event") == "end"]
    assert [e["reason"] for e in ends] == ["reload"]
    runner.poll(0.0, paused=False)
    assert len(new.faces) == 1 and runner.stages.analytics is new


class Spy:
    """The real per-camera analytics, recording the faces the guided loop hands it (hints pass straight through)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.faces: list[list[Face]] = []

    def hints(self, t: float) -> list[TrackHint]:
        return self.inner.hints(t)  # type: ignore[no-any-return]

    def update(self, faces: list[Face], frame: Frame, classify: object = None) -> list[Outgoing]:
        self.faces.append(list(faces))
        return self.inner.update(faces, frame, classify)  # type: ignore[no-any-return]

    def flush(self, reason: str) -> list[Outgoing]:
        return self.inner.flush(reason)  # type: ignore[no-any-return]


def test_the_guided_loop_scans_follows_classifies_and_carries_face_width(models_dir: Path) -> None:  # noqa: F811
    """The default path: full scans at the cadence, region searches between, per-visit classification."""
    from edge_agent.analytics.config import AnalyticsConfig
    from edge_agent.capture.config import CameraConfig
    from edge_agent.classify.config import AttributesConfig

    det_cfg = DetectorConfig(models_dir=models_dir)
    full = builders.detector(det_cfg)
    region = builders.region_finder(det_cfg)
    cam = CameraConfig.model_validate({"id": "cam0", "source": {"type": "demo"}})
    guide = builders.guided_detector(det_cfg, cam, full, region)
    clf, meta = builders.classifier(AttributesConfig(model=ATTRIBUTE_MODEL, race=False))
    assert guide is not None and clf is not None
    tracking = TrackerConfig(min_age_years=0)  # no minors gating: the end record carries its attributes
    spy = Spy(builders.camera_analytics("cam0", tracking, AnalyticsConfig(), meta, ("age", "gender")))
    sent: list[Outgoing] = []
    timings = Timings()
    stages = CameraStages(full, clf, spy, builders.pose_fn())
    runner = CameraRunner("cam0", ListFeed(frames(30)), stages, timings, sent.append, guide=guide)
    try:
        while runner.poll(0.0, paused=False):
            pass
        runner.flush("shutdown")
    finally:
        clf.close()
        full.close()
        if region is not None:
            region.close()
    assert runner.processed_total == 30 and not runner.errors.counts
    seen = [f for batch in spy.faces for f in batch]
    assert seen and all(f.face_px == pytest.approx(f.detection.box.width) and f.face_px > 60 for f in seen)
    assert all(f.pose is not None for f in seen)
    assert timings.full_scan.count >= 1 and timings.region_search.count >= 1  # both kinds of look happened
    pose_ms = timings.pose.percentiles().p50
    assert pose_ms is not None and 0.005 < pose_ms < 500  # pose and blur of each face, in ms
    assert timings.full_scan.count < 30  # not a full scan on every frame
    assert 1 <= runner.classified_total < 30  # sampled per visit, not every frame
    assert timings.classify_face.count >= 1
    end = next(m.payload for m in sent if m.payload.get("event") == "end")
    assert end["attributes"]["gender"]["p"] is not None and end["samples"] >= 1
    snap = runner.snapshot(time.monotonic())
    assert snap.classified == runner.classified_total and snap.processed == 30
