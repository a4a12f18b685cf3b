"""Outbox behaviour on a real SQLite file: ordering, fairness, bounds, TTL, persistence and SIGKILL safety."""

from __future__ import annotations

import contextlib
import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.publish.config import OutboxConfig
from edge_agent.publish.outbox import Outbox, OutboxStorageError, Row
from edge_agent.ratelog import RateLimitedLog


def put(ob: Outbox, topic: str, n: int = 1, *, retain: bool = False, created: float | None = None) -> list[int]:
    return [
        ob.put(topic, lambda seq: f'{{"seq":{seq}}}'.encode(), retain=retain, created=created or time.time())
        for _ in range(n)
    ]


@pytest.fixture
def ob(tmp_path: Path) -> Outbox:
    box = Outbox(tmp_path / "outbox.sqlite3", OutboxConfig())
    yield box
    box.close()


def test_seq_is_monotonic_and_survives_reopen_even_when_empty(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    a = Outbox(path, OutboxConfig())
    seqs = put(a, "t", 3)
    a.ack(r.id for r in a.take(10))
    assert a.depth == 0
    a.close()
    b = Outbox(path, OutboxConfig())
    assert put(b, "t") == [seqs[-1] + 1]
    assert b.epoch == a.epoch and b.first_seq == a.first_seq == 1  # a clean reopen continues the same epoch
    b.close()


def test_journal_is_wal_and_rows_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    a = Outbox(path, OutboxConfig())
    put(a, "x", 4)
    a.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    b = Outbox(path, OutboxConfig())
    assert [r.id for r in b.take(10)] == [1, 2, 3, 4]
    b.close()


def test_each_topic_is_fifo_and_topics_share_the_window(ob: Outbox) -> None:
    backlog = put(ob, "a", 50)
    live = put(ob, "b", 3)
    got = ob.take(10)
    assert [r.id for r in got if r.topic == "a"] == backlog[: len([r for r in got if r.topic == "a"])]
    assert [r.id for r in got if r.topic == "b"] == live  # not stuck behind 50 older messages on "a"
    rest = ob.take(100)
    ids_a = [r.id for r in got + rest if r.topic == "a"]
    assert ids_a == backlog


def test_retained_state_goes_first_and_only_the_newest_is_kept(ob: Outbox) -> None:
    put(ob, "tracks", 20)
    put(ob, "cam/status", retain=True)
    newest = put(ob, "cam/status", retain=True)
    got = ob.take(5)
    assert got[0].topic == "cam/status" and got[0].id == newest[0] and got[0].retain
    assert sum(r.topic == "cam/status" for r in got + ob.take(100)) == 1
    assert ob.superseded == 1


def test_leased_retained_state_is_not_superseded(ob: Outbox) -> None:
    first = put(ob, "status", retain=True)
    assert [r.id for r in ob.take(5)] == first
    second = put(ob, "status", retain=True)
    assert [r.id for r in ob.take(5)] == second
    assert ob.superseded == 0


def test_full_queue_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxConfig(max_messages=10))
    seqs = put(box, "t", 25)
    state = put(box, "status", retain=True)
    assert box.depth == 10  # the bound holds; the retained state counts but is never the one evicted
    assert box.dropped["max_messages"] == 16
    assert [r.id for r in box.take(100)] == state + seqs[-9:]
    box.close()


def test_byte_bound_drops_the_oldest(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxConfig(max_bytes=64 * 1024))
    blob = b"x" * 1000
    ids = [box.put("t", lambda s: blob, retain=False, created=time.time()) for _ in range(100)]
    assert box.size_bytes <= 64 * 1024
    assert box.dropped["max_bytes"] == 100 - box.depth
    assert [r.id for r in box.take(1000)] == ids[-box.depth :]
    box.close()


def test_leased_rows_are_not_evicted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxConfig(max_messages=10))
    first = put(box, "t", 3)
    leased = box.take(3)
    put(box, "t", 20)
    assert box.depth == 10 and box.dropped["max_messages"] == 13
    box.ack(r.id for r in leased)
    assert [r.id for r in leased] == first  # the in-flight ones were kept; the oldest queued ones went
    assert [r.id for r in box.take(100)] == list(range(17, 24))
    box.close()


def test_ttl_drops_expired_but_keeps_retained_state(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxConfig(ttl_s=60))
    now = time.time()
    put(box, "t", 3, created=now - 120)
    keep = put(box, "t", 2, created=now)
    state = put(box, "status", retain=True, created=now - 120)
    assert box.purge_expired(now) == 3
    assert box.dropped["ttl"] == 3
    assert sorted(r.id for r in box.take(10)) == sorted(state + keep)
    box.close()


def test_refused_row_is_dropped_with_its_reason(ob: Outbox) -> None:
    ids = put(ob, "t", 2)
    rows = ob.take(2)
    ob.drop(rows[0].id, "refused")
    ob.ack([rows[1].id])
    assert ob.depth == 0 and ob.dropped["refused"] == 1 and [r.id for r in rows] == ids


def test_unreadable_file_is_moved_aside_and_a_fresh_queue_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    box = Outbox(path, OutboxConfig())
    assert put(box, "t") == [1]
    assert list(tmp_path.glob("o.sqlite3.corrupt-*"))
    assert "moved aside" in caplog.text
    box.close()


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from edge_agent.publish.config import OutboxConfig
    from edge_agent.publish.outbox import Outbox
    box = Outbox(Path(sys.argv[1]), OutboxConfig())
    while True:
        seq = box.put("t", lambda s: b'{"payload":"%d"}' % s, retain=False, created=time.time())
        print(seq, flush=True)
    """
)


def test_sigkill_while_writing_loses_no_committed_message(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    reported: list[int] = []
    deadline = time.monotonic() + 20
    while len(reported) < 300 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if line:
            reported.append(int(line))
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=5)  # reaps it and closes its stdout pipe
    assert len(reported) >= 300
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    present = {r[0] for r in db.execute("SELECT id FROM messages")}
    db.close()
    assert set(reported) <= present  # every message whose put() returned is on disk
    box = Outbox(path, OutboxConfig())
    assert box.depth == len(present)
    assert [r.id for r in box.take(len(present))] == sorted(present)
    assert put(box, "t")[0] > reported[-1]  # seq never reused after a crash
    box.close()


@pytest.mark.parametrize(("mode", "expected"), [("normal", 1), ("full", 2)])
def test_synchronous_mode_is_applied(tmp_path: Path, mode: str, expected: int) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxConfig(synchronous=mode))
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == expected
    box.close()


OPS = st.lists(
    st.tuples(st.sampled_from(["put", "put", "put", "take", "ack", "drop"]), st.sampled_from(["a", "b", "s"])),
    max_size=60,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_counters_match_the_file_and_rows_are_offered_once_in_fifo_order(tmp_path: Path, ops) -> None:
    path = tmp_path / f"h{time.monotonic_ns()}.sqlite3"
    box = Outbox(path, OutboxConfig(max_messages=12))
    leased: list[int] = []
    offered: dict[str, list[int]] = {}
    done: set[int] = set()
    for op, topic in ops:
        if op == "put":
            box.put(topic, lambda s: b"x" * (s % 7 + 1), retain=topic == "s", created=time.time())
        elif op == "take":
            for r in box.take(3):
                assert r.id not in done
                offered.setdefault(r.topic, []).append(r.id)
                leased.append(r.id)
        elif leased:
            row_id = leased.pop(0)
            box.ack([row_id]) if op == "ack" else box.drop(row_id, "refused")
            done.add(row_id)
        rows = box._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages").fetchone()
        assert (box.depth, box.size_bytes) == (rows[0], rows[1])
        assert box.depth <= 12 + 1  # + the retained row, which is never evicted, when all else is in flight
    for ids in offered.values():
        assert ids == sorted(set(ids))  # FIFO per topic, never offered twice
    box.close()


def test_a_second_process_cannot_use_the_same_outbox(tmp_path: Path) -> None:
    from edge_agent.publish.outbox import OutboxError

    path = tmp_path / "o.sqlite3"
    first = Outbox(path, OutboxConfig())
    with pytest.raises(OutboxError, match="in use by another edge-agent"):
        Outbox(path, OutboxConfig())
    first.close()
    Outbox(path, OutboxConfig()).close()  # free again once the first one closed


def test_unwritable_state_dir_is_a_one_line_error(tmp_path: Path) -> None:
    from edge_agent.publish.outbox import OutboxError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutboxError, match=r"agent.state_dir") as err:
        Outbox(blocker / "sub" / "o.sqlite3", OutboxConfig())
    assert "\n" not in str(err.value)


# -- storage faults, upkeep and the introspection/sender paths ----------------------------------------------------
#
# Faults are provoked for real: a second sqlite3 connection holding the write lock (`BEGIN EXCLUSIVE`; in WAL mode
# readers still read, every write gets SQLITE_BUSY), or a trigger that makes SQLite refuse every DELETE of a
# message (a real SQLite error from a real statement, the only way to fail the delete after a successful insert).
# We run as root in CI, so chmod cannot make the file read-only.

LOGGER = "edge_agent.publish.outbox"
BUSY = "database is locked (SQLITE_BUSY)"
NO_DELETE = "deletes refused (SQLITE_CONSTRAINT_TRIGGER)"


@pytest.fixture
def boxes(tmp_path: Path) -> Iterator[Callable[..., Outbox]]:
    """`boxes(cfg, warnings=...)`: an Outbox on tmp_path/o.sqlite3, closed at teardown even when the test fails."""
    made: list[Outbox] = []

    def make(cfg: OutboxConfig | None = None, **kwargs: object) -> Outbox:
        box = Outbox(tmp_path / "o.sqlite3", cfg or OutboxConfig(), **kwargs)  # type: ignore[arg-type]
        made.append(box)
        return box

    yield make
    for box in made:
        box.close()  # a second close is harmless


@contextlib.contextmanager
def write_locked(box: Outbox) -> Iterator[None]:
    """Another connection holds the write lock; the outbox's connection gives up at once, not after its 5 s."""
    box._db.execute("PRAGMA busy_timeout=0")
    other = sqlite3.connect(box.path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        other.close()  # rolls the lock holder's transaction back
        box._db.execute("PRAGMA busy_timeout=5000")


def refuse_deletes(path: Path, refuse: bool = True) -> None:
    """Install (or remove) a trigger that makes SQLite fail every DELETE FROM messages."""
    sql = (
        "CREATE TRIGGER refuse_delete BEFORE DELETE ON messages BEGIN SELECT RAISE(ABORT, 'deletes refused'); END"
        if refuse
        else "DROP TRIGGER refuse_delete"
    )
    # a short busy timeout: if the outbox left a write transaction open, this fails fast instead of waiting 5 s
    with contextlib.closing(sqlite3.connect(path, isolation_level=None, timeout=0.5)) as db:
        db.execute(sql)


def ids_in_file(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [r[0] for r in db.execute("SELECT id FROM messages ORDER BY id")]


def lines(caplog: pytest.LogCaptureFixture, level: int, name: str = LOGGER) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name and r.levelno == level]


def test_a_locked_database_refuses_puts_counts_each_and_uses_no_number(
    boxes: Callable[..., Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    box = boxes()
    path = box.path
    assert put(box, "t", 2) == [1, 2]
    box.health.retry_s = 600.0  # no probe between the three puts, however slow the machine is
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    errors: list[str] = []
    with write_locked(box):
        for _ in range(3):
            with pytest.raises(OutboxStorageError) as err:
                put(box, "t")
            errors.append(str(err.value))
    assert errors == [
        f"outbox {path}: cannot store message: {BUSY}",
        f"outbox {path}: cannot store message: still failing",  # refused at once, SQLite untouched until the probe
        f"outbox {path}: cannot store message: still failing",
    ]
    assert box.health.refused == 3 and box.storage_errors == 1 and not box.accepting
    assert box.dropped_snapshot() == {"store_error": 3}
    assert box.warnings.snapshot() == {"store_error": {"count": 3, "logged": 1}}
    assert lines(caplog, logging.WARNING) == [f"outbox {path}: cannot store messages ({BUSY}); refusing them"]
    assert lines(caplog, logging.DEBUG) == [f"outbox storage error: {BUSY}"]
    assert box.depth == 2 and ids_in_file(path) == [1, 2]
    box.maintain()  # the lock is gone and there is free space: the next put() tries SQLite at once
    assert put(box, "t") == [3]  # the refused messages took no number
    assert box.accepting and box.depth == 3
    (again,) = lines(caplog, logging.WARNING, "edge_agent.publish.storage")
    assert again.startswith(f"outbox {path}: storing messages again after ")
    assert again.endswith(" s; 3 message(s) were refused meanwhile")


@pytest.mark.timeout(30)  # the bound eviction at the end stops when only leased or retained rows are left
def test_failed_upkeep_is_counted_logged_once_and_skips_the_bound_eviction(
    boxes: Callable[..., Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    box = boxes(OutboxConfig(max_bytes=64 * 1024))  # the smallest bound: the files alone exceed it
    put(box, "t", 3)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with write_locked(box):
        box.maintain()  # the incremental vacuum needs the write lock
        box.maintain()
    assert box.warnings.snapshot() == {"store_error": {"count": 2, "logged": 1}}  # no "cannot evict" on top
    assert lines(caplog, logging.WARNING) == [f"outbox {box.path}: upkeep failed ({BUSY})"]
    assert lines(caplog, logging.DEBUG) == [f"outbox storage error: {BUSY}"] * 2
    assert box.storage_errors == 2 and not box.accepting
    assert box.depth == 3 and box.dropped_snapshot() == {}
    box.maintain()  # upkeep works again: now the bound is enforced
    assert box.depth == 0 and box.dropped_snapshot() == {"max_bytes": 3}
    assert box.health.next_try == 0.0  # space is there: the next put() probes at once
    assert box.warnings.snapshot()["store_error"] == {"count": 2, "logged": 1}


@pytest.mark.timeout(30)  # an eviction that reports success on failure would loop forever
def test_a_failed_eviction_keeps_the_message_warns_and_catches_up_later(
    boxes: Callable[..., Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    box = boxes(OutboxConfig(max_messages=10))
    path = box.path
    put(box, "t", 10)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    refuse_deletes(path)
    assert put(box, "t") == [11]  # stored; only the eviction after it failed
    assert box.depth == 11 and ids_in_file(path) == list(range(1, 12)) and box.dropped_snapshot() == {}
    assert box.warnings.snapshot() == {"store_error": {"count": 1, "logged": 1}}
    assert lines(caplog, logging.WARNING) == [f"outbox {path}: cannot evict ({NO_DELETE})"]
    assert lines(caplog, logging.DEBUG) == [f"outbox storage error: {NO_DELETE}"]
    assert box.storage_errors == 1
    refuse_deletes(path, False)
    box.maintain()
    assert put(box, "t") == [12]
    assert box.depth == 10 and box.dropped_snapshot() == {"max_messages": 2}
    assert [r.id for r in box.take(20)] == list(range(3, 13))


@pytest.mark.timeout(30)
def test_a_failed_bound_eviction_in_upkeep_stops_and_warns(
    boxes: Callable[..., Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    box = boxes(OutboxConfig(max_bytes=64 * 1024))
    put(box, "t", 3)
    refuse_deletes(box.path)
    box.maintain()
    assert box.depth == 3 and box.dropped_snapshot() == {}
    assert box.warnings.snapshot() == {"store_error": {"count": 1, "logged": 1}}
    assert lines(caplog, logging.WARNING) == [f"outbox {box.path}: cannot evict ({NO_DELETE})"]
    refuse_deletes(box.path, False)
    box.maintain()
    assert box.depth == 0 and box.dropped_snapshot() == {"max_bytes": 3}


def test_a_failed_delete_is_rolled_back_kept_leased_and_written_by_maintain(
    boxes: Callable[..., Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    box = boxes()
    path = box.path
    put(box, "t", 2)
    rows = box.take(10)
    refuse_deletes(path)
    assert box.ack([rows[0].id]) == 0
    box.drop(rows[1].id, "refused")
    assert box.depth == 2 and ids_in_file(path) == [1, 2] and box.dropped_snapshot() == {}
    assert box.ledger.count == 0
    assert box.warnings.snapshot() == {"store_error": {"count": 2, "logged": 1}}
    assert lines(caplog, logging.WARNING) == [f"outbox {path}: cannot delete sent messages yet ({NO_DELETE})"]
    assert box.take(10) == [] and box.inflight == 2  # still leased: not sent again
    refuse_deletes(path, False)  # needs the write lock: only possible if the failed transaction was rolled back
    box.maintain()
    assert box.depth == 0 and ids_in_file(path) == [] and box.inflight == 0
    assert box.dropped_snapshot() == {"refused": 1} and box.ledger.ranges() == [(2, 2)]
    assert put(box, "t") == [3]


def test_each_drop_is_logged_with_its_reason_and_running_count(
    boxes: Callable[..., Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    box = boxes(OutboxConfig(max_messages=10), warnings=RateLimitedLog(interval_s=0))
    put(box, "t", 12)
    (row,) = box.take(1)
    box.drop(row.id, "refused")
    box.note_drop("oversize", 3)
    assert lines(caplog, logging.WARNING) == [
        "outbox: dropping messages (max_messages); 1 dropped for this reason so far",
        "outbox: dropping messages (max_messages); 2 dropped for this reason so far",
        "outbox: dropping messages (refused); 1 dropped for this reason so far",
        "outbox: dropping messages (oversize); 3 dropped for this reason so far",
    ]
    assert box.warnings.snapshot() == {"dropped": {"count": 4, "logged": 4}}
    assert box.dropped_snapshot() == {"max_messages": 2, "refused": 1, "oversize": 3}


def test_drop_warnings_are_rate_limited(boxes: Callable[..., Outbox], caplog: pytest.LogCaptureFixture) -> None:
    box = boxes(OutboxConfig(max_messages=10))
    put(box, "t", 15)
    assert lines(caplog, logging.WARNING) == [
        "outbox: dropping messages (max_messages); 1 dropped for this reason so far"
    ]
    assert box.warnings.snapshot() == {"dropped": {"count": 5, "logged": 1}}
    assert box.dropped_snapshot() == {"max_messages": 5}


def test_oldest_created_ignores_retained_state_and_is_none_when_empty_or_closed(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxConfig())
    try:
        assert box.oldest_created() is None
        put(box, "status", retain=True, created=100.0)
        assert box.oldest_created() is None
        put(box, "t", created=2000.25)
        put(box, "t", created=1000.5)
        oldest = box.oldest_created()
        assert oldest == 1000.5 and type(oldest) is float
    finally:
        box.close()
    assert box.oldest_created() is None


@pytest.mark.timeout(30)  # "no victim" reported as progress would loop forever
def test_retained_state_beyond_max_messages_is_all_kept(boxes: Callable[..., Outbox]) -> None:
    box = boxes(OutboxConfig(max_messages=10))
    for i in range(11):
        put(box, f"cam{i}/status", retain=True)
    assert box.depth == 11 and box.dropped_snapshot() == {}
    assert len(box.take(20)) == 11


def test_byte_eviction_skips_leased_rows_without_counting_them(boxes: Callable[..., Outbox]) -> None:
    box = boxes(OutboxConfig(max_bytes=64 * 1024))  # budget 16 KiB: 83 rows of 100 + 96 bytes fit, the 84th not
    blob = b"x" * 100
    for _ in range(10):
        box.put("t", lambda s: blob, retain=False, created=time.time())
    leased = [r.id for r in box.take(10)]
    for _ in range(74):
        box.put("t", lambda s: blob, retain=False, created=time.time())
    # one batch of 16: the oldest 16 rows that are not in flight (11..26); the leased 1..10 are passed over
    assert box.dropped_snapshot() == {"max_bytes": 16} and box.depth == 68
    assert ids_in_file(box.path) == leased + list(range(27, 85))
    assert [r.id for r in box.take(100)] == list(range(27, 85))


def test_eviction_drops_exactly_what_is_needed_when_the_leased_row_is_newer(boxes: Callable[..., Outbox]) -> None:
    box = boxes(OutboxConfig(max_messages=10))
    put(box, "t", 5)
    middle = put(box, "u")
    put(box, "t", 4)
    assert [r.id for r in box.take(1)] == middle  # in flight, and newer than the rows that go first
    put(box, "t")
    assert box.dropped_snapshot() == {"max_messages": 1} and box.depth == 10
    assert ids_in_file(box.path) == list(range(2, 12))


def test_take_serves_retained_first_then_topics_in_turn_with_full_rows(boxes: Callable[..., Outbox]) -> None:
    box = boxes()
    for topic in "abc":
        for _ in range(4):
            box.put(topic, lambda s: b'{"seq":%d}' % s, retain=False, created=1000.5)
    box.put("s", lambda s: b'{"seq":%d}' % s, retain=True, created=5.25)
    assert box.take(0) == []
    got = box.take(6)
    assert got[0] == Row(13, "s", b'{"seq":13}', True, 5.25)
    assert got[1] == Row(5, "b", b'{"seq":5}', False, 1000.5)
    assert [(r.topic, r.id) for r in got] == [("s", 13), ("b", 5), ("c", 9), ("a", 1), ("c", 10), ("a", 2)]
    assert [(r.topic, r.id) for r in box.take(4)] == [("a", 3), ("b", 6), ("c", 11), ("b", 7)]
    assert [(r.topic, r.id) for r in box.take(10)] == [("c", 12), ("a", 4), ("b", 8)]
    assert box.take(10) == [] and box.inflight == 13


def test_release_all_offers_every_unacknowledged_row_again(boxes: Callable[..., Outbox]) -> None:
    box = boxes()
    a = put(box, "a", 3)
    s = put(box, "s", retain=True)
    assert [r.id for r in box.take(10)] == s + a
    assert box.ack([a[0]]) == 1
    box.release_all()
    assert box.inflight == 0
    assert [r.id for r in box.take(10)] == s + a[1:]  # retained first, then FIFO, from the start
    assert box.take(10) == []


def test_a_row_whose_ack_is_pending_is_never_counted_as_dropped(boxes: Callable[..., Outbox]) -> None:
    box = boxes(OutboxConfig(ttl_s=60))
    now = 10_000.0
    a = put(box, "a", 2, created=now - 120)
    box.take(10)
    refuse_deletes(box.path)
    assert box.ack([a[0]]) == 0  # delivered, but the delete could not be written yet
    refuse_deletes(box.path, False)
    box.release_all()
    assert box.inflight == 1  # the delivered row stays leased: expiry and eviction pass it over
    assert box.purge_expired(now) == 1  # only the undelivered one
    box.maintain()  # writes the outstanding delete
    assert ids_in_file(box.path) == [] and box.inflight == 0
    assert box.dropped_snapshot() == {"ttl": 1} and box.ledger.ranges() == [(a[1], a[1])]


def test_release_all_does_not_offer_a_row_whose_ack_is_still_pending(boxes: Callable[..., Outbox]) -> None:
    """A message the broker acknowledged is never sent again, even when its delete has to wait for the disk."""
    box = boxes()
    a = put(box, "a", 3)
    box.take(10)
    refuse_deletes(box.path)
    assert box.ack([a[0]]) == 0  # acknowledged, but the delete could not be written yet
    refuse_deletes(box.path, False)
    box.release_all()
    assert box.inflight == 1
    assert [r.id for r in box.take(10)] == a[1:]


def test_purge_expired_drops_only_old_unleased_rows_in_batches(boxes: Callable[..., Outbox]) -> None:
    box = boxes(OutboxConfig(ttl_s=60))
    now = 10_000.0
    leased = put(box, "t", 2, created=now - 600)
    assert [r.id for r in box.take(2)] == leased
    put(box, "t", 600, created=now - 61)  # more than one batch of 500
    edge = put(box, "t", created=now - 60)  # exactly at the cutoff: not older than the TTL
    fresh = put(box, "t", created=now)
    state = put(box, "s", retain=True, created=now - 600)  # retained state never expires
    assert box.purge_expired(now) == 600
    assert box.dropped_snapshot() == {"ttl": 600} and box.depth == 5
    assert ids_in_file(box.path) == [*leased, *edge, *fresh, *state]
    assert box.purge_expired(now) == 0
    put(box, "t", created=time.time() - 120)
    assert box.purge_expired() == 3  # default: the current time, by which `edge` and `fresh` are old too
    assert ids_in_file(box.path) == [*leased, *state]  # still in flight, and retained
    assert box.dropped_snapshot() == {"ttl": 603}


def test_ack_and_drop_delete_exactly_the_given_rows(boxes: Callable[..., Outbox]) -> None:
    box = boxes()
    ids = put(box, "t", 3)
    assert box.size_bytes == 27  # b'{"seq":N}' is 9 bytes
    box.take(3)
    assert box.ack([]) == 0
    assert box.ack([ids[0], 999]) == 1  # an unknown id is ignored
    box.drop(ids[1], "refused")
    assert box.depth == 1 and box.size_bytes == 9 and box.inflight == 1
    assert ids_in_file(box.path) == [ids[2]]
    assert box.dropped_snapshot() == {"refused": 1}
    assert box.ledger.count == 1 and box.ledger.ranges() == [(ids[1], ids[1])]  # acks are not drops
