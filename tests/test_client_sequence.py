"""The client's delivery rules on one device stream: de-dup, seq order with a hold window, gaps, drops, epochs."""

from __future__ import annotations

from edge_agent.client.sequence import DeviceSequencer, SeqRange


def _seqr(hold_s: float = 1.0, loss_after_s: float = 10.0) -> DeviceSequencer[str]:
    return DeviceSequencer("dev", hold_s=hold_s, loss_after_s=loss_after_s)


def _seqs(released: list) -> list[int]:  # type: ignore[type-arg]
    return [r.seq for r in released]


def test_duplicate_msg_ids_are_recognised_and_counted() -> None:
    s = _seqr()
    assert not s.seen("a") and not s.seen("b")
    assert s.seen("a") and s.duplicates == 1


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


def test_a_new_epoch_flushes_held_messages_closes_old_gaps_and_restarts_the_sequence() -> None:
    s = _seqr(hold_s=0.1)
    s.offer(10, "m10", now=0.0)
    s.poll(now=0.2)
    s.offer(13, "m13", now=0.3)  # held, and 11..12 will never come: the outbox was reset
    flushed, lost = s.new_epoch("e2")
    assert _seqs(flushed) == [13] and lost == []
    s.offer(1, "n1", now=0.5)
    released, _ = s.poll(now=0.7)
    assert [(r.seq, r.late) for r in released] == [(1, False)]  # seq 1 after 13 is no "late" message
    assert s.epoch == "e2"
