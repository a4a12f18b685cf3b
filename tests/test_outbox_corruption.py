"""A damaged outbox, case by case: truncated, zero bytes, garbage header, garbage pages, a bad `meta` value, bad rows.

Each case gives one clear log line, keeps what can still be read, never loops on restart, and publishes again to a
real broker. A file that opens as a valid database is never renamed; one that does not is kept for inspection.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.mqtt import Publisher
from edge_agent.publish.outbox import Outbox
from tests.fixtures.broker import Broker, Collector

N = 200
DEVICE = "dev-c"
TOPIC = f"edge-agent/{DEVICE}/cameras/cam0/tracks"


def wait(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def build(path: Path) -> Outbox:
    """An outbox with N queued messages, checkpointed into the main file (as after a clean stop), then closed."""
    box = Outbox(path, OutboxConfig())
    for _ in range(N):
        box.put(TOPIC, lambda s: json.dumps({"n": s, "pad": "z" * 200}).encode(), retain=False, created=time.time())
    box.close()
    return box


def deliver(broker: Broker, state: Path) -> tuple[set[int], Publisher, Collector]:
    """Start a publisher on `state` and collect what reaches the broker: the stored `n` of each message."""
    sub = Collector(broker, f"edge-agent/{DEVICE}/#")
    cfg = MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5)
    pub = Publisher(cfg, OutboxConfig(), DEVICE, state)
    pub.start()
    assert wait(lambda: pub.connected and pub.stats()["queue_depth"] == 0, 20)
    acked = pub.stats()["acked"]  # acknowledged by the broker; now let them all reach the subscriber
    sub.wait_for(lambda m: sum("n" in x.json() for x in m) >= acked, 10)
    return {x.json()["n"] for x in sub.messages if "n" in x.json()}, pub, sub


def publishes_new(pub: Publisher, sub: Collector) -> dict:
    body = {"command": "x", "request_id": None, "ok": True, "result": None, "error": None}
    msg_id = pub.submit("cmd/x/result", body, schema="edge-agent/cmd_result/1")
    assert sub.wait_for(lambda m: any(x.json().get("msg_id") == msg_id for x in m), 10)
    return next(x.json() for x in sub.messages if x.json().get("msg_id") == msg_id)


def outbox_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    ours = [r for r in caplog.records if r.name.startswith("edge_agent.publish.outbox")]
    return [r.getMessage() for r in ours if r.levelno >= logging.WARNING]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


def test_a_truncated_file_is_salvaged_kept_aside_and_publishing_goes_on(broker, state, caplog) -> None:
    old = build(state / "outbox.sqlite3")
    db = state / "outbox.sqlite3"
    with open(db, "r+b") as fh:
        fh.truncate(db.stat().st_size * 6 // 10)
    got, pub, sub = deliver(broker, state)
    try:
        assert 0 < len(got) < N  # what was in the remaining pages
        assert len(list(state.glob("outbox.sqlite3.corrupt-*"))) == 1
        lines = outbox_lines(caplog)
        assert len(lines) == 1 and "salvaged" in lines[0] and "moved aside" in lines[0]
        new = publishes_new(pub, sub)
        assert new["epoch"] > old.epoch and new["seq"] > N
    finally:
        pub.close(1.0)


def test_a_zero_byte_file_is_a_reset_with_a_new_epoch_and_seq_above_the_old_ones(broker, state, caplog) -> None:
    old = build(state / "outbox.sqlite3")
    (state / "outbox.sqlite3").write_bytes(b"")
    got, pub, sub = deliver(broker, state)
    try:
        assert got == set()
        lines = outbox_lines(caplog)
        assert len(lines) == 1 and "empty (0 bytes)" in lines[0]
        new = publishes_new(pub, sub)
        assert new["epoch"] > old.epoch and new["seq"] > N
        assert not list(state.glob("*.corrupt-*"))  # nothing in it to keep
    finally:
        pub.close(1.0)


def test_a_garbage_header_is_moved_aside_and_a_new_epoch_starts(broker, state, caplog) -> None:
    old = build(state / "outbox.sqlite3")
    with open(state / "outbox.sqlite3", "r+b") as fh:
        fh.write(os.urandom(100))
    got, pub, sub = deliver(broker, state)
    try:
        assert got == set()
        lines = outbox_lines(caplog)
        assert len(lines) == 1 and "bad header" in lines[0]
        assert len(list(state.glob("outbox.sqlite3.corrupt-*"))) == 1
        new = publishes_new(pub, sub)
        assert new["epoch"] > old.epoch and new["seq"] > N
    finally:
        pub.close(1.0)


def test_garbage_pages_fail_the_integrity_check_and_the_readable_rows_are_kept(broker, state, caplog) -> None:
    build(state / "outbox.sqlite3")
    db = state / "outbox.sqlite3"
    pages = db.stat().st_size // 4096
    with open(db, "r+b") as fh:
        fh.seek(4096 * (pages // 2))
        fh.write(os.urandom(4096 * 2))  # two leaf pages in the middle of the messages table
    got, pub, sub = deliver(broker, state)
    try:
        assert N // 2 < len(got) < N, len(got)
        lines = outbox_lines(caplog)
        assert len(lines) == 1 and "damaged" in lines[0] and "salvaged" in lines[0]
        publishes_new(pub, sub)
    finally:
        pub.close(1.0)


def test_a_bad_meta_value_is_repaired_not_a_restart_loop(broker, state, caplog) -> None:
    old = build(state / "outbox.sqlite3")
    with sqlite3.connect(state / "outbox.sqlite3") as con:
        con.execute("UPDATE meta SET value='abc' WHERE key='seq'")
    got, pub, sub = deliver(broker, state)
    try:
        assert got == set(range(1, N + 1))  # every row kept
        lines = outbox_lines(caplog)
        assert len(lines) == 1 and "meta.seq = 'abc'" in lines[0]
        assert not list(state.glob("*.corrupt-*"))  # a valid database is never renamed
        new = publishes_new(pub, sub)
        assert new["epoch"] > old.epoch and new["seq"] > N  # the true last seq was unknown: new epoch
        assert pub.stats()["repaired"] == 1
    finally:
        pub.close(1.0)
    caplog.clear()
    again = Outbox(state / "outbox.sqlite3", OutboxConfig())  # the next start: repaired for good, same epoch
    assert again.epoch == new["epoch"] and again.last_seq == new["seq"] and outbox_lines(caplog) == []
    again.close()


def test_bad_rows_are_repaired_or_quarantined_one_by_one(broker, state, caplog) -> None:
    old = build(state / "outbox.sqlite3")
    with sqlite3.connect(state / "outbox.sqlite3") as con:
        con.execute("UPDATE messages SET payload=CAST(payload AS TEXT) WHERE id=5")  # text, still a message
        con.execute("UPDATE messages SET payload='not json' WHERE id=7")  # not a message any more
        con.execute("UPDATE messages SET retain='maybe' WHERE id=9")
    got, pub, sub = deliver(broker, state)
    try:
        assert got == set(range(1, N + 1)) - {7, 9}
        stats = pub.stats()
        assert stats["dropped"]["quarantined"] == 2 and stats["repaired"] == 3
        assert stats["dropped_seq"]["ranges"] == [[7, 7], [9, 9]]
        lines = outbox_lines(caplog)
        assert len(lines) == 3, lines  # one per quarantined row, one for the repairs
        new = publishes_new(pub, sub)
        assert new["epoch"] == old.epoch and new["seq"] == N + 1  # nothing lost: the sequence continues
    finally:
        pub.close(1.0)
