"""Attention and glances on synthetic keypoint sequences (pose estimated from keypoints, as on the device)."""

from __future__ import annotations

import math

import pytest

from edge_agent.analytics.config import AnalyticsConfig, AttentionConfig, VisitConfig
from edge_agent.analytics.pose import estimate_pose
from edge_agent.analytics.synthetic import face_keypoints, make_face
from edge_agent.records import Pose
from edge_agent.track.attention import AttentionMeter
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import HeadSpec, TrackEnd
from edge_agent.track.tracker import Tracker

FPS = 10.0


def meter_over(
    yaws: list[float | None], cfg: AttentionConfig | None = None, max_gap_s: float = 0.5, t0: float = 0.0
) -> AttentionMeter:
    """Feed one observation per frame; None = the face was not observed in that frame."""
    m = AttentionMeter(cfg or AttentionConfig(smoothing_s=0.0), max_gap_s)
    for i, yaw in enumerate(yaws):
        if yaw is not None:
            m.observe(t0 + i / FPS, estimate_pose(face_keypoints(yaw)))
    m.finish()
    return m


def test_looking_the_whole_time_gives_attention_equal_to_the_observed_span() -> None:
    m = meter_over([0.0] * 31)
    assert m.glances == 1
    assert m.attention_s == pytest.approx(3.0)
    assert m.first_glance() == pytest.approx(0.0)


def test_two_separate_looks_are_two_glances() -> None:
    yaws = [60.0] * 5 + [0.0] * 10 + [60.0] * 10 + [5.0] * 8 + [70.0] * 5
    m = meter_over(yaws)
    assert m.glances == 2
    assert m.attention_s == pytest.approx(0.9 + 0.7)
    assert m.first_glance() == pytest.approx(0.5, abs=0.11)  # the 3-frame median may add one frame of latency


def test_a_look_shorter_than_min_glance_is_not_a_glance() -> None:
    yaws = [60.0] * 5 + [0.0] * 2 + [60.0] * 5  # 0.1 s spell
    m = meter_over(yaws, AttentionConfig(smoothing_s=0.0, min_glance_s=0.3))
    assert m.glances == 0 and m.attention_s == 0.0 and m.first_glance() is None


def test_pitch_beyond_its_limit_is_not_looking() -> None:
    m = AttentionMeter(AttentionConfig(smoothing_s=0.0, pitch_limit_deg=20), 0.5)
    for i in range(10):
        m.observe(i / FPS, estimate_pose(face_keypoints(0.0, pitch=-35.0)))  # looking at the floor
    assert m.glances == 0 and not m.looking


def test_hysteresis_keeps_one_glance_while_yaw_wobbles_around_the_limit() -> None:
    wobble = [0.0] * 5 + [23.0, 27.0, 24.0, 28.0, 26.0, 22.0, 27.0] + [0.0] * 5
    with_h = meter_over(wobble, AttentionConfig(smoothing_s=0.0, yaw_limit_deg=25, hysteresis_deg=5))
    without = meter_over(wobble, AttentionConfig(smoothing_s=0.0, yaw_limit_deg=25, hysteresis_deg=0, min_glance_s=0))
    assert with_h.glances == 1
    assert without.glances > 1


def test_a_single_frame_of_wild_pose_does_not_split_a_glance() -> None:
    yaws = [0.0] * 10 + [80.0] + [0.0] * 10
    assert meter_over(yaws, AttentionConfig(smoothing_s=0.2)).glances == 1
    assert meter_over(yaws, AttentionConfig(smoothing_s=0.0)).glances == 1  # the 3-frame median alone does it
    assert meter_over([0.0] * 10 + [80.0] * 4 + [0.0] * 10, AttentionConfig(smoothing_s=0.0)).glances == 2


def test_a_gap_longer_than_max_gap_ends_the_glance_and_is_not_counted_as_looking() -> None:
    yaws: list[float | None] = [0.0] * 10 + [None] * 10 + [0.0] * 10  # 1 s unseen
    m = meter_over(yaws, max_gap_s=0.5)
    assert m.glances == 2
    assert m.attention_s == pytest.approx(0.9 + 0.9)


def test_a_short_gap_is_bridged() -> None:
    yaws: list[float | None] = [0.0] * 10 + [None] * 3 + [0.0] * 10
    m = meter_over(yaws, max_gap_s=0.5)
    assert m.glances == 1 and m.attention_s == pytest.approx(2.2)


def test_unknown_pose_counts_as_turned_away() -> None:
    m = AttentionMeter(AttentionConfig(smoothing_s=0.0), 0.5)
    m.observe(0.0, Pose(0, 0))
    assert m.looking
    m.observe(0.1, None)
    m.observe(0.2, Pose(math.nan, 0))
    assert not m.looking


def test_one_failed_pose_fit_inside_a_glance_does_not_split_it() -> None:
    m = AttentionMeter(AttentionConfig(smoothing_s=0.15), 0.5)
    for i in range(20):
        m.observe(i / FPS, None if i == 10 else Pose(0, 0))
    m.finish()
    assert m.glances == 1 and m.attention_s == pytest.approx(1.9)


def run_visit(yaws: list[float | None], visits: VisitConfig | None = None) -> TrackEnd:
    cfg = AnalyticsConfig()
    tracker = Tracker(TrackerConfig(update_interval_s=0), HeadSpec(), cfg.attention, visits or cfg.visits)
    t0 = 1_800_000_000.0
    events = []
    for i, yaw in enumerate(yaws):
        faces = [] if yaw is None else [make_face(300, yaw=yaw)]
        events += tracker.update(faces, t0 + i / FPS)
    events += tracker.flush()
    (end,) = [e for e in events if isinstance(e, TrackEnd)]
    return end


def test_track_end_reports_attention_glances_and_time_to_first_glance() -> None:
    end = run_visit([70.0] * 20 + [0.0] * 20 + [70.0] * 10)
    assert end.glances == 1
    assert end.attention_s == pytest.approx(2.0, abs=0.25)
    assert end.time_to_first_glance_s == pytest.approx(2.0, abs=0.25)
    assert end.dwell_s == pytest.approx(4.9) and end.viewer and not end.short


def test_a_long_visit_that_never_looks_is_a_passer_by() -> None:
    end = run_visit([60.0] * 50)
    assert end.glances == 0 and end.time_to_first_glance_s is None
    assert not end.viewer and not end.short


def test_a_very_short_visit_is_a_passer_by_even_if_it_looked() -> None:
    end = run_visit([0.0] * 6, VisitConfig(min_dwell_s=1.0, min_samples=3))
    assert end.glances == 1 and end.short and not end.viewer


def test_dwell_counts_the_gap_inside_a_visit_but_attention_does_not() -> None:
    end = run_visit([0.0] * 10 + [None] * 12 + [0.0] * 10)  # 1.2 s unseen: same visit, two glances
    assert end.dwell_s == pytest.approx(3.1)
    assert end.reconnects == 1
    assert end.glances == 2
    assert end.attention_s == pytest.approx(1.8, abs=0.05)
