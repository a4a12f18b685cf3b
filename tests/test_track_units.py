"""Small pure parts of the tracker and its payloads, pinned exactly (found by mutation testing, see TESTING.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from edge_agent.analytics.synthetic import make_face
from edge_agent.records import Attributes, Box, Face, HeadResult, Pose
from edge_agent.timefmt import iso_ts
from edge_agent.track.attention import AttentionMeter
from edge_agent.track.config import AttentionConfig, HeadConfidence, TrackerConfig, VisitConfig
from edge_agent.track.events import AttributeEstimate, HeadEstimate, HeadSpec, TrackEnd, TrackUpdate
from edge_agent.track.payloads import attributes_payload, head_payload, track_payload
from edge_agent.track.tracker import Tracker, _reconnect_score


def box(cx: float, w: float) -> Box:
    return Box(cx - w / 2, 100 - w / 2, cx + w / 2, 100 + w / 2)


def test_reconnect_score_is_minus_the_centre_distance_in_face_widths() -> None:
    assert _reconnect_score(box(100, 50), box(100, 50), 1.0) == 0.0
    assert _reconnect_score(box(100, 50), box(130, 50), 1.0) == pytest.approx(-0.6)
    moved = Box(100 - 25, 130 - 25, 100 + 25, 130 + 25)  # straight down: the vertical offset counts too
    assert _reconnect_score(box(100, 50), moved, 1.0) == pytest.approx(-0.6)
    assert _reconnect_score(box(100, 50), box(150, 50), 1.0) == pytest.approx(-1.0)  # at the limit: still near
    assert _reconnect_score(box(100, 50), box(151, 50), 1.0) is None  # just past it


def test_reconnect_needs_a_similar_size() -> None:
    assert _reconnect_score(box(100, 50), box(100, 100), 1.0) == 0.0  # twice as wide: still the same face
    assert _reconnect_score(box(100, 50), box(100, 101), 1.0) is None
    assert _reconnect_score(box(100, 50), box(100, 150), 5.0) is None
    assert _reconnect_score(box(100, 0.5), box(100, 0.6), 1.0) == 0.0  # tiny but valid boxes are compared too
    assert _reconnect_score(box(100, 0), box(100, 50), 1.0) is None


def update(pose: Pose | None) -> dict[str, object]:
    ev = TrackUpdate("t1", 10.0, 5.0, Box(1, 2, 3, 4), 5.0, True, pose, 1.23456, 2, AttributeEstimate())
    return track_payload(ev)


def test_update_payload_rounds_pose_to_a_tenth_of_a_degree_and_keeps_none() -> None:
    assert update(Pose(12.345, -3.456, 0.04))["pose"] == {"yaw": 12.3, "pitch": -3.5, "roll": 0.0}
    assert update(Pose(1.25, 2.35, -7.77))["pose"] == {"yaw": 1.2, "pitch": 2.4, "roll": -7.8}
    assert update(None)["pose"] is None
    assert update(None)["attention_s"] == 1.235


def test_tracker_stats_count_frames_faces_and_active_tracks() -> None:
    tracker = Tracker(TrackerConfig(), HeadSpec())
    for i in range(6):
        tracker.update([make_face(200.0), make_face(500.0)], 1000.0 + i * 0.1, 50.0 + i * 0.1)
    stats = tracker.stats()
    assert stats["frames"] == 6 and stats["faces"] == 12 and stats["active"] == 2
    assert stats["classifications"] == 0 and stats["classify_too_small"] == 0 and stats["classify_held_back"] == 0
    assert stats["tracks_started"] == 2 and stats["invalid_faces"] == 0


# ---- payloads: the distribution goes into end records only -----------------------------------------------------------

GENDER = HeadEstimate("female", 0.8, (("male", 0.2), ("female", 0.8)))
AGE = HeadEstimate("unknown", 0.25, (("20-29", 0.25), ("30-39", 0.2)), reason="low_confidence")


def test_update_payload_carries_labels_without_the_distribution() -> None:
    ev = TrackUpdate("t1", 10.0, 5.0, Box(1, 2, 3, 4), 5.0, True, None, 0.0, 0, AttributeEstimate(gender=GENDER))
    assert track_payload(ev)["attributes"] == {"gender": {"label": "female", "p": 0.8}}


def test_end_payload_is_exact_and_carries_each_heads_distribution() -> None:
    attrs = AttributeEstimate(age=AGE, age_years=31.5, gender=GENDER, minor=False)
    ev = TrackEnd("t9", 20.0, 10.0, 10.0, 4, 2.34567, 2, 1.98765, True, False, 1, attrs, "gone")
    assert track_payload(ev) == {
        "event": "end",
        "track_id": "t9",
        "t_start": iso_ts(10.0),
        "t_end": iso_ts(20.0),
        "dwell_s": 10.0,
        "samples": 4,
        "attention_s": 2.346,
        "glances": 2,
        "time_to_first_glance_s": 1.988,
        "viewer": True,
        "short": False,
        "reconnects": 1,
        "reason": "gone",
        "minor": False,
        "attributes": {
            "age": {
                "label": "unknown",
                "p": 0.25,
                "probs": {"20-29": 0.25, "30-39": 0.2},
                "reason": "low_confidence",
            },
            "gender": {"label": "female", "p": 0.8, "probs": {"male": 0.2, "female": 0.8}},
            "age_years": 31.5,
        },
    }
    never = TrackEnd("t9", 20.0, 10.0, 10.0, 4, 0.0, 0, None, False, False, 0, AttributeEstimate(), "shutdown")
    assert track_payload(never)["time_to_first_glance_s"] is None


def test_head_payload_writes_probs_only_when_asked_and_known() -> None:
    assert head_payload(GENDER, with_probs=False) == {"label": "female", "p": 0.8}
    assert head_payload(HeadEstimate("unknown", None, (), "no_samples"), with_probs=True) == {
        "label": "unknown",
        "p": None,
        "reason": "no_samples",
    }
    assert attributes_payload(AttributeEstimate(gender=GENDER)) == {
        "attributes": {"gender": {"label": "female", "p": 0.8}}
    }


def test_confidence_bar_of_a_head_the_config_does_not_know_is_zero() -> None:
    conf = HeadConfidence(age=0.4, gender=0.7, race=0.55)
    assert (conf.for_head("age"), conf.for_head("gender"), conf.for_head("race")) == (0.4, 0.7, 0.55)
    assert conf.for_head("emotion") == 0.0


# ---- attention: a glance of exactly min_glance_s counts ------------------------------------------------------------

LOOK, AWAY = Pose(0.0, 0.0, 0.0), Pose(60.0, 0.0, 0.0)


def meter(min_glance_s: float) -> AttentionMeter:
    return AttentionMeter(AttentionConfig(min_glance_s=min_glance_s, smoothing_s=0.0), max_gap_s=5.0)


def test_a_closed_spell_of_exactly_min_glance_s_is_a_glance() -> None:
    m = meter(0.6)
    for t, pose in ((0.0, LOOK), (0.5, LOOK), (0.6, AWAY), (0.7, AWAY)):  # the 3-median lets one AWAY through
        m.observe(t, pose)
    assert m.looking is False
    assert (m.glances, m.attention_s, m.first_glance()) == (1, 0.6, 0.0)


def test_an_open_spell_counts_from_exactly_min_glance_s_and_not_before() -> None:
    m = meter(0.5)  # times below are exact binary fractions, so the spell is exactly 0.5 s
    m.observe(1.0, LOOK)
    m.observe(1.25, LOOK)
    assert (m.glances, m.first_glance()) == (0, None)  # looking, but only 0.25 s so far
    m.observe(1.5, LOOK)
    assert (m.glances, m.first_glance(), m.attention_s) == (1, 1.0, 0.5)


def test_finish_closes_the_spell_and_leaves_the_meter_not_looking() -> None:
    m = meter(0.3)
    m.observe(0.0, LOOK)
    m.observe(0.2, LOOK)
    m.finish()
    assert m.looking is False and m.glances == 0 and m.first_glance() is None


# ---- tracker: hints, present, flush and the end record -------------------------------------------------------------

GENDER_SPEC = HeadSpec(labels={"gender": ("male", "female")})


def walk(tracker: Tracker, times: list[float], step_px: float = 0.0, **face: Any) -> None:
    """One face walking right by `step_px` per frame (frame time = ts = mono)."""
    for i, t in enumerate(times):
        tracker.update([make_face(300.0 + i * step_px, **face)], t, t)


def test_hints_predict_along_the_measured_velocity_in_face_widths_per_second() -> None:
    tracker = Tracker(TrackerConfig(max_missed_s=0.5, visit_gap_s=2.0), HeadSpec())
    walk(tracker, [10.0, 10.25, 10.5], step_px=30.0)  # 120 px/s, face 120 px wide
    (hint,) = tracker.hints(10.75)
    assert hint.track_id == tracker.present()[0].track_id and hint.last_seen == 10.5
    assert hint.speed == pytest.approx(1.0)
    assert hint.box.center[0] == pytest.approx(360.0 + 120.0 * 0.25) and hint.box.center[1] == pytest.approx(240.0)
    assert tracker.hints(10.25)[0].box.center[0] == pytest.approx(360.0)  # no prediction backwards in time
    assert tracker.hints(12.0)[0].box.center[0] == pytest.approx(360.0 + 120.0 * 0.5)  # capped at max_missed_s


def test_hints_and_present_keep_a_track_exactly_max_missed_s_and_not_longer() -> None:
    tracker = Tracker(TrackerConfig(max_missed_s=0.5, visit_gap_s=2.0), HeadSpec())
    assert tracker.present_count() == 0 and tracker.present() == []
    walk(tracker, [10.0, 10.25])
    tracker.update([], 10.75, 10.75)  # unseen for exactly max_missed_s
    assert len(tracker.hints(10.75)) == 1 and tracker.present_count() == 1
    (view,) = tracker.present()
    assert view.start_ts == 10.0 and view.dwell_s == 0.25
    tracker.update([], 11.0, 11.0)  # 0.75 s: still a visit (visit_gap_s 2), no longer present
    assert tracker.hints(11.0) == [] and tracker.present_count() == 0 and tracker.present() == []
    assert tracker.stats()["active"] == 1


def test_present_count_counts_confirmed_tracks_once_each() -> None:
    tracker = Tracker(TrackerConfig(), HeadSpec())
    tracker.update([make_face(150.0), make_face(450.0)], 1.0, 1.0)  # tentative: one detection each
    assert tracker.present_count() == 0
    tracker.update([make_face(150.0), make_face(450.0)], 1.1, 1.1)
    assert tracker.present_count() == 2 == len(tracker.present())


def test_flush_ends_confirmed_visits_and_counts_dropped_tentative_ones() -> None:
    tracker = Tracker(TrackerConfig(), HeadSpec())
    for round_ in range(2):
        t0 = 10.0 * round_
        tracker.update([make_face(150.0)], t0, t0)
        faces = [make_face(150.0), make_face(450.0), make_face(750.0)]
        tracker.update(faces, t0 + 0.1, t0 + 0.1)  # the second and third faces: tentative
        (end,) = tracker.flush()
        assert end.reason == "shutdown"
    assert tracker.flush("paused") == []
    stats = tracker.stats()
    assert stats["tracks_ended"] == 2 and stats["tentative_dropped"] == 4 and stats["active"] == 0


def test_a_visit_of_exactly_min_dwell_s_and_min_samples_is_not_short() -> None:
    visits = VisitConfig(min_dwell_s=0.5, min_samples=3)
    tracker = Tracker(TrackerConfig(), HeadSpec(), visits=visits)
    walk(tracker, [1.0, 1.25, 1.5])
    (end,) = tracker.flush()
    assert (end.dwell_s, end.samples, end.short) == (0.5, 3, False)
    tracker2 = Tracker(TrackerConfig(), HeadSpec(), visits=visits)
    walk(tracker2, [1.0, 1.5])
    assert tracker2.flush()[0].short is True


def test_update_events_carry_the_latest_pose() -> None:
    tracker = Tracker(TrackerConfig(update_interval_s=0.1), HeadSpec())
    events = [ev for t in (1.0, 1.1, 1.2, 1.3) for ev in tracker.update([make_face(300.0, yaw=20.0)], t, t)]
    updates = [ev for ev in events if isinstance(ev, TrackUpdate)]
    assert updates and all(u.pose is not None and u.pose.yaw == pytest.approx(20.0, abs=3.0) for u in updates)


def gender(p_female: float) -> Attributes:
    return Attributes(gender=HeadResult(("male", "female"), (1.0 - p_female, p_female)))


def test_the_end_record_counts_classified_faces_and_rounds_the_decision_margin() -> None:
    tracker = Tracker(TrackerConfig(), GENDER_SPEC)
    calls: list[int] = []

    def classify(faces: Sequence[Face]) -> list[Attributes]:
        calls.append(len(faces))
        return [gender(0.876544) for _ in faces]

    for t in (1.0, 1.3, 1.6, 1.9):
        tracker.update([make_face(300.0)], t, t, classify)
    (end,) = tracker.flush()
    assert end.classified == sum(calls) > 0
    # smallest gap: top 0.876544 vs the 0.6 confidence bar (the runner-up is 0.753088 away)
    assert end.margin == 0.2765


def test_classify_uses_face_px_for_the_size_gate_and_sharpness_for_quality() -> None:
    tracker = Tracker(TrackerConfig(min_face_px=40.0), GENDER_SPEC)
    seen: list[Face] = []

    def classify(faces: Sequence[Face]) -> list[Attributes]:
        seen.extend(faces)
        return [gender(0.9) for _ in faces]

    small = replace(make_face(300.0), face_px=30.0, sharpness=200.0)  # box 120 px wide, face measured at 30 px
    for t in (1.0, 1.5):
        tracker.update([small], t, t, classify)
    assert seen == [] and tracker.stats()["classify_too_small"] == 2
    sharp = replace(make_face(300.0), sharpness=200.0)
    tracker.update([sharp], 2.0, 2.0, classify)
    assert len(seen) == 1


def test_a_classifier_returning_the_wrong_number_of_results_is_an_error() -> None:
    tracker = Tracker(TrackerConfig(), GENDER_SPEC)
    with pytest.raises(ValueError, match="zip"):
        tracker.update([make_face(300.0)], 1.0, 1.0, lambda faces: [])


def smoothing_meter(tau: float, max_gap_s: float = 5.0) -> AttentionMeter:
    cfg = AttentionConfig(min_glance_s=0.3, smoothing_s=tau, yaw_limit_deg=25.0, pitch_limit_deg=20.0)
    return AttentionMeter(cfg, max_gap_s=max_gap_s)


def test_a_fresh_meter_is_not_looking() -> None:
    m = smoothing_meter(0.5)
    assert m.looking is False and (m.glances, m.attention_s, m.first_glance()) == (0, 0.0, None)


def test_pose_is_the_running_median_smoothed_exponentially_over_time() -> None:
    m = smoothing_meter(1.0)
    m.observe(10.0, Pose(0.0, 5.0, 0.0))  # the first observation is taken as it is
    m.observe(10.5, Pose(30.0, 15.0, 0.0))  # median of two: the upper one (index len // 2)
    alpha = 1.0 - math.exp(-0.5 / 1.0)
    assert m._yaw == pytest.approx(30.0 * alpha) and m._pitch == pytest.approx(5.0 + 10.0 * alpha)
    m.observe(11.5, Pose(-40.0, 5.0, 0.0))  # median of three yaws (0, 30, -40): 0; pitches (5, 15, 5): 5
    alpha1 = 1.0 - math.exp(-1.0)
    assert m._yaw == pytest.approx(30.0 * alpha * (1.0 - alpha1))
    assert m._pitch == pytest.approx(5.0 + 10.0 * alpha * (1.0 - alpha1))


def test_looking_limits_are_inclusive_and_hysteresis_applies_only_while_looking() -> None:
    for pose, looking in (
        (Pose(25.0, 0.0, 0.0), True),
        (Pose(-25.0, 20.0, 0.0), True),
        (Pose(0.0, -20.0, 0.0), True),
        (Pose(25.5, 0.0, 0.0), False),
        (Pose(0.0, 20.5, 0.0), False),
        (Pose(27.0, 0.0, 0.0), False),
    ):
        m = smoothing_meter(0.0)
        assert m.observe(1.0, pose) is looking, pose
    m = smoothing_meter(0.0)
    m.observe(1.0, LOOK)
    for t in (1.1, 1.2, 1.3):
        assert m.observe(t, Pose(29.0, 24.0, 0.0)) is True  # within limits + 5 degrees of hysteresis
    assert m.observe(1.4, Pose(31.0, 0.0, 0.0)) is True  # the median of (29, 29, 31) still holds
    assert m.observe(1.5, Pose(31.0, 0.0, 0.0)) is False


def test_a_gap_of_exactly_max_gap_s_does_not_break_the_glance() -> None:
    m = smoothing_meter(0.0, max_gap_s=5.0)
    m.observe(0.0, LOOK)
    m.observe(5.0, LOOK)
    assert (m.glances, m.attention_s) == (1, 5.0)
    m.observe(10.5, LOOK)  # 5.5 s later: a new spell
    assert (m.glances, m.attention_s) == (1, 5.0)


def test_a_pose_with_one_non_finite_angle_counts_as_turned_away() -> None:
    m = smoothing_meter(0.0)
    for t in (0.0, 0.1):
        m.observe(t, LOOK)
    m.observe(0.2, Pose(math.nan, 0.0, 0.0))
    m.observe(0.3, Pose(0.0, math.inf, 0.0))  # two away votes in the 3-median: the glance ends
    assert m.looking is False and m.glances == 0  # 0.2 s spell: shorter than min_glance_s
    assert m._yaw is not None and math.isfinite(m._yaw)


def test_minor_mask_marks_the_groups_starting_below_the_age_limit() -> None:
    spec = HeadSpec(labels={"age": ("0-2", "3-9", "10-19", "20-29", "30+")}, age_group_edges=(0, 3, 10, 20, 30))
    assert spec.minor_mask(20).tolist() == [True, True, True, False, False]
    assert spec.minor_mask(1).tolist() == [True, False, False, False, False]
    assert spec.minor_mask(0) is None
    assert HeadSpec(labels={"gender": ("male", "female")}, age_group_edges=(0, 3)).minor_mask(18) is None
    assert HeadSpec(labels={"age": ("a", "b")}).minor_mask(18) is None
