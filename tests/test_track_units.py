"""Small pure parts of the tracker and its payloads, pinned exactly (found by mutation testing, see TESTING.md)."""

from __future__ import annotations

import pytest

from edge_agent.analytics.synthetic import make_face
from edge_agent.records import Box, Pose
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import AttributeEstimate, HeadSpec, TrackUpdate
from edge_agent.track.payloads import track_payload
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
