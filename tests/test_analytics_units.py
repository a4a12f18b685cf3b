"""Unit-level checks of the analytics package: exact summary payloads, engine flush/stats/from_metadata, synthetics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge_agent.analytics.config import AnalyticsConfig, AudienceConfig, SummaryConfig
from edge_agent.analytics.engine import AnalyticsMessage, CameraAnalytics
from edge_agent.analytics.pose import estimate_pose
from edge_agent.analytics.summary import IntervalSummarizer, SummaryModel
from edge_agent.analytics.synthetic import face_keypoints, head, make_face
from edge_agent.modelmeta import CropSpec, ModelMetadata, Preprocess
from edge_agent.records import Attributes, Box
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import UNKNOWN, AttributeEstimate, HeadEstimate, HeadSpec, TrackEnd
from tests.test_analytics_summary import T0, visit

AGE = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
EDGES = (0, 3, 10, 20, 30, 40, 50, 60, 70)
GENDER = ("male", "female")
RACE = ("white", "black", "asian", "indian", "other")
SPEC = HeadSpec(labels={"age": AGE, "gender": GENDER}, age_group_edges=EDGES, age_years=True)
MODEL = SummaryModel("attributes-int8", "1.2.0", "ab" * 32)
MINUTE = "2027-01-15T08:00:00.000Z"
NEXT_MINUTE = "2027-01-15T08:01:00.000Z"


def zero() -> dict[str, int]:
    return {"viewers": 0, "passers_by": 0}


def split(viewers: int, passers_by: int) -> dict[str, int]:
    return {"viewers": viewers, "passers_by": passers_by}


def end(
    dwell: float,
    attention: float = 0.0,
    first: float | None = None,
    attributes: AttributeEstimate | None = None,
    viewer: bool | None = None,
    short: bool = False,
) -> TrackEnd:
    return visit(
        dwell,
        attention,
        short=short,
        first=first,
        attributes=attributes if attributes is not None else AttributeEstimate(minor=False),
        viewer=viewer,
    )


def adult(age: str, gender: str) -> AttributeEstimate:
    return AttributeEstimate(age=HeadEstimate(age, 0.6), gender=HeadEstimate(gender, 0.9), minor=False)


MINOR = AttributeEstimate(minor=True)


def summarizer(**kw: object) -> IntervalSummarizer:
    return IntervalSummarizer(SummaryConfig(interval_s=60, **kw), SPEC, MODEL, min_age_years=18)


def age_split(nonzero: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The age breakdown of SPEC with min age 18 (adult groups, then unknown), zero unless given."""
    return {lab: nonzero.get(lab, zero()) for lab in ("20-29", "30-39", "40-49", "50-59", "60-69", "70+", UNKNOWN)}


def metadata() -> ModelMetadata:
    return ModelMetadata(
        name="attributes-int8",
        version="2.0.1",
        sha256="cd" * 32,
        quantization="int8",
        preprocess=Preprocess(size=96, color="RGB", mean=127.5, std=127.5),
        crop=CropSpec(margin=0.2, square=True, alignment="none"),
        labels={"age": AGE, "gender": GENDER, "race": RACE},
        age_group_edges=EDGES,
        raw={},
    )


# --- IntervalSummarizer -------------------------------------------------------------------------------------------


def test_the_whole_payload_of_an_interval_is_exact_to_three_decimals() -> None:
    s = summarizer()
    assert s.tick(T0) is None
    for i, e in enumerate(
        [
            end(5.0, attention=1.0, first=0.5, attributes=adult("20-29", "male")),  # viewer, dwell on a bucket edge
            end(10 / 3, attributes=adult("30-39", "female")),  # passer-by
            end(15.0, attention=2 / 3, first=1 / 3, attributes=adult("30-39", "female")),  # viewer, on an edge
            end(20.0, attention=5.0, first=1.0, attributes=MINOR),  # minor viewers: counts only
            end(3.0, attention=1.0, first=2.0, attributes=MINOR),
            end(2.0, attributes=MINOR),  # minor passer-by
        ]
    ):
        s.add(e, T0 + i)
    out = s.tick(T0 + 20, present=3)
    assert out == {
        "interval_start": MINUTE,
        "interval_end": NEXT_MINUTE,
        "interval_s": 60.0,
        "partial": False,
        "model": {"name": "attributes-int8", "version": "1.2.0", "sha256": "ab" * 32},
        "heads": ["age", "gender"],
        "opportunities_to_see": 6,
        "viewers": 2,
        "passers_by": 1,
        "short_visits": 0,
        "minors": split(2, 1),
        "present_at_end": 3,
        # 5 + 10/3 + 15 = 23.3333..., / 3 = 7.7777...
        "dwell_s": {"total": 23.333, "average": 7.778},
        # 1 + 2/3 = 1.6666..., / 3 adults = 0.5555..., / 2 viewers = 0.8333...
        "attention_s": {"total": 1.667, "average": 0.556, "average_per_viewer": 0.833},
        # (0.5 + 1/3) / 2 = 0.41666...; the minors' first glances are not included
        "time_to_first_glance_s": {"average": 0.417},
        "dwell_buckets": [
            {"min_s": 0.0, "max_s": 5.0, **split(0, 1)},
            {"min_s": 5.0, "max_s": 15.0, **split(1, 0)},  # exactly 5 s is in the upper bucket
            {"min_s": 15.0, "max_s": 30.0, **split(1, 0)},
            {"min_s": 30.0, "max_s": 60.0, **zero()},
            {"min_s": 60.0, "max_s": None, **zero()},
        ],
        "age": age_split({"20-29": split(1, 0), "30-39": split(1, 1)}),
        "gender": {"male": split(1, 0), "female": split(1, 1), UNKNOWN: zero()},
    }
    assert all(type(v) is float for v in (*out["dwell_s"].values(), *out["attention_s"].values()))


def test_an_interval_of_minors_only_has_zero_averages_and_no_first_glance() -> None:
    s = summarizer()
    s.tick(T0)
    s.add(end(20.0, attention=5.0, first=1.0, attributes=MINOR), T0 + 1)
    s.add(end(4.0, attention=2.0, first=0.5, attributes=MINOR), T0 + 2)
    out = s.tick(T0 + 20)
    assert out["minors"] == split(2, 0)
    assert (out["viewers"], out["passers_by"], out["opportunities_to_see"]) == (0, 0, 2)
    assert out["dwell_s"] == {"total": 0.0, "average": 0.0}
    assert out["attention_s"] == {"total": 0.0, "average": 0.0, "average_per_viewer": 0.0}
    assert out["time_to_first_glance_s"] == {"average": None}
    assert all(b["viewers"] == b["passers_by"] == 0 for b in out["dwell_buckets"])


def test_passers_by_only_have_no_attention_per_viewer() -> None:
    s = summarizer()
    s.tick(T0)
    s.add(end(7.0, attributes=adult("40-49", "male")), T0 + 1)
    short = end(0.5, attention=0.25, first=0.1, short=True, attributes=adult("40-49", "male"))  # glanced, too short
    s.add(short, T0 + 2)
    out = s.tick(T0 + 20)
    assert (out["viewers"], out["passers_by"], out["short_visits"]) == (0, 2, 1)
    assert out["attention_s"] == {"total": 0.25, "average": 0.125, "average_per_viewer": 0.0}
    assert out["dwell_s"] == {"total": 7.5, "average": 3.75}
    assert out["time_to_first_glance_s"] == {"average": None}


def test_dwell_exactly_on_a_custom_edge_falls_in_the_upper_bucket() -> None:
    s = summarizer(dwell_buckets_s=[10, 100])
    s.tick(T0)
    for dwell in (9.999, 10.0, 100.0, 99.5):
        s.add(end(dwell), T0)
    out = s.flush(T0 + 1)
    assert out["dwell_buckets"] == [
        {"min_s": 0.0, "max_s": 10, **split(0, 1)},
        {"min_s": 10, "max_s": 100, **split(0, 2)},
        {"min_s": 100, "max_s": None, **split(0, 1)},
    ]


def test_a_missing_head_or_a_label_not_reported_counts_as_unknown() -> None:
    s = summarizer()
    s.tick(T0)
    # Age told as an under-age group but the visit not gated (minor undecided): that label is never reported.
    s.add(end(3.0, attributes=AttributeEstimate(age=HeadEstimate("10-19", 0.4), gender=None, minor=None)), T0)
    s.add(end(6.0, attention=2.0, attributes=AttributeEstimate()), T0)  # a viewer without any head
    s.add(end(6.0, attention=2.0, attributes=AttributeEstimate(gender=HeadEstimate("female", 0.8))), T0)
    out = s.tick(T0 + 20)
    assert out["age"] == age_split({UNKNOWN: split(2, 1)})
    assert out["gender"] == {"male": zero(), "female": split(1, 0), UNKNOWN: split(1, 1)}
    assert out["minors"] == zero() and out["opportunities_to_see"] == 3


def test_a_visit_added_before_any_tick_starts_the_interval_it_is_counted_in() -> None:
    s = summarizer()
    s.add(end(4.0), T0 + 1)  # no tick yet: the interval is the minute of the end record
    out = s.flush(T0 + 2)
    assert out is not None
    assert (out["interval_start"], out["interval_end"]) == (MINUTE, "2027-01-15T08:00:42.000Z")
    assert out["partial"] is True and out["present_at_end"] == 0 and out["opportunities_to_see"] == 1
    assert s.flush(T0 + 3) is None


def test_a_visit_added_later_does_not_move_the_started_interval() -> None:
    s = summarizer()
    s.tick(T0)
    s.add(end(4.0), T0 + 25)  # already the next minute (no frame ticked it yet): still this interval
    out = s.flush(T0 + 26)
    assert (out["interval_start"], out["interval_end"]) == (MINUTE, "2027-01-15T08:01:06.000Z")
    assert out["opportunities_to_see"] == 1 and out["present_at_end"] == 0


def test_after_a_gap_without_frames_the_next_interval_starts_at_the_current_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = summarizer()
    s.tick(T0)
    s.add(end(4.0), T0 + 1)
    with caplog.at_level("INFO", logger="edge_agent.analytics.summary"):
        out = s.tick(T0 + 200)  # 08:04:00: the minutes 08:01, 08:02 and 08:03 had no frame
    assert (out["interval_start"], out["interval_end"], out["opportunities_to_see"]) == (MINUTE, NEXT_MINUTE, 1)
    assert "no frames for 3 summary interval(s)" in caplog.text
    later = s.flush(T0 + 230)
    assert (later["interval_start"], later["interval_end"]) == ("2027-01-15T08:04:00.000Z", "2027-01-15T08:04:30.000Z")
    assert later["opportunities_to_see"] == 0


def test_a_flush_with_the_clock_behind_the_interval_start_ends_where_it_started() -> None:
    s = summarizer()
    s.tick(T0)
    out = s.flush(T0 - 50)
    assert (out["interval_start"], out["interval_end"]) == (MINUTE, MINUTE)


def test_without_children_gating_every_age_group_is_reported() -> None:
    s = IntervalSummarizer(SummaryConfig(interval_s=60), SPEC, MODEL, min_age_years=0)
    s.tick(T0)
    s.add(end(4.0, attributes=adult("10-19", "male")), T0)
    out = s.flush(T0 + 1)
    assert list(out["age"]) == [*AGE, UNKNOWN]
    assert out["age"]["10-19"] == split(0, 1) and out["minors"] == zero()


def test_flush_reports_the_given_present_count() -> None:
    s = summarizer()
    s.tick(T0)
    assert s.flush(T0 + 1, present=4)["present_at_end"] == 4


def test_summary_model_from_metadata_copies_name_version_and_digest() -> None:
    m = SummaryModel.from_metadata(metadata())
    assert m == SummaryModel(name="attributes-int8", version="2.0.1", sha256="cd" * 32)
    assert m.payload() == {"name": "attributes-int8", "version": "2.0.1", "sha256": "cd" * 32}


# --- CameraAnalytics ----------------------------------------------------------------------------------------------


T1 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
GSPEC = HeadSpec(labels={"gender": GENDER})
FEMALE = Attributes(gender=head(GENDER, 1, 0.9))


def engine(**summary: object) -> CameraAnalytics:
    return CameraAnalytics(TrackerConfig(), AnalyticsConfig(summary=SummaryConfig(**summary)), GSPEC, MODEL)


def four_frames(e: CameraAnalytics) -> list[AnalyticsMessage]:
    """One face for 4 frames at 10 fps (wall clock only): confirmed on the 2nd, an audience at 0.0 s and 0.3 s."""
    out: list[AnalyticsMessage] = []
    for i in range(4):
        out += e.process([make_face(320, attributes=FEMALE)], T1 + i / 10)
    return out


def test_flush_ends_the_visit_and_sends_the_partial_summary_and_an_empty_audience_despite_the_rate_limit() -> None:
    e = engine()
    sent = four_frames(e)
    assert [m.payload["count"] for m in sent if m.topic == "audience"] == [0, 1]
    out = e.flush(T1 + 0.35)  # 0.05 s after the last audience: a 4 Hz limit would hold it back
    assert [(m.topic, m.schema) for m in out] == [
        ("tracks", "edge-agent/tracks/1"),
        ("summary", "edge-agent/summary/1"),
        ("audience", "edge-agent/audience/1"),
    ]
    track, summary, audience = (m.payload for m in out)
    assert track["event"] == "end" and track["reason"] == "shutdown" and track["samples"] == 4
    assert out[0].event is not None and out[0].event.reason == "shutdown"
    assert summary["partial"] is True and summary["opportunities_to_see"] == 1 and summary["present_at_end"] == 0
    assert (summary["interval_start"], summary["interval_end"]) == (MINUTE, "2027-01-15T08:00:00.350Z")
    assert summary["model"] == MODEL.payload()
    assert audience == {
        "t": "2027-01-15T08:00:00.350Z",
        "count": 0,
        "looking_count": 0,
        "minors": 0,
        "present": [],
        "looking": [],
        "dominant": None,
    }
    # The face was confirmed at 0.1 s; its audience waited for the 4 Hz limit until 0.3 s: one delayed change. The
    # forced, final audience is not counted (the limit does not apply to it).
    assert e.stats()["audience_rate_limited"] == 1
    assert e.flush(T1 + 0.4) == []  # nothing left: no end, no summary, an unchanged (empty) audience


def test_flush_passes_its_reason_to_the_end_records() -> None:
    e = engine()
    four_frames(e)
    out = e.flush(T1 + 1.0, reason="pause")
    ends = [m for m in out if m.topic == "tracks"]
    assert len(ends) == 1 and ends[0].payload["reason"] == "pause" and ends[0].event.reason == "pause"


def test_flush_counts_visits_of_a_tracker_fed_directly_in_the_interval_of_the_flush() -> None:
    e = engine(interval_s=60)
    for i in range(3):  # the public tracker, bypassing process(): the summary has no interval yet
        e.tracker.update([make_face(320, attributes=FEMALE)], T0 + i / 10)
    out = e.flush(T0 + 1.0)
    summary = next(m.payload for m in out if m.topic == "summary")
    assert (summary["interval_start"], summary["interval_end"]) == (MINUTE, "2027-01-15T08:00:41.000Z")
    assert summary["opportunities_to_see"] == 1


def test_flush_without_summary_or_audience_sends_only_the_end_records() -> None:
    cfg = AnalyticsConfig(summary=SummaryConfig(enabled=False), audience=AudienceConfig(enabled=False))
    e = CameraAnalytics(TrackerConfig(), cfg, GSPEC)
    for i in range(4):
        assert all(m.topic == "tracks" for m in e.process([make_face(320, attributes=FEMALE)], T1 + i / 10))
    assert [m.topic for m in e.flush(T1 + 1.0)] == ["tracks"]


def test_stats_are_the_tracker_counters_plus_the_rate_limited_audiences() -> None:
    e = engine()
    four_frames(e)
    e.process([], T1 + 0.4)
    good = make_face(320)
    empty = replace(good, detection=replace(good.detection, box=Box(320.0, 240.0, 320.0, 240.0)))
    e.process([empty], T1 + 0.5)  # an invalid (empty-box) face
    assert e.stats() == {
        "frames": 6,
        "faces": 4,
        "invalid_faces": 1,
        "clock_backwards": 0,
        "tracks_started": 1,
        "tracks_ended": 0,
        "tentative_dropped": 0,
        "reconnects": 0,
        "pose_unknown": 0,
        "active": 1,
        "classifications": 0,
        "classify_too_small": 0,
        "classify_held_back": 0,
        "audience_rate_limited": 1,  # the confirmed face's audience, held from 0.1 s to 0.3 s
    }
    e.flush(T1 + 0.6)
    stats = e.stats()
    assert (stats["tracks_ended"], stats["active"], stats["audience_rate_limited"]) == (1, 0, 1)


def test_from_metadata_keeps_the_enabled_heads_and_names_the_model() -> None:
    e = CameraAnalytics.from_metadata(TrackerConfig(), AnalyticsConfig(), metadata(), ["race", "gender", "mood"])
    assert e.spec == HeadSpec(labels={"gender": GENDER, "race": RACE})
    e.process([], T1)
    summary = next(m.payload for m in e.flush(T1 + 1.0) if m.topic == "summary")
    assert summary["model"] == {"name": "attributes-int8", "version": "2.0.1", "sha256": "cd" * 32}
    assert summary["heads"] == ["gender", "race"] and "age" not in summary
    assert summary["race"] == {lab: zero() for lab in (*RACE, UNKNOWN)}


def test_from_metadata_without_a_model_has_no_heads_and_no_model() -> None:
    e = CameraAnalytics.from_metadata(TrackerConfig(), AnalyticsConfig(), None, ["gender"])
    assert e.spec == HeadSpec()
    e.process([], T1)
    summary = next(m.payload for m in e.flush(T1 + 1.0) if m.topic == "summary")
    assert summary["model"] is None and summary["heads"] == []


# --- synthetic ----------------------------------------------------------------------------------------------------


def test_head_puts_p_on_the_top_label_and_spreads_the_rest_evenly() -> None:
    assert head(("a", "b"), 1, 0.8).probs == pytest.approx((0.2, 0.8))
    assert head(("a", "b", "c"), 0, 0.6).probs == pytest.approx((0.6, 0.2, 0.2))
    assert head(RACE, 3, 0.6).probs == pytest.approx((0.1, 0.1, 0.1, 0.6, 0.1))
    assert head(("only",), 0, 1.0).probs == (1.0,)
    assert head(("a", "b", "c"), 2, 0.5).labels == ("a", "b", "c")


def test_make_face_defaults_are_a_frontal_120_px_face_at_mid_height() -> None:
    f = make_face(100.0)
    assert f.detection.box == Box(40.0, 168.0, 160.0, 312.0)
    assert f.face_px == 120.0 and f.detection.score == 0.9 and f.attributes is None
    np.testing.assert_array_equal(f.detection.keypoints, face_keypoints(0.0, 0.0, centre=(100.0, 240.0), width_px=120))
    kp = f.detection.keypoints
    assert kp.shape == (6, 2) and kp.dtype == np.float32
    assert f.pose is not None
    assert f.pose == estimate_pose(kp)  # estimated once from the keypoints, as the camera loop does
    assert abs(f.pose.yaw) < 0.5 and abs(f.pose.pitch) < 1.0


def test_make_face_box_keypoints_and_pose_follow_the_arguments() -> None:
    attrs = Attributes(gender=head(GENDER, 0, 0.7))
    f = make_face(200.0, cy=150.0, width=50.0, yaw=30.0, pitch=-10.0, attributes=attrs, score=0.75)
    assert f.detection.box == Box(175.0, 120.0, 225.0, 180.0)
    assert f.face_px == 50.0 and f.detection.score == 0.75 and f.attributes is attrs
    np.testing.assert_array_equal(
        f.detection.keypoints, face_keypoints(30.0, -10.0, centre=(200.0, 150.0), width_px=50)
    )
    assert f.pose == estimate_pose(f.detection.keypoints)
    assert f.pose.yaw == pytest.approx(30.0, abs=2.0) and f.pose.pitch == pytest.approx(-10.0, abs=2.0)
