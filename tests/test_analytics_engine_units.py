"""CameraAnalytics and IntervalSummarizer, unit level: which config reaches the tracker, wall vs monotonic clock,
the summary's present count, defaults of the summarizer and its gap log line."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.analytics.config import AnalyticsConfig, AttentionConfig, SummaryConfig, VisitConfig
from edge_agent.analytics.engine import AnalyticsMessage, CameraAnalytics
from edge_agent.analytics.summary import IntervalSummarizer
from edge_agent.analytics.synthetic import make_face
from edge_agent.timefmt import iso_ts
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import UNKNOWN
from tests.test_analytics_summary import T0
from tests.test_analytics_units import AGE, FEMALE, GSPEC, MODEL, SPEC, T1, adult, end, split, summarizer, zero


def run(e: CameraAnalytics, frames: int, yaw: float = 0.0, t0: float = T1) -> list[AnalyticsMessage]:
    """One face in front of the camera for `frames` frames at 10 fps (wall clock only)."""
    out: list[AnalyticsMessage] = []
    for i in range(frames):
        out += e.process([make_face(320, yaw=yaw, attributes=FEMALE)], t0 + i / 10)
    return out


def by_topic(msgs: list[AnalyticsMessage], topic: str) -> list[dict[str, Any]]:
    return [m.payload for m in msgs if m.topic == topic]


# --- which config reaches the tracker -----------------------------------------------------------------------------


@pytest.mark.parametrize(("attention", "looking"), [(AttentionConfig(yaw_limit_deg=50.0), True), (None, False)])
def test_the_configured_attention_limits_decide_who_is_looking(
    attention: AttentionConfig | None, looking: bool
) -> None:
    cfg = AnalyticsConfig() if attention is None else AnalyticsConfig(attention=attention)
    e = CameraAnalytics(TrackerConfig(), cfg, GSPEC, MODEL)
    msgs = run(e, 20, yaw=40.0)  # 40 degrees: within a 50 degree limit, past the default 25
    audience = by_topic(msgs, "audience")[-1]
    assert audience["count"] == 1 and (audience["looking_count"] == 1) is looking
    (ended,) = by_topic(e.flush(T1 + 2.0), "tracks")
    assert ended["viewer"] is looking and (ended["attention_s"] > 1.5) is looking


@pytest.mark.parametrize(("visits", "viewer"), [(VisitConfig(min_dwell_s=5.0), False), (None, True)])
def test_the_configured_visit_rules_decide_who_is_a_viewer(visits: VisitConfig | None, viewer: bool) -> None:
    cfg = AnalyticsConfig() if visits is None else AnalyticsConfig(visits=visits)
    e = CameraAnalytics(TrackerConfig(), cfg, GSPEC, MODEL)
    run(e, 30)  # looking straight at the screen for 2.9 s: a viewer by default, too short for min_dwell_s = 5
    out = e.flush(T1 + 3.0)
    (ended,) = by_topic(out, "tracks")
    assert (ended["viewer"], ended["short"]) == (viewer, not viewer)
    (summary,) = by_topic(out, "summary")
    assert (summary["viewers"], summary["passers_by"], summary["short_visits"]) == (
        int(viewer),
        int(not viewer),
        int(not viewer),
    )


# --- the summary's present count ----------------------------------------------------------------------------------


def test_the_summary_counts_the_visits_still_present_when_its_interval_closes() -> None:
    e = CameraAnalytics(TrackerConfig(), AnalyticsConfig(), GSPEC, MODEL)
    msgs: list[AnalyticsMessage] = []
    for i in range(15):  # two people from 08:00:59.0 to 08:01:00.4: the minute closes while both are there
        faces = [make_face(160, attributes=FEMALE), make_face(480, attributes=FEMALE)]
        msgs += e.process(faces, T1 + 59.0 + i / 10)
    (summary,) = by_topic(msgs, "summary")
    assert summary["interval_end"] == "2027-01-15T08:01:00.000Z"
    assert summary["present_at_end"] == 2 and summary["opportunities_to_see"] == 0


# --- wall clock and monotonic clock -------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [500.0, T1 + 10_000.0], ids=["mono-behind-wall", "mono-ahead-of-wall"])
def test_the_audience_is_timed_by_the_monotonic_clock_whatever_its_origin(origin: float) -> None:
    e = CameraAnalytics(TrackerConfig(), AnalyticsConfig(), GSPEC, MODEL)
    sent: list[tuple[int, dict[str, Any]]] = []
    for i in range(10):
        for m in e.process([make_face(320, attributes=FEMALE)], T1 + i / 10, mono=origin + i / 10):
            if m.topic == "audience":
                sent.append((i, m.payload))
    # empty at the first frame (the face is not confirmed yet), the face on the first frame the 4 Hz limit allows
    assert [(i, p["count"]) for i, p in sent] == [(0, 0), (3, 1)]
    assert [p["t"] for _, p in sent] == [iso_ts(T1), iso_ts(T1 + 0.3)]  # stamped with the wall clock
    assert sent[1][1]["present"][0]["dwell_s"] == 0.3


def test_a_wall_clock_step_back_does_not_stop_tracking_when_the_monotonic_clock_runs_on() -> None:
    e = CameraAnalytics(TrackerConfig(), AnalyticsConfig(), GSPEC, MODEL)
    msgs: list[AnalyticsMessage] = []
    for i in range(20):  # 10 fps; after 1 s the wall clock is set back by 5 s (NTP), the monotonic clock runs on
        ts = T1 + i / 10 - (5.0 if i >= 10 else 0.0)
        msgs += e.process([make_face(320, attributes=FEMALE)], ts, mono=500.0 + i / 10)
    assert (e.stats()["frames"], e.stats()["clock_backwards"]) == (20, 0)
    assert [p["count"] for p in by_topic(msgs, "audience")] == [0, 1]
    (ended,) = by_topic(e.flush(T1 - 3.0), "tracks")
    assert ended["samples"] == 20 and ended["dwell_s"] == 1.9  # durations from the monotonic clock


# --- IntervalSummarizer -------------------------------------------------------------------------------------------


def test_without_a_minimum_age_the_summarizer_reports_every_age_group() -> None:
    s = IntervalSummarizer(SummaryConfig(interval_s=60), SPEC, MODEL)  # min_age_years left at its default
    s.tick(T0)
    s.add(end(4.0, attributes=adult("0-2", "male")), T0)
    out = s.flush(T0 + 1)
    assert out is not None
    assert list(out["age"]) == [*AGE, UNKNOWN]
    assert out["age"]["0-2"] == split(0, 1) and out["age"][UNKNOWN] == zero()


def test_a_summary_closed_without_a_present_count_reports_nobody_present() -> None:
    s = summarizer()
    s.tick(T0)
    out = s.tick(T0 + 20)
    assert out is not None and out["present_at_end"] == 0


def test_a_gap_without_frames_logs_how_many_intervals_got_no_summary(caplog: pytest.LogCaptureFixture) -> None:
    s = summarizer()
    s.tick(T0)  # 08:00:40
    with caplog.at_level("INFO", logger="edge_agent.analytics.summary"):
        assert s.tick(T0 + 60) is not None  # 08:01:40: the next minute, no interval was skipped
        assert caplog.messages == []
        assert s.tick(T0 + 240) is not None  # 08:04:40: 08:02 and 08:03 had no frame
    assert caplog.messages == ["no frames for 2 summary interval(s); no summary is sent for them"]


def test_changes_the_audience_rate_limit_delays_are_counted_through_process() -> None:
    """The daemon's path (due() gating update()) counts delayed changes too, not only direct update() calls."""
    e = CameraAnalytics(TrackerConfig(), AnalyticsConfig(), GSPEC, MODEL)
    sent = 0
    for i in range(90):  # 30 fps for 3 s, turning towards and away from the screen every 0.1 s
        yaw = 0.0 if (i // 3) % 2 == 0 else 60.0
        sent += len(by_topic(e.process([make_face(320, yaw=yaw, attributes=FEMALE)], T1 + i / 30), "audience"))
    delayed = e.stats()["audience_rate_limited"]
    assert 0 < delayed < sent  # the first audience went out at once; later changes waited for the limit
