"""Tracker motion, association and bookkeeping, pinned exactly (found by mutation testing, see TESTING.md).

Velocities are read back through `hints`: the box predicted 0.25 s after the last detection is the last box moved
by 0.25 s of the smoothed velocity.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from edge_agent.analytics.synthetic import make_face
from edge_agent.records import Attributes, Box, Face, HeadResult, Pose
from edge_agent.track.aggregate import AttributeAccumulator
from edge_agent.track.attention import AttentionMeter
from edge_agent.track.config import AttentionConfig, TrackerConfig
from edge_agent.track.events import HeadEstimate, HeadSpec, TrackEnd, TrackEvent, TrackNew, TrackUpdate
from edge_agent.track.tracker import Tracker, _greedy, _Track, _valid

LOGGER = "edge_agent.track.tracker"
GENDER_SPEC = HeadSpec(labels={"gender": ("male", "female")})
AHEAD = 0.25  # how far ahead `velocity` looks (within the default max_missed_s of 0.5)


def velocities(tracker: Tracker) -> list[tuple[float, float]]:
    """Smoothed centre velocity (px/s) of each track seen within max_missed_s, oldest track first."""
    out = []
    for hint in tracker.hints(-math.inf):  # a time before every detection: the boxes as last seen
        (ahead,) = [h for h in tracker.hints(hint.last_seen + AHEAD) if h.track_id == hint.track_id]
        (x0, y0), (x1, y1) = hint.box.center, ahead.box.center
        out.append(((x1 - x0) / AHEAD, (y1 - y0) / AHEAD))
    return out


def velocity(tracker: Tracker) -> tuple[float, float]:
    (v,) = velocities(tracker)
    return v


def centres(tracker: Tracker) -> list[float]:
    """x centre of each present track's box, oldest first."""
    return [view.box.center[0] for view in tracker.present()]


def feed(tracker: Tracker, t: float, *faces: Face) -> list[TrackEvent]:
    return tracker.update(list(faces), t, t)


def face_at(cx: float, cy: float = 240.0, **kw: Any) -> Face:
    return make_face(cx, cy, **kw)


def with_box(face: Face, box: Box) -> Face:
    return replace(face, detection=replace(face.detection, box=box))


def gender(p_female: float) -> Attributes:
    return Attributes(gender=HeadResult(("male", "female"), (1.0 - p_female, p_female)))


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


# ---- velocity: measured on the second detection, then smoothed by 0.7 ---------------------------------------------


def test_a_single_detection_has_no_velocity() -> None:
    tracker = Tracker(TrackerConfig(), HeadSpec())
    feed(tracker, 10.0, face_at(300.0))
    (hint,) = tracker.hints(10.25)
    assert hint.box == face_at(300.0).detection.box and hint.speed == 0.0
    assert velocity(tracker) == (0.0, 0.0)


def test_the_second_detection_sets_the_velocity_and_later_ones_move_it_by_0_7_of_the_difference() -> None:
    tracker = Tracker(TrackerConfig(iou_threshold=0.1), HeadSpec())
    feed(tracker, 10.0, face_at(300.0, 240.0))
    feed(tracker, 10.25, face_at(330.0, 225.0))  # 30 px right and 15 px up in 0.25 s
    assert velocity(tracker) == pytest.approx((120.0, -60.0))
    assert tracker.hints(10.25)[0].speed == pytest.approx(math.hypot(120.0, 60.0) / 120.0)
    feed(tracker, 10.5, face_at(390.0, 225.0))  # measured (240, 0): 0.7 of the way from (120, -60)
    assert velocity(tracker) == pytest.approx((120.0 + 0.7 * 120.0, -60.0 + 0.7 * 60.0))  # (204, -18)
    feed(tracker, 10.75, face_at(390.0, 225.0))  # standing still: measured (0, 0)
    assert velocity(tracker) == pytest.approx((204.0 * 0.3, -18.0 * 0.3))


def test_a_frame_at_the_same_time_is_accepted_and_moves_the_box_but_not_the_velocity() -> None:
    tracker = Tracker(TrackerConfig(), HeadSpec())
    feed(tracker, 10.0, face_at(300.0))
    feed(tracker, 10.25, face_at(330.0))
    feed(tracker, 10.25, face_at(345.0))  # 0 s later (a second camera frame with the same time stamp)
    stats = tracker.stats()
    assert stats["frames"] == 3 and stats["clock_backwards"] == 0 and stats["faces"] == 3
    assert centres(tracker) == [345.0]
    assert velocity(tracker) == pytest.approx((120.0, 0.0))


def test_a_jump_of_10_face_widths_in_a_second_is_capped_at_4_widths_per_second() -> None:
    cfg = TrackerConfig(reconnect_distance=10.0, visit_gap_s=2.0)
    tracker = Tracker(cfg, HeadSpec())
    feed(tracker, 10.0, face_at(300.0))
    feed(tracker, 11.0, face_at(1500.0))  # 1200 px = 10 widths in 1 s, reconnected
    assert tracker.stats()["reconnects"] == 1
    assert velocity(tracker) == pytest.approx((480.0, 0.0))
    assert tracker.hints(11.0)[0].speed == pytest.approx(4.0)


def test_the_cap_holds_in_the_negative_direction_on_both_axes() -> None:
    tracker = Tracker(TrackerConfig(reconnect_distance=10.0), HeadSpec())
    feed(tracker, 10.0, face_at(900.0, 700.0))
    feed(tracker, 10.5, face_at(300.0, 100.0))  # -1200 px/s on both axes (7.1 widths away: reconnected)
    assert velocity(tracker) == pytest.approx((-480.0, -480.0))


def test_the_cap_of_a_face_under_a_pixel_wide_is_4_px_per_second() -> None:
    tracker = Tracker(TrackerConfig(reconnect_distance=5.0), HeadSpec())
    feed(tracker, 10.0, face_at(300.0, width=0.5))
    feed(tracker, 10.25, face_at(302.0, width=0.5))  # 8 px/s, 4 widths away: reconnected
    assert velocity(tracker) == pytest.approx((4.0, 0.0))
    assert tracker.hints(10.25)[0].speed == pytest.approx(4.0)  # widths per second, counting a face as >= 1 px


def test_the_velocity_ignores_moves_before_the_first_detection_was_counted() -> None:
    # Through the tracker a track is always observed first at its own creation time (dt = 0); the hits gate
    # only shows on the bare track.
    face = face_at(300.0)
    acc = AttributeAccumulator(HeadSpec(), TrackerConfig())
    track = _Track(face, 10.0, 1000.0, acc, AttentionMeter(AttentionConfig(), max_gap_s=0.5))
    assert (track.vx, track.vy, track.hits, track.confirmed) == (0.0, 0.0, 0, False)
    track.move(face_at(330.0).detection.box, 10.25)
    assert (track.vx, track.vy) == (0.0, 0.0) and track.box == face_at(330.0).detection.box
    track.hits, track.last_t = 1, 10.25
    track.move(face_at(360.0, 210.0).detection.box, 10.5)
    assert (track.vx, track.vy) == pytest.approx((120.0, -120.0))


# ---- frame time ------------------------------------------------------------------------------------------------------


def test_frames_going_back_in_time_are_skipped_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    tracker = Tracker(TrackerConfig(), HeadSpec())
    feed(tracker, 10.0, face_at(300.0))
    feed(tracker, 10.25, face_at(330.0))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert feed(tracker, 10.0, face_at(500.0)) == []
        assert tracker.update([], 1000.0, 9.5) == []  # `mono` is the clock when given
    assert messages(caplog) == [
        "frame time went backwards by 0.250 s; frame skipped",
        "frame time went backwards by 0.750 s; frame skipped",
    ]
    stats = tracker.stats()
    assert stats["clock_backwards"] == 2 and stats["frames"] == 2 and stats["faces"] == 2
    assert centres(tracker) == [330.0] and velocity(tracker) == pytest.approx((120.0, 0.0))


# ---- which faces are valid -------------------------------------------------------------------------------------------


def test_a_box_half_a_pixel_wide_is_valid_and_an_empty_one_is_not(caplog: pytest.LogCaptureFixture) -> None:
    tiny = face_at(300.0, width=0.5)  # 0.5 x 0.6 px
    base = face_at(600.0)
    no_width = with_box(base, Box(600.0, 200.0, 600.0, 300.0))
    no_height = with_box(base, Box(550.0, 250.0, 650.0, 250.0))
    assert _valid(tiny) and _valid(base)
    assert not _valid(no_width) and not _valid(no_height)
    tracker = Tracker(TrackerConfig(), HeadSpec())
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        feed(tracker, 10.0, tiny, no_width, no_height)
    assert messages(caplog) == ["skipped 2 faces with a non-finite or empty box/keypoints"]
    stats = tracker.stats()
    assert stats["faces"] == 1 and stats["invalid_faces"] == 2
    (hint,) = tracker.hints(10.0)
    assert hint.box == tiny.detection.box


def test_pose_unknown_counts_faces_that_came_without_a_pose() -> None:
    tracker = Tracker(TrackerConfig(), HeadSpec())
    assert tracker.stats()["pose_unknown"] == 0
    no_pose = replace(face_at(300.0), pose=None)
    feed(tracker, 10.0, no_pose, face_at(600.0))
    feed(tracker, 10.25, no_pose, face_at(600.0))
    feed(tracker, 10.5, face_at(300.0), face_at(600.0))
    assert tracker.stats()["pose_unknown"] == 2


# ---- the min_age_years warning ---------------------------------------------------------------------------------------

AGE_LABELS = {"age": ("0-9", "10-19", "20-29"), "gender": ("male", "female")}


@pytest.mark.parametrize(
    ("min_age", "labels", "expected"),
    [
        (18, {"gender": ("male", "female")}, ["tracking.min_age_years = 18 has no effect: the age head is disabled"]),
        (1, {"gender": ("male", "female")}, ["tracking.min_age_years = 1 has no effect: the age head is disabled"]),
        (18, AGE_LABELS, []),  # the age head gates
        (0, {"gender": ("male", "female")}, []),  # gating is off
        (18, {}, []),  # no heads at all: nothing to gate
        (0, {}, []),
    ],
)
def test_min_age_years_warns_only_when_other_heads_run_without_the_age_head(
    caplog: pytest.LogCaptureFixture, min_age: int, labels: dict[str, tuple[str, ...]], expected: list[str]
) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        Tracker(TrackerConfig(min_age_years=min_age), HeadSpec(labels=labels))
    assert messages(caplog) == expected


# ---- association: best IoU first, each track and face once ----------------------------------------------------------


def two_tracks(cfg: TrackerConfig, left: float = 300.0, right: float = 400.0) -> Tracker:
    tracker = Tracker(cfg, HeadSpec())
    feed(tracker, 10.0, face_at(left), face_at(right))  # track 0 left, track 1 right
    assert tracker.stats()["tracks_started"] == 2
    return tracker


def test_greedy_takes_the_best_score_first_and_each_row_and_column_once() -> None:
    assert _greedy([]) == []
    assert _greedy([(0.2, 0, 0), (0.9, 0, 1), (0.5, 1, 1), (0.4, 1, 0), (0.3, 2, 0)]) == [(0, 1), (1, 0)]
    assert _greedy([(0.5, 1, 0), (0.5, 0, 1), (0.5, 0, 0)]) == [(1, 0), (0, 1)]  # ties keep their order
    assert _greedy([(-1.0, 0, 0), (-0.5, 0, 1), (-0.8, 1, 1)]) == [(0, 1)]  # higher is better, also below 0


def test_a_face_overlapping_two_tracks_goes_to_the_one_it_overlaps_most() -> None:
    tracker = two_tracks(TrackerConfig(iou_threshold=0.2, confirm_frames=1))
    feed(tracker, 10.25, face_at(340.0))  # IoU 0.5 with the left track, 0.33 with the right one
    assert centres(tracker) == [340.0, 400.0]


def test_a_face_exactly_between_two_tracks_goes_to_the_older_one() -> None:
    tracker = two_tracks(TrackerConfig(iou_threshold=0.2, confirm_frames=1), 300.0, 420.0)
    feed(tracker, 10.25, face_at(360.0))  # IoU 1/3 with both
    assert centres(tracker) == [360.0, 420.0]


def test_a_face_taken_by_a_better_match_does_not_stop_the_remaining_matches() -> None:
    cfg = TrackerConfig(iou_threshold=0.1, confirm_frames=1, reconnect_distance=0.01)
    tracker = two_tracks(cfg)
    # IoU: left-f1 0.6, right-f1 0.26 (f1 already taken), right-f2 0.14
    assert feed(tracker, 10.25, face_at(330.0), face_at(490.0)) == []
    assert centres(tracker) == [330.0, 490.0] and tracker.stats()["tracks_started"] == 2
    (left, right) = velocities(tracker)
    assert left == pytest.approx((120.0, 0.0)) and right == pytest.approx((360.0, 0.0))
    assert [end.samples for end in tracker.flush()] == [2, 2]


def test_a_track_takes_one_face_per_frame_and_the_other_starts_a_track() -> None:
    tracker = Tracker(TrackerConfig(iou_threshold=0.1, confirm_frames=1), HeadSpec())
    feed(tracker, 10.0, face_at(300.0))
    second, best = face_at(250.0), face_at(330.0)  # IoU 0.41 and 0.6 with the track
    events = feed(tracker, 10.25, second, best)
    (new,) = events
    assert isinstance(new, TrackNew) and new.box == second.detection.box and new.ts == 10.25
    assert centres(tracker) == [330.0, 250.0]
    assert [end.samples for end in tracker.flush()] == [2, 1]


def test_a_track_matched_by_iou_is_not_also_reconnected_to_another_face() -> None:
    tracker = Tracker(TrackerConfig(confirm_frames=1), HeadSpec())
    feed(tracker, 10.0, face_at(300.0))
    near = face_at(440.0)  # no overlap, but within reconnect_distance (1.17 widths)
    (new,) = feed(tracker, 10.25, face_at(300.0), near)
    assert isinstance(new, TrackNew) and new.box == near.detection.box
    assert centres(tracker) == [300.0, 440.0] and tracker.stats()["reconnects"] == 0


def test_a_face_taken_by_iou_is_not_handed_to_a_missed_track_as_well() -> None:
    tracker = two_tracks(TrackerConfig(confirm_frames=1), 300.0, 440.0)
    assert feed(tracker, 10.25, face_at(300.0)) == []  # the right face is missed this frame
    assert centres(tracker) == [300.0, 440.0]
    assert [h.last_seen for h in tracker.hints(10.25)] == [10.25, 10.0]


def test_an_iou_of_exactly_the_threshold_after_exactly_max_missed_s_continues_the_track() -> None:
    cfg = TrackerConfig(iou_threshold=0.5, max_missed_s=0.5, reconnect_distance=0.01, confirm_frames=1)
    tracker = Tracker(cfg, HeadSpec())
    feed(tracker, 10.0, face_at(300.0))
    assert feed(tracker, 10.25, face_at(340.0)) == []  # 80 of 120 px overlap: IoU exactly 0.5
    assert feed(tracker, 10.75, face_at(370.0)) == []  # unseen for exactly max_missed_s, IoU 0.6
    stats = tracker.stats()
    assert stats["tracks_started"] == 1 and stats["reconnects"] == 0 and centres(tracker) == [370.0]


# ---- reconnecting and ending visits ----------------------------------------------------------------------------------


def test_reconnects_count_gaps_longer_than_max_missed_s_and_take_the_face() -> None:
    cfg = TrackerConfig(
        max_missed_s=0.5, visit_gap_s=2.0, reconnect_distance=1.5, confirm_frames=1, update_interval_s=0
    )
    tracker = Tracker(cfg, HeadSpec())
    (new,) = feed(tracker, 10.0, face_at(300.0))
    assert feed(tracker, 10.5, face_at(400.0)) == []  # too far for IoU; after exactly max_missed_s: no gap
    assert tracker.stats()["reconnects"] == 0
    assert feed(tracker, 11.25, face_at(400.0)) == []  # 0.75 s unseen: a gap bridged
    assert feed(tracker, 12.0, face_at(400.0)) == []
    stats = tracker.stats()
    assert stats["reconnects"] == 2 and stats["tracks_started"] == 1
    (end,) = tracker.flush()
    assert end.track_id == new.track_id and end.reconnects == 2 and end.samples == 4


def test_a_visit_unseen_for_exactly_visit_gap_s_ends_even_if_the_face_comes_back() -> None:
    cfg = TrackerConfig(max_missed_s=0.5, visit_gap_s=2.0, confirm_frames=1)
    tracker = Tracker(cfg, HeadSpec())
    (first,) = feed(tracker, 10.0, face_at(300.0))
    end, new = feed(tracker, 12.0, face_at(300.0))
    assert isinstance(end, TrackEnd) and end.track_id == first.track_id and end.reason == "gone"
    assert isinstance(new, TrackNew) and new.track_id != first.track_id and new.ts == 12.0
    assert tracker.stats()["reconnects"] == 0


def test_a_visit_ends_after_exactly_visit_gap_s_without_faces_and_not_before() -> None:
    tracker = Tracker(TrackerConfig(max_missed_s=0.5, visit_gap_s=2.0, confirm_frames=1), HeadSpec())
    (first,) = feed(tracker, 10.0, face_at(300.0))
    assert feed(tracker, 11.5) == []
    assert tracker.stats()["active"] == 1
    (end,) = feed(tracker, 12.0)
    assert isinstance(end, TrackEnd) and end.track_id == first.track_id and (end.ts, end.dwell_s) == (10.0, 0.0)
    assert tracker.stats()["active"] == 0 and tracker.stats()["tracks_ended"] == 1


def test_a_tentative_track_is_kept_for_exactly_max_missed_s() -> None:
    tracker = Tracker(TrackerConfig(max_missed_s=0.5, confirm_frames=2), HeadSpec())
    feed(tracker, 10.0, face_at(300.0))
    feed(tracker, 10.5)
    assert tracker.stats()["tentative_dropped"] == 0
    feed(tracker, 10.75)
    assert tracker.stats()["tentative_dropped"] == 1
    assert tracker.flush() == [] and tracker.stats()["tentative_dropped"] == 1


# ---- publishing: confirmation and update records ---------------------------------------------------------------------


def test_a_track_is_published_on_exactly_confirm_frames_detections_then_updated_every_interval() -> None:
    tracker = Tracker(TrackerConfig(confirm_frames=3, update_interval_s=0.5), HeadSpec())
    faces = [face_at(300.0 + 10 * i, score=0.9 - 0.1 * i) for i in range(7)]

    def at(i: int) -> list[TrackEvent]:
        return tracker.update([faces[i]], 1000.0 + 0.25 * i, 10.0 + 0.25 * i)

    assert at(0) == [] and at(1) == []
    (new,) = at(2)
    assert new == TrackNew(track_id=tracker.present()[0].track_id, ts=1000.0, box=faces[2].detection.box, score=0.7)
    assert at(3) == []  # 0.25 s after the TrackNew
    (update,) = at(4)  # exactly update_interval_s after it
    assert isinstance(update, TrackUpdate) and update.ts == 1001.0 and update.start_ts == 1000.0
    assert update.box == faces[4].detection.box and update.dwell_s == 1.0
    assert at(5) == []
    assert [ev.kind for ev in at(6)] == ["update"]


def test_no_update_records_with_update_interval_0() -> None:
    tracker = Tracker(TrackerConfig(update_interval_s=0.0), HeadSpec())
    events = [ev for i in range(6) for ev in feed(tracker, 10.0 + 0.5 * i, face_at(300.0))]
    assert [ev.kind for ev in events] == ["new"]


# ---- face size and pose of the attribute samples ---------------------------------------------------------------------


def tracker_with(*faces: Face, classify: Any = None) -> Tracker:
    tracker = Tracker(TrackerConfig(min_age_years=0, min_face_px=40.0), GENDER_SPEC)
    for i, face in enumerate(faces):
        tracker.update([face], 10.0 + 0.5 * i, 10.0 + 0.5 * i, classify)
    return tracker


def gender_of(tracker: Tracker) -> HeadEstimate | None:
    (view,) = tracker.present()
    return view.attributes.gender


def test_an_unmeasured_face_size_falls_back_to_the_box_width() -> None:
    face = replace(face_at(300.0, attributes=gender(0.9)), face_px=0.0)  # box 120 px wide
    assert gender_of(tracker_with(face, face)) == HeadEstimate("female", 0.9, (), None)


def test_a_measured_face_size_under_a_pixel_is_used_and_too_small() -> None:
    face = replace(face_at(300.0, attributes=gender(0.9)), face_px=0.5)  # box 120 px wide
    assert gender_of(tracker_with(face, face)) == HeadEstimate("unknown", None, (), "small_face")


def test_a_small_face_without_attributes_is_not_noted_as_small_when_not_sampling() -> None:
    face = replace(face_at(300.0), face_px=30.0)
    assert gender_of(tracker_with(face, face)) == HeadEstimate("unknown", None, (), "no_samples")


def test_a_sampled_face_of_exactly_min_face_px_is_not_noted_as_small() -> None:
    def classify(faces: Sequence[Face]) -> list[Attributes]:
        return [Attributes() for _ in faces]  # the classifier gave no gender

    face = face_at(300.0, width=40.0)
    assert face.face_px == 40.0
    assert gender_of(tracker_with(face, face, classify=classify)) == HeadEstimate("unknown", None, (), "no_samples")


def test_attribute_samples_are_weighted_by_the_faces_pose() -> None:
    frontal = replace(face_at(300.0, attributes=gender(0.9)), pose=Pose(0.0, 0.0, 0.0))
    turned = replace(face_at(300.0, attributes=gender(0.3)), pose=Pose(60.0, 0.0, 0.0))  # weight cos 60 = 0.5
    expected = (0.9 * 1.0 + 0.3 * 0.5) / 1.5
    assert expected == pytest.approx(0.7)
    assert gender_of(tracker_with(frontal, turned)) == HeadEstimate("female", 0.7, (), None)
