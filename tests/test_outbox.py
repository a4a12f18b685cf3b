"""Outbox behaviour on a real SQLite file: ordering, fairness, bounds, TTL, persistence and SIGKILL safety."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.publish.config import OutboxConfig
from edge_agent.publish.outbox import Outbox


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
