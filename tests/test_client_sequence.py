"""The client's delivery rules on one device stream: de-dup, seq order with a hold window, gaps, drops, epochs."""

from __future__ import annotations

import json
import uuid

from edge_agent.client.core import Consumer, EpochChange
from edge_agent.client.sequence import Dedup, DeviceSequencer, SeqRange


def _seqr(hold_s: float = 1.0, loss_after_s: float = 10.0) -> DeviceSequencer[str]:
    return DeviceSequencer("dev", None, hold_s=hold_s, loss_after_s=loss_after_s)


def _seqs(released: list) -> list[int]:  # type: ignore[type-arg]
    return [r.seq for r in released]


def test_duplicate_msg_ids_are_recognised_and_counted() -> None:
    d = Dedup(remember=2)
    assert not d.seen("a") and not d.seen("b")
    assert d.seen("a") and d.duplicates == 1
    assert not d.seen("c")  # remembers 2: "b" (now the oldest) is forgotten
    assert not d.seen("b")


def test_out_of_order_arrivals_within_the_hold_window_come_out_in_seq_order() -> None:
    s = _seqr(hold_s=1.0)
    assert _seqs(s.offer(5, "m5", now=0.0)) == []  # first message: no baseline yet, wait for earlier ones
    assert _seqs(s.offer(3, "m3", now=0.1)) == []
    assert _seqs(s.offer(4, "m4", now=0.2)) == []
    released, lost = s.poll(now=1.15)  # m3 waited long enough: it becomes the baseline, m4, m5 follow at once
    assert _seqs(released) == [3, 4, 5] and lost == []
    assert _seqs(s.offer(6, "m6", now=1.1)) == [6]  # contiguous: no wait at all


def test_a_gap_becomes_a_loss_only_after_loss_after_s() -> None:
    s = _seqr(hold_s=0.5, loss_after_s=10.0)
    s.offer(1, "m1", now=0.0)
    s.poll(now=0.6)
    assert _seqs(s.offer(4, "m4", now=1.0)) == []
    released, lost = s.poll(now=1.6)  # held out the window: released, and 2..3 is now a pending gap
    assert _seqs(released) == [4] and lost == []
    assert s.pending == [SeqRange("dev", None, 2, 3)]
    assert s.poll(now=5.0) == ([], [])
    assert s.poll(now=11.7)[1] == [SeqRange("dev", None, 2, 3)]
    assert s.pending == []


def test_a_late_message_fills_its_gap_and_is_flagged_late() -> None:
    s = _seqr(hold_s=0.1)
    s.offer(1, "m1", now=0.0)
    s.poll(now=0.2)
    s.offer(5, "m5", now=0.3)
    s.poll(now=0.5)
    late = s.offer(3, "m3", now=0.6)
    assert [(r.seq, r.late) for r in late] == [(3, True)]
    assert s.pending == [SeqRange("dev", None, 2, 2), SeqRange("dev", None, 4, 4)]


def test_ranges_the_device_reported_dropped_explain_gaps_before_or_after_they_appear() -> None:
    s = _seqr(hold_s=0.1, loss_after_s=5.0)
    s.offer(1, "m1", now=0.0)
    s.poll(now=0.2)
    s.report_dropped([(2, 4)])  # the device's stats arrive before the gap shows
    s.offer(7, "m7", now=0.3)
    s.poll(now=0.5)
    assert s.take_explained() == [SeqRange("dev", None, 2, 4)]
    assert s.pending == [SeqRange("dev", None, 5, 6)]  # 5..6 were not reported: still pending
    s.report_dropped([(6, 6)])  # ... and a report after the gap appeared
    assert s.take_explained() == [SeqRange("dev", None, 6, 6)]
    assert s.poll(now=6.0)[1] == [SeqRange("dev", None, 5, 5)]  # only the unexplained seq is a loss


def _msg(schema: str, seq: int | None, epoch: int = 1000, camera: str | None = None, **body: object) -> bytes:
    """A schema-valid message as the agent would publish it (the consumer validates what it is given)."""
    doc = {
        "schema": f"edge-agent/{schema}/1",
        "msg_id": str(uuid.uuid4()),
        "seq": seq,
        "epoch": epoch,
        "ts": "2026-12-01T10:00:00.000Z",
        "device_id": "dev",
        "camera_id": camera,
        **body,
    }
    return json.dumps(doc).encode()


def _camera(seq: int, epoch: int = 1000) -> tuple[str, bytes]:
    body = {"state": "online", "since": "2026-12-01T10:00:00.000Z"}
    return "edge-agent/dev/cameras/cam0/status", _msg("camera_status", seq, epoch, camera="cam0", **body)


def _stats(seq: int, ranges: list[list[int]]) -> tuple[str, bytes]:
    publish = {"connected": True, "queue_depth": 0, "dropped": {}, "dropped_seq": {"count": 0, "ranges": ranges}}
    return "edge-agent/dev/stats", _msg("stats", seq, uptime_s=1.0, interval_s=1.0, publish=publish)


def _consumer() -> tuple[Consumer, dict[str, list[object]]]:
    events: dict[str, list[object]] = {k: [] for k in ("any", "loss", "dropped", "epoch", "device", "invalid")}
    c = Consumer(hold_s=0.1, loss_after_s=5.0)
    for kind, sink in events.items():
        c.on(kind, sink.append)
    return c, events


def test_consumer_keeps_gap_accounting_per_epoch_and_announces_a_new_one() -> None:
    c, ev = _consumer()
    for seq, now in ((10, 0.0), (11, 0.01)):
        c.handle(*_camera(seq), retained=False, now=now)
    c.tick(0.2)
    c.handle(*_camera(2001, epoch=2000), retained=False, now=0.3)  # outbox reset: new epoch, seq far above
    c.handle(*_camera(12), retained=False, now=0.31)  # a salvaged row of the old epoch, still welcome
    c.tick(0.5)
    assert ev["epoch"] == [EpochChange("dev", 1000, 2000)]
    seqs = [(d.record.meta.epoch, d.record.meta.seq) for d in ev["any"]]  # type: ignore[attr-defined]
    assert seqs == [(1000, 10), (1000, 11), (1000, 12), (2000, 2001)]  # 12 continues its own sequence: no wait
    c.tick(10.0)
    assert ev["loss"] == []  # 11 → 2001 crosses epochs: no gap


def test_consumer_reports_a_gap_the_device_listed_as_dropped_as_dropped_not_lost() -> None:
    c, ev = _consumer()
    c.handle(*_camera(1), retained=False, now=0.0)
    c.tick(0.2)
    c.handle(*_camera(5), retained=False, now=0.3)  # 2..4 missing
    c.handle(*_stats(6, [[2, 3]]), retained=False, now=0.31)  # the device says 2..3 were dropped
    c.tick(0.5)
    assert ev["dropped"] == [SeqRange("dev", 1000, 2, 3)]
    c.tick(6.0)
    assert ev["loss"] == [SeqRange("dev", 1000, 4, 4)]


def test_consumer_takes_status_and_last_will_outside_the_sequence_and_tracks_liveness() -> None:
    c, ev = _consumer()
    done = c.handle("edge-agent/dev/status", _msg("status", None, state="online"), retained=True, now=0.0, token=1)
    assert done == [1]  # handed on at once, acknowledged at once
    c.handle(
        "edge-agent/dev/status",
        _msg("status", None, state="offline", reason="connection_lost"),
        retained=False,
        now=1.0,
    )
    states = ev["device"]
    assert [(s.online, s.last_will) for s in states] == [(True, False), (False, True)]  # type: ignore[attr-defined]
    assert c.pending() == []


def test_consumer_refuses_invalid_and_misaddressed_messages_and_counts_them() -> None:
    c, ev = _consumer()
    c.handle("edge-agent/dev/stats", b"{not json", retained=False, now=0.0)
    c.handle("edge-agent/other/cameras/cam0/status", _camera(3)[1], retained=False, now=0.0)  # device mismatch
    c.handle("edge-agent/dev/cameras/cam1/status", _camera(4)[1], retained=False, now=0.0)  # camera mismatch
    assert c.counts["invalid"] == 3 and len(ev["invalid"]) == 3 and ev["any"] == []
