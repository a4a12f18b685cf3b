"""Interval summaries: arithmetic over a scripted sequence of visits, interval boundaries, minors, model info."""

from __future__ import annotations

import pytest

from edge_agent.analytics.config import SummaryConfig
from edge_agent.analytics.summary import IntervalSummarizer, SummaryModel
from edge_agent.track.events import UNKNOWN, AttributeEstimate, HeadEstimate, HeadSpec, TrackEnd

AGE = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
SPEC = HeadSpec(
    labels={"age": AGE, "gender": ("male", "female")},
    age_group_edges=(0, 3, 10, 20, 30, 40, 50, 60, 70),
    age_years=True,
)
MODEL = SummaryModel("attributes-int8", "1.2.0", "ab" * 32)
T0 = 1_800_000_040.0  # 40 s into a minute


def visit(
    dwell: float,
    attention: float = 0.0,
    age: str = "30-39",
    gender: str = "female",
    minor: bool = False,
    short: bool = False,
    first: float | None = None,
    attributes: AttributeEstimate | None = None,
    viewer: bool | None = None,
) -> TrackEnd:
    """A gone visit ending at T0; `attributes` and `viewer` override what the other arguments would make."""
    if viewer is None:
        viewer = attention > 0 and not short
    attrs = attributes or (
        AttributeEstimate(minor=True)
        if minor
        else AttributeEstimate(age=HeadEstimate(age, 0.6), gender=HeadEstimate(gender, 0.9), minor=False)
    )
    return TrackEnd(
        track_id="0" * 16,
        ts=T0,
        start_ts=T0 - dwell,
        dwell_s=dwell,
        samples=10,
        attention_s=attention,
        glances=1 if attention else 0,
        time_to_first_glance_s=first,
        viewer=viewer,
        short=short,
        reconnects=0,
        attributes=attrs,
        reason="gone",
    )


def summarizer(**kw) -> IntervalSummarizer:
    return IntervalSummarizer(SummaryConfig(**kw), SPEC, MODEL, min_age_years=18)


def test_summary_arithmetic_over_a_scripted_sequence_of_visits() -> None:
    s = summarizer(interval_s=60)
    assert s.tick(T0) is None
    visits = [
        visit(2.0, short=True),  # passer-by (short)
        visit(4.0),  # passer-by (never looked)
        visit(12.0, attention=6.0, first=1.0, gender="male", age="20-29"),  # viewer
        visit(40.0, attention=20.0, first=3.0),  # viewer
        visit(75.0, attention=0.0, age="50-59"),  # passer-by, long
        visit(8.0, age=UNKNOWN, gender=UNKNOWN),  # passer-by, unknown attributes
        visit(20.0, attention=5.0, minor=True),  # minor viewer: only a count
        visit(1.0, minor=True, short=True),  # minor passer-by
    ]
    for i, v in enumerate(visits):
        s.add(v, T0 + i)
    assert s.tick(T0 + 10) is None  # still inside the interval
    out = s.tick(T0 + 21, present=2)  # crossed the minute boundary at T0 + 20
    assert out is not None
    assert out["interval_end"].endswith(":00.000Z")
    assert out["opportunities_to_see"] == 8
    assert out["viewers"] == 2 and out["passers_by"] == 4 and out["short_visits"] == 1
    assert out["minors"] == {"viewers": 1, "passers_by": 1}
    assert out["viewers"] + out["passers_by"] + sum(out["minors"].values()) == out["opportunities_to_see"]
    assert out["present_at_end"] == 2
    assert out["dwell_s"] == {"total": 141.0, "average": 23.5}
    assert out["attention_s"] == {"total": 26.0, "average": pytest.approx(26 / 6, abs=1e-3), "average_per_viewer": 13.0}
    assert out["time_to_first_glance_s"] == {"average": 2.0}
    buckets = {(b["min_s"], b["max_s"]): (b["viewers"], b["passers_by"]) for b in out["dwell_buckets"]}
    assert buckets == {
        (0.0, 5.0): (0, 2),
        (5.0, 15.0): (1, 1),
        (15.0, 30.0): (0, 0),
        (30.0, 60.0): (1, 0),
        (60.0, None): (0, 1),
    }
    assert out["gender"] == {
        "male": {"viewers": 1, "passers_by": 0},
        "female": {"viewers": 1, "passers_by": 3},
        UNKNOWN: {"viewers": 0, "passers_by": 1},
    }
    assert out["age"]["20-29"] == {"viewers": 1, "passers_by": 0}
    assert out["age"]["30-39"] == {"viewers": 1, "passers_by": 2}
    assert out["age"]["50-59"] == {"viewers": 0, "passers_by": 1}
    assert not {"0-2", "3-9", "10-19"} & set(out["age"])  # under-age groups are never reported by label
    assert out["model"] == {"name": "attributes-int8", "version": "1.2.0", "sha256": "ab" * 32}
    assert out["heads"] == ["age", "gender"] and "race" not in out
    assert out["partial"] is False


def test_intervals_are_aligned_and_a_visit_counts_once_in_the_interval_its_end_was_sent() -> None:
    s = summarizer(interval_s=60)
    s.tick(T0)
    s.add(visit(90.0, attention=30.0), T0 + 5)  # started in an earlier minute, counted here, whole
    first = s.tick(T0 + 20)
    assert first["opportunities_to_see"] == 1 and first["dwell_s"]["total"] == 90.0
    assert first["interval_start"].endswith(":00.000Z") and first["interval_end"].endswith(":00.000Z")
    s.add(visit(3.0), T0 + 30)
    second = s.tick(T0 + 80)
    assert second["opportunities_to_see"] == 1 and second["interval_start"] == first["interval_end"]


def test_an_interval_without_visits_is_all_zeros() -> None:
    s = summarizer(interval_s=60)
    s.tick(T0)
    out = s.tick(T0 + 60)
    assert out["opportunities_to_see"] == 0 and out["dwell_s"] == {"total": 0.0, "average": 0.0}
    assert out["time_to_first_glance_s"] == {"average": None}
    assert all(v == {"viewers": 0, "passers_by": 0} for v in out["gender"].values())


def test_flush_sends_a_partial_summary_and_custom_buckets_are_used() -> None:
    s = summarizer(interval_s=60, dwell_buckets_s=[10, 100])
    s.tick(T0)
    s.add(visit(50.0, attention=5.0), T0 + 1)
    out = s.flush(T0 + 2)
    assert out["partial"] is True and out["opportunities_to_see"] == 1
    assert [(b["min_s"], b["max_s"]) for b in out["dwell_buckets"]] == [(0.0, 10), (10, 100), (100, None)]
    assert out["dwell_buckets"][1]["viewers"] == 1
    assert s.flush(T0 + 3) is None


def test_without_an_attribute_model_the_summary_still_counts_and_says_so() -> None:
    s = IntervalSummarizer(SummaryConfig(interval_s=60), HeadSpec(), None)
    s.tick(T0)
    s.add(visit(5.0, attention=2.0), T0)
    out = s.tick(T0 + 60)
    assert out["model"] is None and out["heads"] == [] and "age" not in out and "gender" not in out
    assert out["viewers"] == 1
