"""A full disk, for real: a small tmpfs as the state directory, filled with a file (needs root to mount it).

During an outage the disk fills up: new messages are refused with a count and one log line (not one per message),
reconnect attempts keep running, and once space returns the agent accepts again by itself and delivers every
message it accepted, gap-free. At start-up a full disk leaves the outbox file untouched: nothing is renamed.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.mqtt import Publisher
from edge_agent.publish.storage import OutboxStorageError
from tests.fixtures.broker import Broker, Collector
from tests.fixtures.tmpfs import fill
from tests.test_e2e import agent_env, models_dir, start_agent, write_config  # noqa: F401 - fixture

pytestmark = pytest.mark.slow
DEVICE = "dev-disk"
BODY = {"command": "x", "request_id": None, "ok": True, "result": {"pad": "y" * 200}, "error": None}


def wait(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def cfg(broker: Broker) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5, keepalive_s=5)


def submit(pub: Publisher) -> str | None:
    try:
        return pub.submit("cmd/x/result", BODY, schema="edge-agent/cmd_result/1")
    except OutboxStorageError:
        return None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_disk_full_during_an_outage_then_freed_delivers_every_accepted_message(
    broker_factory, tmpfs, caplog: pytest.LogCaptureFixture
) -> None:
    broker: Broker = broker_factory(persistence=True)
    sub = Collector(broker, f"edge-agent/{DEVICE}/#", persistent=True)
    state = tmpfs("4m") / "state"
    pub = Publisher(cfg(broker), OutboxConfig(min_free_bytes=64 * 1024), DEVICE, state)
    accepted: list[str] = []
    try:
        pub.start()
        assert wait(lambda: pub.connected)
        accepted += [i for i in (submit(pub) for _ in range(20)) if i]
        broker.stop()
        assert wait(lambda: not pub.connected)
        filler = state.parent / "filler"
        fill(filler)
        refused = 0
        with caplog.at_level(logging.WARNING):
            for _ in range(3000):  # the WAL may still have room for a few: keep going until refusals come
                msg_id = submit(pub)
                if msg_id:
                    accepted.append(msg_id)
                else:
                    refused += 1
                if refused >= 300:
                    break
        stats = pub.stats()
        assert refused >= 300 and not stats["accepting"] and stats["dropped"]["store_error"] == refused
        store_lines = [r for r in caplog.records if "cannot store" in r.getMessage()]
        assert 1 <= len(store_lines) <= 2, [r.getMessage() for r in store_lines]
        time.sleep(2.0)  # reconnect attempts against the stopped broker, with a full disk
        assert pub.healthy() and pub.stats()["network_restarts"] == 0
        filler.unlink()
        assert wait(lambda: bool(msg := submit(pub)) and bool(accepted.append(msg) or True), 10)
        accepted += [i for i in (submit(pub) for _ in range(20)) if i]
        assert pub.stats()["accepting"]
        broker.start()
        assert sub.wait_for(lambda m: set(accepted) <= {x.json()["msg_id"] for x in m}, 30), (
            f"{len(set(accepted) - {x.json()['msg_id'] for x in sub.messages})} of {len(accepted)} missing"
        )
        seqs = sorted({x.json()["seq"] for x in sub.messages if x.json()["msg_id"] in accepted})
        assert seqs == list(range(seqs[0], seqs[0] + len(accepted)))  # refused ones took no number
        assert pub.stats()["dropped_seq"]["count"] == 0
        assert not list(state.glob("*.corrupt-*"))
    finally:
        pub.close(1.0)
        sub.client.loop_stop()


def _queue_in_an_outage(broker: Broker, state: Path, n: int) -> None:
    broker.stop()
    pub = Publisher(cfg(broker), OutboxConfig(min_free_bytes=64 * 1024), DEVICE, state)
    for _ in range(n):
        assert submit(pub)
    pub.close(0.2)


def test_a_full_disk_at_start_up_touches_nothing_and_the_queue_survives(broker_factory, tmpfs) -> None:
    broker: Broker = broker_factory(persistence=True)
    state = tmpfs("4m") / "state"
    _queue_in_an_outage(broker, state, 30)
    db = state / "outbox.sqlite3"
    before = digest(db)
    fill(state.parent / "filler")
    with pytest.raises(OutboxStorageError, match="min_free_bytes"):
        Publisher(cfg(broker), OutboxConfig(), DEVICE, state)  # default reserve: refused before any write
    try:  # no reserve at all: SQLite itself hits the full disk, which is still not "corruption"
        Publisher(cfg(broker), OutboxConfig(min_free_bytes=0), DEVICE, state).close(0.2)
    except OutboxStorageError as exc:
        assert "left as it is" in str(exc) or "nothing was renamed" in str(exc)
    assert digest(db) == before
    assert sorted(p.name for p in state.iterdir() if "corrupt" in p.name) == []
    (state.parent / "filler").unlink()
    broker.start()
    sub = Collector(broker, f"edge-agent/{DEVICE}/cmd/#")
    pub = Publisher(cfg(broker), OutboxConfig(min_free_bytes=64 * 1024), DEVICE, state)
    try:
        pub.start()
        assert sub.wait_for(lambda m: len({x.json()["msg_id"] for x in m}) >= 30, 15)
    finally:
        pub.close(1.0)
        sub.client.loop_stop()


def test_the_daemon_refuses_a_full_state_dir_with_one_line_and_renames_nothing(
    broker_factory,
    tmpfs,
    tmp_path: Path,
    models_dir: Path,  # noqa: F811 - the fixture imported above
) -> None:
    broker: Broker = broker_factory(persistence=True)
    state = tmpfs("4m") / "state"
    _queue_in_an_outage(broker, state, 10)
    before = digest(state / "outbox.sqlite3")
    fill(state.parent / "filler")
    config, _ = write_config(tmp_path, broker)
    config.write_text(config.read_text().replace(f'state_dir = "{tmp_path / "state"}"', f'state_dir = "{state}"'))
    proc = start_agent(config, agent_env(models_dir))
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    lines = [ln for ln in err.splitlines() if "error" in ln.lower()]
    assert proc.returncode == 1, err
    assert "Traceback" not in err and len(lines) == 1 and "free" in lines[0], err
    assert digest(state / "outbox.sqlite3") == before
    assert not list(state.glob("*.corrupt-*"))
