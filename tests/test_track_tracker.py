"""Tracker: IoU association, memory for missed frames, visit-gap reconnection, fresh random ids per visit."""

from __future__ import annotations

import math

import numpy as np

from edge_agent.analytics.synthetic import make_face
from edge_agent.records import Box, Detection, Face
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import HeadSpec, TrackEnd, TrackNew, TrackUpdate
from edge_agent.track.tracker import Tracker

FPS = 10.0
T0 = 1_800_000_000.0


def run(tracker: Tracker, frames: list[list[Face]], start: float = T0) -> list:
    events = []
    for i, faces in enumerate(frames):
        events.extend(tracker.update(faces, start + i / FPS))
    return events


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def make(**kw) -> Tracker:
    cfg = TrackerConfig(**{"confirm_frames": 2, "max_missed_s": 0.5, "visit_gap_s": 2.0, "update_interval_s": 0, **kw})
    return Tracker(cfg, HeadSpec())


def test_a_face_moving_slowly_keeps_one_track_and_ends_after_the_visit_gap() -> None:
    tracker = make()
    frames = [[make_face(100 + 5 * i)] for i in range(30)] + [[]] * 25
    events = run(tracker, frames)
    assert len(of(events, TrackNew)) == 1
    ends = of(events, TrackEnd)
    assert len(ends) == 1 and ends[0].track_id == of(events, TrackNew)[0].track_id
    assert ends[0].samples == 30
    assert math.isclose(ends[0].dwell_s, 2.9, abs_tol=1e-6)
    assert ends[0].reason == "gone"


def test_two_faces_side_by_side_get_two_tracks_that_do_not_swap() -> None:
    tracker = make()
    frames = [[make_face(100 + 2 * i), make_face(400 - 2 * i)] for i in range(20)]
    events = run(tracker, frames)
    assert len(of(events, TrackNew)) == 2
    views = sorted(tracker.present(), key=lambda v: v.box.x1)
    left, right = views
    assert left.box.center[0] < 200 and right.box.center[0] > 300
    new = {e.track_id: e.box.center[0] for e in of(events, TrackNew)}
    assert new[left.track_id] < new[right.track_id]


def test_a_face_missed_for_a_few_frames_continues_the_same_track() -> None:
    tracker = make()
    frames = [[make_face(200)] for _ in range(5)] + [[]] * 3 + [[make_face(204)] for _ in range(5)] + [[]] * 25
    events = run(tracker, frames)
    ends = of(events, TrackEnd)
    assert len(of(events, TrackNew)) == 1 and len(ends) == 1
    assert ends[0].samples == 10 and ends[0].reconnects == 0
    assert math.isclose(ends[0].dwell_s, 1.2, abs_tol=1e-6)


def test_a_gap_shorter_than_visit_gap_nearby_is_the_same_visit_and_the_dwell_includes_it() -> None:
    # 1.5 s without the face (> max_missed_s, < visit_gap_s), then it reappears 60 px away (IoU 0.33 -> no IoU match
    # at 0.5, so this needs the proximity reconnection).
    frames = [[make_face(200)] for _ in range(5)] + [[]] * 15 + [[make_face(260)] for _ in range(5)] + [[]] * 25
    events = run(make(iou_threshold=0.5), frames)
    ends = of(events, TrackEnd)
    assert len(of(events, TrackNew)) == 1 and len(ends) == 1
    assert ends[0].reconnects == 1
    assert math.isclose(ends[0].dwell_s, 2.4, abs_tol=1e-6)


def test_a_gap_longer_than_visit_gap_starts_a_new_visit_with_a_new_id() -> None:
    tracker = make()
    frames = [[make_face(200)] for _ in range(5)] + [[]] * 25 + [[make_face(200)] for _ in range(5)] + [[]] * 25
    events = run(tracker, frames)
    new_ids = [e.track_id for e in of(events, TrackNew)]
    assert len(new_ids) == 2 and new_ids[0] != new_ids[1]
    assert [e.track_id for e in of(events, TrackEnd)] == new_ids


def test_track_ids_are_random_hex_and_differ_between_sessions() -> None:
    ids = set()
    for _ in range(3):
        tracker = make()
        events = run(tracker, [[make_face(200)] for _ in range(3)])
        ids.update(e.track_id for e in of(events, TrackNew))
    assert len(ids) == 3
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


def test_a_far_away_reappearance_is_not_reconnected() -> None:
    tracker = make()
    frames = [[make_face(100)] for _ in range(5)] + [[]] * 10 + [[make_face(500)] for _ in range(5)] + [[]] * 25
    events = run(tracker, frames)
    assert len(of(events, TrackNew)) == 2


def test_a_single_frame_blip_is_never_published_and_is_counted() -> None:
    tracker = make(confirm_frames=3)
    frames = [[make_face(200)], [], [], [], [], [], [], [], [make_face(400)], [make_face(400)]] + [[]] * 10
    events = run(tracker, frames)
    assert events == []
    assert tracker.stats()["tentative_dropped"] == 2


def test_updates_are_rate_limited_per_track() -> None:
    tracker = make(update_interval_s=1.0)
    events = run(tracker, [[make_face(200)] for _ in range(51)])  # 5 s at 10 fps
    updates = of(events, TrackUpdate)
    assert 4 <= len(updates) <= 5
    gaps = np.diff([u.ts for u in updates])
    assert (gaps >= 1.0 - 1e-9).all()


def test_invalid_faces_are_skipped_and_counted_and_the_loop_goes_on() -> None:
    tracker = make()
    bad_box = Face(Detection(Box(math.nan, 0, 10, 10), 0.9, np.zeros((6, 2), np.float32)), None)
    bad_kp = Face(Detection(Box(0, 0, 10, 10), 0.9, np.full((6, 2), np.inf, np.float32)), None)
    empty = Face(Detection(Box(5, 5, 5, 5), 0.9, np.zeros((6, 2), np.float32)), None)
    events = run(tracker, [[bad_box, bad_kp, empty, make_face(200)] for _ in range(3)])
    assert len(of(events, TrackNew)) == 1
    assert tracker.stats()["invalid_faces"] == 9


def test_time_going_backwards_skips_the_frame_without_corrupting_tracks() -> None:
    tracker = make()
    tracker.update([make_face(200)], T0)
    tracker.update([make_face(200)], T0 + 0.1)
    assert tracker.update([make_face(200)], T0 - 5.0) == []
    assert tracker.stats()["clock_backwards"] == 1
    events = tracker.update([make_face(200)], T0 + 0.2)
    assert events == [] and len(tracker.present()) == 1


def test_monotonic_time_is_used_for_durations_when_given() -> None:
    tracker = make()
    # the wall clock jumps forward by an hour mid-visit (NTP); mono does not
    for i in range(10):
        wall = T0 + i / FPS + (3600 if i >= 5 else 0)
        tracker.update([make_face(200)], wall, mono=100.0 + i / FPS)
    (end,) = tracker.flush("shutdown")
    assert math.isclose(end.dwell_s, 0.9, abs_tol=1e-6)
    assert end.reason == "shutdown"


def test_flush_ends_confirmed_tracks_and_drops_tentative_ones() -> None:
    tracker = make(confirm_frames=3)
    run(tracker, [[make_face(100)]] * 3 + [[make_face(100), make_face(400)]])
    ends = tracker.flush("paused")
    assert len(ends) == 1 and ends[0].reason == "paused"
    assert tracker.present() == [] and tracker.stats()["tentative_dropped"] == 1


def test_present_lists_only_tracks_seen_within_max_missed() -> None:
    tracker = make()
    run(tracker, [[make_face(200)]] * 3)
    assert len(tracker.present()) == 1
    tracker.update([], T0 + 0.2 + 0.6)
    assert tracker.present() == []
