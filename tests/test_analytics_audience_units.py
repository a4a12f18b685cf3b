"""Live audience, unit level: person figures to 2 decimals, the dominant group's tie rules, rate-limit timing."""

from __future__ import annotations

from dataclasses import replace

from edge_agent.analytics.audience import SCHEMA_AUDIENCE, AudienceMonitor, dominant
from edge_agent.analytics.config import AudienceConfig
from edge_agent.analytics.engine import AnalyticsMessage
from edge_agent.publish import schemas
from edge_agent.records import Box
from edge_agent.timefmt import iso_ts
from edge_agent.track.events import UNKNOWN, AttributeEstimate, HeadEstimate, TrackView
from tests.test_analytics_audience import T0, view
from tests.test_analytics_payloads import wrap

A, B, C, D, E = (str(i) * 16 for i in range(1, 6))
M0 = 100.0  # a monotonic clock reading (its origin is arbitrary, unrelated to the wall clock T0)


def monitor(heartbeat_s: float = 0.0) -> AudienceMonitor:
    return AudienceMonitor(AudienceConfig(max_rate_hz=4, heartbeat_s=heartbeat_s))  # a 0.25 s rate interval


# --- the payload --------------------------------------------------------------------------------------------------


def test_dwell_and_attention_are_rounded_to_two_decimals() -> None:
    person = replace(view(A, True, dwell=12.3456), attention_s=7.891)
    out = AudienceMonitor.payload([person], T0)["present"][0]
    assert (out["dwell_s"], out["attention_s"]) == (12.35, 7.89)
    assert type(out["dwell_s"]) is float and type(out["attention_s"]) is float


def test_a_person_carries_label_p_and_reason_per_head_but_never_the_distribution() -> None:
    attrs = AttributeEstimate(
        gender=HeadEstimate("female", 0.9, probs=(("male", 0.1), ("female", 0.9))),
        race=HeadEstimate(
            UNKNOWN, 0.4, probs=(("white", 0.4), ("black", 0.35), ("asian", 0.25)), reason="low_confidence"
        ),
        minor=False,
    )
    person = TrackView(A, T0, 2.0, True, 1.5, Box(0, 0, 10, 10), attrs)
    payload = AudienceMonitor.payload([person], T0)
    assert payload["present"][0]["attributes"] == {
        "gender": {"label": "female", "p": 0.9},
        "race": {"label": UNKNOWN, "p": 0.4, "reason": "low_confidence"},
    }
    schemas.validate(wrap(AnalyticsMessage("audience", SCHEMA_AUDIENCE, payload), 1))


# --- the dominant group -------------------------------------------------------------------------------------------


def test_unknown_labels_never_make_the_dominant_group() -> None:
    lookers = [view(A, True, UNKNOWN, p=0.4), view(B, True, UNKNOWN, p=0.45), view(C, True, "female", p=0.9)]
    assert dominant(lookers) == {"gender": "female"}
    assert dominant(lookers[:2]) == {}  # lookers, but no known label to report


def test_more_lookers_outweigh_higher_confidence() -> None:
    lookers = [view(x, True, "female", p=0.55) for x in (A, B, C)] + [view(x, True, "male", p=0.95) for x in (D, E)]
    assert dominant(lookers) == {"gender": "female"}  # 3 against 2, although 1.65 < 1.9 summed p


def test_a_tie_in_lookers_goes_to_the_higher_summed_probability() -> None:
    # female 0.9 + 0.6 = 1.5 beats male 0.55 + 0.8 = 1.35, though the last male is surer than the last female
    # and "male" sorts after "female"
    lookers = [view(A, True, "female", 0.9), view(B, True, "male", 0.55), view(C, True, "female", 0.6)]
    lookers.append(view(D, True, "male", 0.8))
    assert dominant(lookers) == {"gender": "female"}


def test_a_label_without_a_probability_adds_no_weight_to_a_tie() -> None:
    no_p = TrackView(A, T0, 1.0, True, 0.0, Box(0, 0, 10, 10), AttributeEstimate(gender=HeadEstimate("male", None)))
    assert dominant([no_p, view(B, True, "female", 0.5)]) == {"gender": "female"}


# --- rate limit and change detection ------------------------------------------------------------------------------


def test_the_rate_limit_is_timed_by_the_monotonic_clock_not_the_wall_clock() -> None:
    mon = monitor()
    assert mon.update([view(A, False)], T0, mono=M0) is not None
    # The wall clock jumps 10 s ahead (NTP) while only 0.1 s really passed: the change is held back ...
    assert mon.update([view(A, True)], T0 + 10.0, mono=M0 + 0.1) is None
    assert mon.suppressed == 1
    # ... until 0.25 s of monotonic time; the payload is stamped with the wall clock
    out = mon.update([view(A, True)], T0 + 10.15, mono=M0 + 0.25)
    assert out is not None and out["looking"] == [A] and out["t"] == iso_ts(T0 + 10.15)
    assert mon.suppressed == 1


def test_a_held_back_change_is_counted_once_and_goes_out_exactly_one_interval_later() -> None:
    mon = monitor()
    assert mon.update([view(A, False)], T0, mono=M0) is not None
    for dt in (0.05, 0.1, 0.15, 0.2):
        assert mon.update([view(A, True)], T0 + dt, mono=M0 + dt) is None
    assert mon.suppressed == 1  # one change, however many frames it waits
    out = mon.update([view(A, True)], T0 + 0.25, mono=M0 + 0.25)  # exactly 1 / max_rate_hz after the last send
    assert out is not None and out["looking_count"] == 1
    assert mon.suppressed == 1
    # A change that reverts before the limit lifts was still held back (never published): counted once.
    assert mon.update([view(A, False)], T0 + 0.3, mono=M0 + 0.3) is None
    assert mon.update([view(A, True)], T0 + 0.35, mono=M0 + 0.35) is None
    assert mon.suppressed == 2
    assert mon.update([view(A, True)], T0 + 0.5, mono=M0 + 0.5) is None  # after the interval: unchanged, not sent
    assert mon.update([view(A, False)], T0 + 0.9, mono=M0 + 0.9) is not None  # a fresh change, not held back
    assert mon.suppressed == 2


def test_a_heartbeat_of_one_second_resends_an_unchanged_audience_every_second() -> None:
    mon = monitor(heartbeat_s=1.0)
    sent = [mon.update([view(A, False)], T0 + i / 2, mono=M0 + i / 2) for i in range(7)]  # every 0.5 s for 3 s
    assert [i / 2 for i, s in enumerate(sent) if s is not None] == [0.0, 1.0, 2.0, 3.0]


def test_a_send_is_due_one_interval_later_and_checks_are_spaced_by_half_an_interval() -> None:
    mon = monitor()
    assert mon.due(M0)  # nothing sent yet
    assert mon.update([], T0, mono=M0) is not None
    assert not mon.due(M0 + 0.2)  # rate-limited: nothing could be sent
    assert mon.due(M0 + 0.25)  # exactly one interval after the send
    assert mon.update([], T0 + 0.25, mono=M0 + 0.25) is None  # checked: unchanged
    assert not mon.due(M0 + 0.35)  # 0.1 s after that check: too soon to check again
    assert mon.due(M0 + 0.375)  # half an interval (0.125 s) after the check


def test_a_change_that_reverts_and_comes_back_inside_one_interval_is_two_held_back_changes() -> None:
    mon = monitor()
    assert mon.update([view(A, False)], T0, mono=M0) is not None
    assert mon.update([view(A, True)], T0 + 0.05, mono=M0 + 0.05) is None  # held back: 1
    assert mon.update([view(A, False)], T0 + 0.1, mono=M0 + 0.1) is None  # reverted: nothing waits
    assert mon.update([view(A, True)], T0 + 0.15, mono=M0 + 0.15) is None  # a new change, held back: 2
    assert mon.suppressed == 2


def test_changes_first_seen_after_frames_due_skipped_are_counted_each_time() -> None:
    """The daemon's path: due() skips frames unseen while limited; a change seen right after counts, every time."""
    mon = monitor()
    looking = False
    for k in range(3):
        assert mon.due(M0 + k) and mon.update([view(A, looking)], T0 + k, mono=M0 + k) is not None
        assert not mon.due(M0 + k + 0.15)  # rate-limited: skipped, unseen
        looking = not looking
        assert mon.due(M0 + k + 0.3)
        assert mon.update([view(A, looking)], T0 + k + 0.3, mono=M0 + k + 0.3) is not None
        assert mon.suppressed == k + 1
        looking = not looking
