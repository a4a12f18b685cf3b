"""Live audience: change-only, rate-limited, quick to report a new looker, dominant group among lookers."""

from __future__ import annotations

from itertools import pairwise

from edge_agent.analytics.audience import AudienceMonitor, dominant
from edge_agent.analytics.config import AnalyticsConfig, AudienceConfig
from edge_agent.analytics.engine import CameraAnalytics
from edge_agent.analytics.synthetic import head, make_face
from edge_agent.records import Attributes, Box
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import AttributeEstimate, HeadEstimate, HeadSpec, TrackView

GENDER = ("male", "female")
SPEC = HeadSpec(labels={"gender": GENDER})
T0 = 1_800_000_000.0


def view(
    tid: str, looking: bool, gender: str = "female", p: float = 0.9, minor: bool | None = False, dwell: float = 1.0
) -> TrackView:
    attrs = AttributeEstimate(minor=True) if minor else AttributeEstimate(gender=HeadEstimate(gender, p), minor=minor)
    return TrackView(tid, T0, dwell, looking, 0.0, Box(0, 0, 10, 10), attrs)


def test_an_unchanged_audience_is_sent_once_even_as_dwell_grows() -> None:
    mon = AudienceMonitor(AudienceConfig(max_rate_hz=4))
    sent = [mon.update([view("a" * 16, False, dwell=i / 10)], T0 + i / 10) for i in range(50)]
    assert sum(s is not None for s in sent) == 1


def test_changes_are_rate_limited_and_the_latest_state_still_arrives() -> None:
    mon = AudienceMonitor(AudienceConfig(max_rate_hz=4))
    sent = []
    for i in range(120):  # 30 fps: for 3 s the looking state flips every frame, then it stays "not looking"
        looking = i < 90 and i % 2 == 0
        msg = mon.update([view("a" * 16, looking=looking)], T0 + i / 30)
        if msg is not None:
            sent.append((i / 30, msg))
    times = [t for t, _ in sent]
    assert len([t for t in times if t < 3.0]) <= 3 * 4
    assert all(b - a >= 0.25 - 1e-9 for a, b in pairwise(times))
    assert mon.suppressed > 0
    last_t, last = sent[-1]
    assert last["looking"] == [] and last_t <= 3.0 + 0.25 + 1e-9  # the held-back final state is delivered


def test_a_new_looker_is_reported_within_a_second_of_turning_to_the_screen() -> None:
    cfg = AnalyticsConfig()
    engine = CameraAnalytics(TrackerConfig(), cfg, SPEC)
    attrs = Attributes(gender=head(GENDER, 1, 0.9))
    turned_at = None
    reported_at = None
    for i in range(90):  # 30 fps: 1 s turned away, then looking
        t = T0 + i / 30
        yaw = 60.0 if i < 30 else 0.0
        if yaw == 0.0 and turned_at is None:
            turned_at = t
        for msg in engine.process([make_face(320, yaw=yaw, attributes=attrs)], t):
            if msg.topic == "audience" and msg.payload["looking"] and reported_at is None:
                reported_at = t
    assert turned_at is not None and reported_at is not None
    assert reported_at - turned_at <= 1.0
    print(f"looker reported {reported_at - turned_at:.2f} s after turning (frame time)")


def test_dominant_group_is_the_most_frequent_known_label_among_adult_lookers() -> None:
    lookers = [
        view("1" * 16, True, "female"),
        view("2" * 16, True, "male"),
        view("3" * 16, True, "female"),
        view("4" * 16, True, "male", minor=True),
        view("5" * 16, True, "unknown", p=0.5),
    ]
    assert dominant(lookers) == {"gender": "female"}
    assert dominant([view("4" * 16, True, minor=True)]) is None
    tie = [view("1" * 16, True, "female", p=0.7), view("2" * 16, True, "male", p=0.95)]
    assert dominant(tie) == {"gender": "male"}


def test_the_payload_lists_present_and_looking_and_withholds_minor_attributes() -> None:
    msg = AudienceMonitor.payload([view("1" * 16, True), view("2" * 16, False, minor=True)], T0)
    assert msg["count"] == 2 and msg["looking_count"] == 1 and msg["minors"] == 1
    assert msg["looking"] == ["1" * 16]
    child = msg["present"][1]
    assert child["minor"] is True and "attributes" not in child
    assert msg["present"][0]["attributes"] == {"gender": {"label": "female", "p": 0.9}}


def test_heartbeat_resends_an_unchanged_audience() -> None:
    mon = AudienceMonitor(AudienceConfig(max_rate_hz=4, heartbeat_s=5))
    sent = [mon.update([], T0 + i) for i in range(12)]
    assert [i for i, s in enumerate(sent) if s is not None] == [0, 5, 10]
