"""Small pure parts of the tracker and its payloads, pinned exactly (found by mutation testing, see TESTING.md)."""

from __future__ import annotations

import pytest

from edge_agent.analytics.synthetic import make_face
from edge_agent.records import Box, Pose
from edge_agent.timefmt import iso_ts
from edge_agent.track.attention import AttentionMeter
from edge_agent.track.config import AttentionConfig, HeadConfidence, TrackerConfig
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
    m = meter(0.6)
    m.observe(1.0, LOOK)
    m.observe(1.5, LOOK)
    assert (m.glances, m.first_glance()) == (0, None)  # looking, but only 0.5 s so far
    m.observe(1.6, LOOK)
    assert (m.glances, m.first_glance()) == (1, 1.0)


def test_finish_closes_the_spell_and_leaves_the_meter_not_looking() -> None:
    m = meter(0.3)
    m.observe(0.0, LOOK)
    m.observe(0.2, LOOK)
    m.finish()
    assert m.looking is False and m.glances == 0 and m.first_glance() is None
