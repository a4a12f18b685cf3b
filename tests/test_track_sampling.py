"""Per-visit attribute sampling: rate per track, quality order, stop when confident, nothing under the size rule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from edge_agent.analytics.synthetic import head, make_face
from edge_agent.records import Attributes, Box, Detection, Face, Pose
from edge_agent.track.config import SamplingConfig, TrackerConfig
from edge_agent.track.events import HeadSpec, TrackEnd
from edge_agent.track.sampling import (
    AttributeSampler,
    Candidate,
    SampleState,
    face_quality,
    face_sharpness,
    laplacian_variance,
    sharpness_score,
    visible_fraction,
)
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
    views = packaged_classifier.views_per_face  # a test-time-flip model runs each face and its mirror
    assert views <= len(calls) <= 7 * views  # the big face only, at most 3 per second over 2 s (+1 at the start)
    assert len(calls) % views == 0
    assert tracker.stats()["classify_too_small"] == 60


def test_sharpness_falls_with_blur() -> None:
    img = astronaut_bgr()
    box = Box(178, 81, 272, 175)
    sharp = face_sharpness(img, box, 300.0)
    blurred = face_sharpness(cv2.GaussianBlur(img, (0, 0), 6.0), box, 300.0)
    assert sharp > 0.5 > blurred


# ---- the blur measure ---------------------------------------------------------------------------------------------


def _noise(h: int = 64, w: int = 64) -> np.ndarray:
    """Deterministic BGR noise: every crop of it differs from its neighbours, so every pixel counts."""
    return np.random.default_rng(7).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _cv2_variance(patch: np.ndarray) -> float:
    """The blur measure computed straight with cv2: 32x32 by area averaging, grey, CV_32F Laplacian, variance."""
    small = cv2.resize(patch, (32, 32), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def test_laplacian_variance_is_measured_on_the_area_resized_grey_patch() -> None:
    img = astronaut_bgr()
    patch = img[81:175, 178:272]  # the box below: x1, y1 floored, x2, y2 ceiled
    got = laplacian_variance(img, Box(178.6, 81.4, 271.2, 174.5))
    assert got == pytest.approx(_cv2_variance(patch), rel=1e-6)
    # The choices matter on this face: bilinear resize, the colour channels, or a uint8 Laplacian all measure else.
    linear = cv2.resize(patch, (32, 32), interpolation=cv2.INTER_LINEAR)
    assert float(cv2.Laplacian(cv2.cvtColor(linear, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var()) > 1.3 * got
    area = cv2.resize(patch, (32, 32), interpolation=cv2.INTER_AREA)
    assert abs(float(cv2.Laplacian(area, cv2.CV_32F).var()) - got) > 50.0
    assert float(cv2.Laplacian(cv2.cvtColor(area, cv2.COLOR_BGR2GRAY), cv2.CV_8U).var()) < 0.6 * got


def test_laplacian_variance_of_a_grey_image_uses_it_as_is() -> None:
    grey = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    got = laplacian_variance(grey, Box(178, 81, 272, 175))
    assert got == pytest.approx(_cv2_variance(grey[81:175, 178:272]), rel=1e-6)
    assert got > 1000.0


def test_laplacian_variance_includes_the_first_row_and_column() -> None:
    img = _noise()
    expected = _cv2_variance(img[0:40, 0:40])
    assert _cv2_variance(img[1:40, 0:40]) != pytest.approx(expected, rel=1e-3)  # row 0 changes the measure
    assert _cv2_variance(img[0:40, 1:40]) != pytest.approx(expected, rel=1e-3)  # and so does column 0
    assert laplacian_variance(img, Box(0, 0, 40, 40)) == pytest.approx(expected, rel=1e-6)
    assert laplacian_variance(img, Box(-6.5, -3.2, 40, 40)) == pytest.approx(expected, rel=1e-6)  # clipped at 0


def test_laplacian_variance_measures_boxes_from_4px_on() -> None:
    img = _noise()
    wide4 = laplacian_variance(img, Box(10, 20, 14, 30))  # 4 x 10 px: measured
    tall4 = laplacian_variance(img, Box(20, 10, 30, 14))  # 10 x 4 px: measured
    assert wide4 == pytest.approx(_cv2_variance(img[20:30, 10:14]), rel=1e-6) and wide4 > 0.0
    assert tall4 == pytest.approx(_cv2_variance(img[10:14, 20:30]), rel=1e-6) and tall4 > 0.0
    # One pixel less on either side, anywhere in the frame: not measured.
    assert laplacian_variance(img, Box(10, 20, 13, 30)) == 0.0
    assert laplacian_variance(img, Box(20, 10, 30, 13)) == 0.0
    assert laplacian_variance(img, Box(0, 0, 3, 3)) == 0.0
    assert laplacian_variance(img, Box(61, 10, 70, 30)) == 0.0  # 3 px left after clipping to the frame


def test_laplacian_variance_that_is_not_finite_measures_zero() -> None:
    img = np.zeros((40, 40, 3), np.float32)
    img[::2, ::2] = 200.0
    assert laplacian_variance(img, Box(0, 0, 40, 40)) > 0.0  # a float image is measured like any other
    img[20, 20] = np.nan
    assert laplacian_variance(img, Box(0, 0, 40, 40)) == 0.0
    img[20, 20] = np.inf
    with np.errstate(invalid="ignore"):  # inf - inf in the Laplacian's variance
        assert laplacian_variance(img, Box(0, 0, 40, 40)) == 0.0


def test_sharpness_score_maps_variance_to_0_1() -> None:
    assert sharpness_score(None, 300.0) is None
    assert sharpness_score(300.0, 300.0) == 0.5
    assert sharpness_score(100.0, 300.0) == 0.25
    assert sharpness_score(900.0, 300.0) == 0.75
    assert sharpness_score(1.0, 300.0) == 1.0 / 301.0  # any positive variance counts
    assert sharpness_score(0.5, 300.0) == 0.5 / 300.5
    assert sharpness_score(0.0, 300.0) == 0.0
    assert sharpness_score(-50.0, 300.0) == 0.0  # not a variance: 0, never outside 0-1
    assert sharpness_score(math.nan, 300.0) == 0.0


def test_face_sharpness_is_the_mapped_variance_and_zero_when_unmeasurable() -> None:
    img = astronaut_bgr()
    box = Box(178, 81, 272, 175)
    v = _cv2_variance(img[81:175, 178:272])
    assert face_sharpness(img, box, 300.0) == pytest.approx(v / (v + 300.0), rel=1e-6)
    assert face_sharpness(np.full((64, 64, 3), 128, np.uint8), Box(10, 10, 50, 50), 300.0) == 0.0  # flat
    assert face_sharpness(img, Box(10, 10, 12, 40), 300.0) == 0.0  # too narrow to measure


# ---- how much of the face's crop is in the frame ---------------------------------------------------------------


def test_visible_fraction_of_a_face_inside_and_cut_by_the_edge() -> None:
    assert visible_fraction(Box(200, 100, 280, 180), 640, 480) == pytest.approx(1.0)
    # 80 px face at the left edge: its 120 px square (margin 0.25) spans x -40..80, y 80..200 -> 80 x 120 inside.
    assert visible_fraction(Box(-20, 100, 60, 180), 640, 480) == pytest.approx(2.0 / 3.0)
    # Centred on the bottom edge (height is the clip limit there): the square spans y 420..540, half of it inside.
    assert visible_fraction(Box(200, 440, 280, 520), 640, 480) == pytest.approx(0.5)
    # Margin 0: the square is the face itself, 60 x 80 of it inside.
    assert visible_fraction(Box(-20, 100, 60, 180), 640, 480, margin=0.0) == pytest.approx(0.75)


def test_visible_fraction_of_tiny_and_empty_boxes() -> None:
    assert visible_fraction(Box(10, 10, 10.4, 10.4), 640, 480) == pytest.approx(1.0)  # square of 0.36 px^2
    assert visible_fraction(Box(10, 10, 10, 10), 640, 480) == 0.0  # no area: nothing to see


# ---- face quality ---------------------------------------------------------------------------------------------------


def _face(
    face_px: float = 50.0,
    width: float = 80.0,
    score: float = 0.8,
    sharpness: float | None = None,
    visible: float = 1.0,
    pose: Pose | None = None,
) -> Face:
    box = Box(100.0, 100.0, 100.0 + width, 100.0 + width)
    det = Detection(box=box, score=score, keypoints=np.zeros((6, 2), np.float32))
    return Face(detection=det, attributes=None, pose=pose, face_px=face_px, sharpness=sharpness, visible=visible)


def test_face_quality_uses_face_px_and_falls_back_to_the_box_width() -> None:
    assert face_quality(_face(face_px=50.0), 100.0, 300.0) == pytest.approx(0.8 * 0.5)
    assert face_quality(_face(face_px=1.0), 100.0, 300.0) == pytest.approx(0.8 * 0.01)
    assert face_quality(_face(face_px=0.0), 100.0, 300.0) == pytest.approx(0.8 * 0.8)  # not given: box width 80
    assert face_quality(_face(face_px=50.0, pose=Pose(yaw=60.0, pitch=0.0)), 100.0, 300.0) == pytest.approx(0.2)


def test_face_quality_counts_sharpness_when_measured() -> None:
    # Variance 100 at ref 300 is sharpness 0.25: the weight halves (2 x 0.25); at 150 or above it is not reduced.
    assert face_quality(_face(sharpness=100.0), 100.0, 300.0) == pytest.approx(0.8 * 0.5 * 0.5)
    assert face_quality(_face(sharpness=100.0), 100.0, 100.0) == pytest.approx(0.8 * 0.5)
    assert face_quality(_face(sharpness=0.0), 100.0, 300.0) == 0.0
    assert face_quality(_face(sharpness=None), 100.0, 300.0) == pytest.approx(0.8 * 0.5)


def test_face_quality_falls_with_the_square_of_the_visible_fraction() -> None:
    assert face_quality(_face(visible=0.5), 100.0, 300.0) == pytest.approx(0.8 * 0.5 * 0.25)
    assert face_quality(_face(visible=0.8), 100.0, 300.0) == pytest.approx(0.8 * 0.5 * 0.64)
    assert face_quality(_face(visible=0.0), 100.0, 300.0) == 0.0


# ---- the sampler's decisions --------------------------------------------------------------------------------------


def _sampler(**sampling: object) -> AttributeSampler:
    return AttributeSampler(_cfg(**sampling))  # min_face_px 40


def _cand(quality: float, state: SampleState | None = None, face_px: float = 100.0, index: int = 0) -> Candidate:
    return Candidate(index=index, state=state if state is not None else SampleState(), quality=quality, face_px=face_px)


def test_choose_takes_a_face_exactly_min_face_px_wide() -> None:
    sampler = _sampler()
    at, under = _cand(0.5, face_px=40.0, index=0), _cand(0.9, face_px=39.9, index=1)
    assert sampler.choose(0.0, [at, under]) == [at]
    assert (sampler.too_small, sampler.chosen, sampler.held_back) == (1, 1, 0)
    assert under.state.best_quality == 0.0 and at.state.best_quality == 0.5  # a too-small face is not a sample


def test_choose_counters_accumulate_over_frames() -> None:
    sampler = _sampler(max_per_frame=2)
    for t in (0.0, 1.0):  # fresh visits each frame: all eligible, the budget holds one back
        cands = [_cand(q, face_px=px, index=i) for i, (q, px) in enumerate([(0.9, 60), (0.3, 80), (0.6, 40), (1, 20)])]
        assert [c.index for c in sampler.choose(t, cands)] == [0, 2]
    assert (sampler.chosen, sampler.held_back, sampler.too_small) == (4, 2, 2)


def test_a_visit_at_max_samples_is_not_eligible() -> None:
    sampler = _sampler(max_samples=5, max_wait_s=1.0)
    assert not sampler._eligible(100.0, _cand(0.9, SampleState(samples=5, last_t=0.0, best_quality=0.5)))
    assert sampler._eligible(100.0, _cand(0.9, SampleState(samples=4, last_t=0.0, best_quality=0.5)))


def test_rate_limit_allows_a_sample_exactly_one_period_later() -> None:
    sampler = _sampler(max_rate_hz=4.0, max_wait_s=1.0, quality_ratio=0.5, max_samples=100)

    def eligible(since: float) -> bool:
        return sampler._eligible(since, _cand(0.9, SampleState(samples=1, last_t=0.0, best_quality=0.9)))

    assert eligible(0.25)  # one period
    assert eligible((1.0 - 1e-3) / 4.0)  # the slack: a thousandth of a period early
    assert not eligible(0.2495)
    assert not eligible(0.1)


def test_a_low_quality_face_waits_until_max_wait_s() -> None:
    sampler = _sampler(max_rate_hz=4.0, max_wait_s=1.0, quality_ratio=0.5, max_samples=100)

    def eligible(t: float, samples: int = 1) -> bool:
        state = SampleState(samples=samples, last_t=0.0 if samples else -math.inf, best_quality=0.9)
        return sampler._eligible(t, _cand(0.1, state))  # 0.1 < 0.5 x 0.9

    assert not eligible(0.5)
    assert not eligible(0.999)
    assert eligible(1.0)  # exactly max_wait_s
    assert eligible(2.0)
    assert eligible(0.5, samples=0)  # a visit's first sample is taken whatever its quality


def test_quality_ratio_of_the_best_seen_is_enough() -> None:
    sampler = _sampler(max_rate_hz=4.0, max_wait_s=10.0, quality_ratio=0.5, max_samples=100)

    def eligible(quality: float) -> bool:
        return sampler._eligible(1.0, _cand(quality, SampleState(samples=2, last_t=0.0, best_quality=0.8)))

    assert eligible(0.4)  # exactly 0.5 x 0.8
    assert eligible(0.5)
    assert not eligible(0.39)


def test_sampled_stops_at_max_samples() -> None:
    sampler = _sampler(min_samples=1, max_samples=2, stop_margin=0.15)
    state = SampleState()
    sampler.sampled(state, 1.0, margin=0.0)
    assert (state.samples, state.last_t, state.done) == (1, 1.0, False)
    sampler.sampled(state, 2.0, margin=0.0)
    assert (state.samples, state.last_t, state.done) == (2, 2.0, True)  # never settled, but that is all it gets


def test_sampled_stops_when_the_margin_reaches_stop_margin() -> None:
    sampler = _sampler(min_samples=2, max_samples=30, stop_margin=0.25)
    state = SampleState()
    sampler.sampled(state, 1.0, margin=0.25)
    assert not state.done  # confident, but under min_samples
    sampler.sampled(state, 2.0, margin=0.2499)
    assert not state.done
    sampler.sampled(state, 3.0, margin=0.25)  # exactly stop_margin
    assert state.done


def test_sampled_in_every_frame_mode_never_stops() -> None:
    sampler = _sampler(mode="every_frame", min_samples=1, max_samples=1)
    state = SampleState()
    for t in (1.0, 2.0):
        sampler.sampled(state, t, margin=1.0)
    assert (state.samples, state.last_t, state.done) == (2, 2.0, False)


@pytest.fixture
def packaged_classifier():
    from edge_agent.classify import PACKAGED_MODEL, AttributeClassifier

    if not PACKAGED_MODEL.is_file():
        pytest.skip("packaged attribute model missing")
    clf = AttributeClassifier(PACKAGED_MODEL, ("age", "gender"))
    yield clf
    clf.close()
