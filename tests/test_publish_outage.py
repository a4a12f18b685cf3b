"""No message lost: broker outages, SIGKILL during an outage, bounded queue, fair replay, Last Will on sudden death.

Publishers that must die abruptly run as real subprocesses (this file run as a script, see `child()` below).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.mqtt import Publisher
from edge_agent.publish.schemas import validate
from tests.fixtures.broker import Broker, Collector, Received

DEVICE = "dev-out"
REPO = Path(__file__).resolve().parents[1]


def cfg_for(host: str, port: int, protocol: str = "5") -> MqttConfig:
    return MqttConfig(host=host, port=port, reconnect_min_s=0.1, reconnect_max_s=0.5, keepalive_s=5, protocol=protocol)  # type: ignore[arg-type]


def stats_payload(i: int) -> dict[str, Any]:
    return {"uptime_s": float(i), "interval_s": 1.0, "publish": {"connected": False, "queue_depth": i, "dropped": {}}}


def result_payload(i: int) -> dict[str, Any]:
    return {"command": "ping", "request_id": str(i), "ok": True, "result": {"i": i}, "error": None}


def wait(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def first_seen(messages: list[Received]) -> list[dict[str, Any]]:
    """Parsed messages in arrival order, duplicates (same msg_id, allowed by QoS 1) removed."""
    seen: set[str] = set()
    out = []
    for m in messages:
        doc = m.json()
        if doc["msg_id"] not in seen:
            seen.add(doc["msg_id"])
            out.append(doc)
    return out


@pytest.fixture
def persistent_broker(broker_factory: Callable[..., Broker]) -> Broker:
    return broker_factory(persistence=True)


@pytest.fixture
def publishers(tmp_path: Path) -> Iterator[Callable[..., Publisher]]:
    made: list[Publisher] = []

    def make(broker: Broker, outbox: OutboxConfig | None = None, **kw: Any) -> Publisher:
        cfg = cfg_for(broker.host, broker.port).model_copy(update=kw)
        p = Publisher(cfg, outbox or OutboxConfig(), DEVICE, tmp_path / "state")
        made.append(p)
        return p

    yield make
    for p in made:
        p.close(0.5)


def test_broker_outage_delivers_every_accepted_message_in_order_per_topic(
    persistent_broker, collector_factory, publishers
) -> None:
    broker = persistent_broker
    sub: Collector = collector_factory(broker, f"edge-agent/{DEVICE}/#", persistent=True)
    pub = publishers(broker)
    pub.start()
    assert wait(lambda: pub.connected)
    accepted: dict[str, str] = {}  # msg_id -> phase

    def burst(n: int, phase: str) -> None:
        for i in range(n):
            accepted[pub.submit("stats", stats_payload(i), schema="edge-agent/stats/1")] = phase
            accepted[pub.submit("cmd/ping/result", result_payload(i), schema="edge-agent/cmd_result/1")] = phase
            time.sleep(0.01)

    burst(20, "before")
    broker.stop()
    assert wait(lambda: not pub.connected)
    burst(30, "outage")
    assert pub.stats()["queue_depth"] >= 60
    broker.start()
    assert wait(lambda: pub.connected, 15)
    burst(20, "after")
    assert sub.wait_for(lambda m: accepted.keys() <= {x.json()["msg_id"] for x in m}, 20), (
        f"missing {len(accepted.keys() - {x.json()['msg_id'] for x in sub.messages})} of {len(accepted)}"
    )
    docs = [d for d in first_seen(sub.messages) if d["msg_id"] in accepted]
    for d in docs:
        validate(d)
    for schema in ("edge-agent/stats/1", "edge-agent/cmd_result/1"):
        seqs = [d["seq"] for d in docs if d["schema"] == schema]
        assert seqs == sorted(seqs), f"{schema} out of order"
    assert all(d.get("buffered") is True for d in docs if accepted[d["msg_id"]] == "outage")
    assert not any(d.get("buffered") for d in docs if accepted[d["msg_id"]] == "after")
    assert wait(lambda: pub.stats()["queue_depth"] == 0)
    assert pub.stats()["dropped"] == {}


def test_sigkill_during_an_outage_then_restart_delivers_everything(persistent_broker, collector_factory, tmp_path):
    broker = persistent_broker
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/stats", persistent=True)
    broker.stop()
    state = tmp_path / "state"
    child = start_child("submit", broker, state, count=40)
    accepted = read_ids(child, 40)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=5)  # reaps it and closes its stdout pipe
    broker.start()
    pub = Publisher(cfg_for(broker.host, broker.port), OutboxConfig(), DEVICE, state)
    try:
        pub.start()
        assert sub.wait_for(lambda m: set(accepted) <= {x.json()["msg_id"] for x in m}, 15)
        docs = [d for d in first_seen(sub.messages) if d["msg_id"] in accepted]
        assert [d["msg_id"] for d in docs] == accepted  # submit order
        assert all(d["buffered"] is True for d in docs)
        assert wait(lambda: pub.stats()["queue_depth"] == 0)
        nxt = pub.submit("stats", stats_payload(99), schema="edge-agent/stats/1")
        assert sub.wait_for(lambda m: any(x.json()["msg_id"] == nxt for x in m))
        assert next(x.json() for x in sub.messages if x.json()["msg_id"] == nxt)["seq"] > docs[-1]["seq"]
    finally:
        pub.close(1.0)


def test_sigkill_leaves_the_broker_to_publish_the_retained_offline_will(broker, collector_factory, tmp_path):
    child = start_child("connect", broker, tmp_path / "state")
    assert child.stdout is not None and child.stdout.readline().strip() == "connected"
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/status")
    assert sub.wait_for(lambda m: any(x.json()["state"] == "online" for x in m))
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=5)  # reaps it and closes its stdout pipe
    assert sub.wait_for(lambda m: m[-1].json()["state"] == "offline", 10)
    will = validate(sub.messages[-1].payload)
    assert will["reason"] == "connection_lost" and will["device_id"] == DEVICE
    late = collector_factory(broker, f"edge-agent/{DEVICE}/status")
    assert late.wait_for(bool) and late.messages[0].retain
    assert late.messages[0].json()["state"] == "offline"


def test_tiny_queue_in_a_long_outage_keeps_the_newest_and_counts_the_dropped(
    persistent_broker, collector_factory, publishers
) -> None:
    broker = persistent_broker
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/stats", persistent=True)
    broker.stop()
    pub = publishers(broker, OutboxConfig(max_messages=10))
    pub.start()
    ids = [pub.submit("stats", stats_payload(i), schema="edge-agent/stats/1") for i in range(40)]
    st = pub.stats()
    assert st["dropped"] == {"max_messages": 30} and st["queue_depth"] == 10
    broker.start()
    assert sub.wait_for(lambda m: set(ids[-10:]) <= {x.json()["msg_id"] for x in m}, 15)
    assert wait(lambda: pub.stats()["queue_depth"] == 0)
    time.sleep(0.2)
    assert [d["msg_id"] for d in first_seen(sub.messages)] == ids[-10:]


def test_live_topics_are_not_starved_behind_a_replayed_backlog(persistent_broker, collector_factory, publishers):
    broker = persistent_broker
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/#", persistent=True)
    broker.stop()
    pub = publishers(broker, inflight_window=50)
    pub.start()
    backlog = [pub.submit("stats", stats_payload(i), schema="edge-agent/stats/1") for i in range(1500)]
    live = pub.submit("cmd/ping/result", result_payload(0), schema="edge-agent/cmd_result/1")
    broker.start()
    want = set(backlog) | {live}
    assert sub.wait_for(lambda m: len(m) >= len(want) and want <= {x.json()["msg_id"] for x in m}, 30)
    order = [d["msg_id"] for d in first_seen(sub.messages) if d["schema"] != "edge-agent/status/1"]
    assert live in order and order.index(live) < 200  # served in the first windows, not after 1500
    assert [m for m in order if m != live] == backlog


def test_stop_during_an_outage_is_prompt_and_the_next_start_delivers_the_queue(
    persistent_broker, collector_factory, tmp_path
):
    broker = persistent_broker
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/stats", persistent=True)
    broker.stop()
    state = tmp_path / "state"
    first = Publisher(cfg_for(broker.host, broker.port), OutboxConfig(), DEVICE, state)
    first.start()
    ids = [first.submit("stats", stats_payload(i), schema="edge-agent/stats/1") for i in range(200)]
    t0 = time.monotonic()
    first.close(1.0)
    assert time.monotonic() - t0 < 3.0  # a SIGTERM must finish within systemd's budget even with the broker away
    broker.start()
    second = Publisher(cfg_for(broker.host, broker.port), OutboxConfig(), DEVICE, state)
    try:
        second.start()
        assert sub.wait_for(lambda m: set(ids) <= {x.json()["msg_id"] for x in m}, 15)
        assert [d["msg_id"] for d in first_seen(sub.messages)] == ids
    finally:
        second.close(1.0)


# -- the child process -------------------------------------------------------------------------------------------


def start_child(mode: str, broker: Broker, state: Path, count: int = 0) -> subprocess.Popen[str]:
    args = [
        sys.executable,
        "-m",
        "tests.test_publish_outage",
        mode,
        broker.host,
        str(broker.port),
        str(state),
        str(count),
        broker.protocol,
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=REPO)


def read_ids(child: subprocess.Popen[str], n: int) -> list[str]:
    assert child.stdout is not None
    ids = [child.stdout.readline().strip() for _ in range(n)]
    assert all(len(i) == 36 for i in ids), ids
    return ids


def child(mode: str, host: str, port: int, state: Path, count: int, protocol: str) -> None:
    """`submit`: queue `count` messages (printing each msg_id once committed), then idle until killed.
    `connect`: print `connected` once connected, then idle until killed."""
    pub = Publisher(cfg_for(host, port, protocol), OutboxConfig(), DEVICE, state)
    pub.start()
    if mode == "submit":
        for i in range(count):
            print(pub.submit("stats", stats_payload(i), schema="edge-agent/stats/1"), flush=True)
    else:
        while not pub.connected:
            time.sleep(0.02)
        print("connected", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
