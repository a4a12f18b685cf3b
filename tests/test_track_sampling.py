"""Per-visit attribute sampling: rate per track, quality order, stop when confident, nothing under the size rule."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from edge_agent.analytics.synthetic import head, make_face
from edge_agent.records import Attributes, Face
from edge_agent.track.config import SamplingConfig, TrackerConfig
from edge_agent.track.events import HeadSpec, TrackEnd
from edge_agent.track.sampling import face_sharpness
from edge_agent.track.tracker import Tracker
from tests.fixtures.media import astronaut_bgr

GENDER = ("male", "female")
SPEC = HeadSpec(labels={"gender": GENDER})
FPS = 30.0


class Recorder:
    """The classifier edge of the tracker: records which faces it was asked for, answers with a fixed belief."""

    def __init__(self, p_female: float = 0.55) -> None:
        self.calls: list[tuple[float, list[Face]]] = []
        self.p = p_female
        self.t = 0.0

    def __call__(self, faces: Sequence[Face]) -> list[Attributes]:
        self.calls.append((self.t, list(faces)))
        return [Attributes(gender=head(GENDER, 1, self.p)) for _ in faces]

    @property
    def n(self) -> int:
        return sum(len(f) for _, f in self.calls)


def _run(tracker: Tracker, frames: list[list[Face]], rec: Recorder) -> list:
    events = []
    for i, faces in enumerate(frames):
        rec.t = 100.0 + i / FPS
        events += tracker.update(faces, rec.t, classify=rec)
    return events


def _cfg(**sampling: object) -> TrackerConfig:
    return TrackerConfig(sampling=SamplingConfig(**sampling))


def test_at_most_n_classifications_per_second_per_track() -> None:
    rec = Recorder()
    tracker = Tracker(_cfg(max_rate_hz=3.0, max_samples=1000, stop_margin=1.0), SPEC)
    frames = [[make_face(150 + i, width=120), make_face(450 - i, width=110)] for i in range(int(4 * FPS))]
    _run(tracker, frames, rec)
    for x in (150, 450):  # per track: bucket its calls by whole seconds
        times = [t for t, faces in rec.calls for f in faces if abs(f.detection.box.center[0] - x) < 130]
        per_second = np.bincount(np.floor(np.asarray(times) - 100.0).astype(int))
        assert per_second.max() <= 3
        assert len(times) >= 10  # and it does keep sampling at that rate (4 s x 3 Hz, minus the start)


def test_every_frame_mode_classifies_every_big_face_on_every_frame() -> None:
    rec = Recorder()
    tracker = Tracker(_cfg(mode="every_frame"), SPEC)
    _run(tracker, [[make_face(200, width=120), make_face(500, width=100)] for _ in range(20)], rec)
    assert rec.n == 40


def test_best_quality_face_goes_first_when_the_frame_budget_is_short() -> None:
    rec = Recorder()
    tracker = Tracker(_cfg(max_per_frame=1, max_rate_hz=1.0), SPEC)
    # Same frame: a small turned face, a big frontal one, a medium one.
    faces = [make_face(100, width=50, yaw=40.0), make_face(330, width=140), make_face(550, width=80, yaw=10.0)]
    _run(tracker, [faces] * 3, rec)
    order = [f[0].detection.box.center[0] for _, f in rec.calls]
    assert order == [330, 550, 100]  # one per frame, best quality first


def test_a_track_is_sampled_on_its_good_frames() -> None:
    rec = Recorder()
    tracker = Tracker(_cfg(max_rate_hz=10.0, quality_ratio=0.7, max_samples=1000, stop_margin=1.0), SPEC)
    # Alternating: 4 frames frontal, 4 turned away (yaw 70, low quality), ... for 4 s.
    frames = [[make_face(320, width=120, yaw=70.0 if (i // 4) % 2 else 0.0)] for i in range(int(4 * FPS))]
    _run(tracker, frames, rec)
    yaws = [abs(f[0].pose.yaw) for _, f in rec.calls]
    assert len(yaws) >= 10 and all(y < 20 for y in yaws)  # never a turned-away frame while frontal ones come


def test_sampling_stops_once_the_visit_is_confident() -> None:
    confident, unsure = Recorder(p_female=0.95), Recorder(p_female=0.62)
    for rec in (confident, unsure):
        tracker = Tracker(_cfg(min_samples=4, max_samples=12, stop_margin=0.2), SPEC)
        ends = [
            e
            for e in _run(tracker, [[make_face(320)]] * int(8 * FPS), rec) + tracker.flush()
            if isinstance(e, TrackEnd)
        ]
        assert len(ends) == 1 and ends[0].attributes.gender is not None
        assert ends[0].attributes.gender.label == "female"
    assert confident.n == 4  # 0.95 >= 0.6 + 0.2 after the minimum
    assert unsure.n == 12  # 0.62 never clears 0.8: stops at max_samples


def test_faces_under_the_size_threshold_are_never_classified() -> None:
    rec = Recorder()
    tracker = Tracker(_cfg(), SPEC)  # min_face_px 40
    events = _run(tracker, [[make_face(320, width=30), make_face(100, width=39)]] * 60, rec) + tracker.flush()
    assert rec.n == 0
    ends = [e for e in events if isinstance(e, TrackEnd)]
    assert len(ends) == 2
    assert all(e.attributes.gender.label == "unknown" and e.attributes.gender.reason == "small_face" for e in ends)


def test_switched_off_heads_mean_no_classification_at_all() -> None:
    rec = Recorder()
    tracker = Tracker(_cfg(), HeadSpec())  # every head off
    _run(tracker, [[make_face(320, width=120)]] * 30, rec)
    assert rec.n == 0


def test_real_classifier_runs_only_for_big_faces(packaged_classifier) -> None:
    """Counting real int8 inferences: a 30 px face next to a 120 px one over 2 s."""
    img = astronaut_bgr()
    calls = []
    real_predict = packaged_classifier.model.predict

    def counting_predict(*args, **kwargs):
        calls.append(1)
        return real_predict(*args, **kwargs)

    packaged_classifier.model.predict = counting_predict
    meta = packaged_classifier.metadata
    tracker = Tracker(_cfg(max_rate_hz=3.0), HeadSpec.from_metadata(meta, packaged_classifier.enabled))

    def classify(faces: Sequence[Face]) -> list[Attributes]:
        return packaged_classifier.classify(img, [f.detection for f in faces])

    for i in range(60):
        tracker.update([make_face(250, width=120), make_face(420, width=30)], 100.0 + i / FPS, classify=classify)
    assert 1 <= len(calls) <= 7  # the big face only, at most 3 per second over 2 s (+1 at the start)
    assert tracker.stats()["classify_too_small"] == 60


def test_sharpness_falls_with_blur() -> None:
    import cv2

    img = astronaut_bgr()
    from edge_agent.records import Box

    box = Box(178, 81, 272, 175)
    sharp = face_sharpness(img, box, 300.0)
    blurred = face_sharpness(cv2.GaussianBlur(img, (0, 0), 6.0), box, 300.0)
    assert sharp > 0.5 > blurred


@pytest.fixture
def packaged_classifier():
    from edge_agent.classify import PACKAGED_MODEL, AttributeClassifier

    if not PACKAGED_MODEL.is_file():
        pytest.skip("packaged attribute model missing")
    clf = AttributeClassifier(PACKAGED_MODEL, ("age", "gender"))
    yield clf
    clf.close()
