"""The message contract end to end: gap-free seq, per-topic order and Last Wills outside the sequence, through a
broker outage, a kill -9 of the publisher process and an outbox reset (real mosquitto, real subprocesses).

The scenarios are the ones `python -m benchmarks.reliability` measures, run shorter here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.reliability import scenario
from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.mqtt import Publisher
from edge_agent.publish.schemas import validate
from tests.fixtures.broker import Broker, Collector, _find_mosquitto

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_find_mosquitto() is None, reason="needs mosquitto (apt-get install mosquitto)"),
]


def wait(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize(
    ("name", "rate"), [("outage", 200.0), ("broker_kill9", 200.0), ("kill9", 60.0), ("reset", 60.0)]
)
def test_every_accepted_message_arrives_gap_free_and_in_topic_order(tmp_path: Path, name: str, rate: float) -> None:
    fig = scenario(name, tmp_path, phase_s=3.0, rate=rate)
    assert fig is not None
    assert fig.accepted > 100
    assert fig.delivered == fig.accepted and fig.lost == 0, fig
    assert fig.gaps == 0 and fig.dropped == 0, fig
    assert fig.out_of_order == 0, fig
    assert fig.numbered_status == 0  # online/offline/Last Will never carry a seq
    assert fig.epochs == (2 if name == "reset" else 1)
    if name == "kill9":
        assert fig.last_wills >= 1 and fig.status_before_stop == "online"


def test_a_reset_starts_a_new_epoch_above_every_earlier_number(broker_factory, tmp_path: Path) -> None:
    broker: Broker = broker_factory()
    state = tmp_path / "state"
    sub = Collector(broker, "edge-agent/dev-r/#")
    cfg = MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5)
    body = {"command": "x", "request_id": None, "ok": True, "result": None, "error": None}
    first = Publisher(cfg, OutboxConfig(), "dev-r", state)
    first.start()
    ids = [first.submit("cmd/x/result", body, schema="edge-agent/cmd_result/1") for _ in range(5)]
    assert wait(lambda: first.stats()["queue_depth"] == 0)
    old = first.stats()
    first.close(1.0)
    (state / "outbox.sqlite3").write_bytes(b"")  # emptied by someone: zero bytes
    for suffix in ("-wal", "-shm"):
        Path(f"{state}/outbox.sqlite3{suffix}").unlink(missing_ok=True)
    second = Publisher(cfg, OutboxConfig(), "dev-r", state)
    try:
        second.start()
        ids.append(second.submit("cmd/x/result", body, schema="edge-agent/cmd_result/1"))
        assert sub.wait_for(lambda m: set(ids) <= {x.json()["msg_id"] for x in m if x.json().get("seq")}, 10)
        docs = [validate(x.payload) for x in sub.messages if x.json().get("seq")]
        new = next(d for d in docs if d["msg_id"] == ids[-1])
        assert new["epoch"] > old["epoch"] and new["seq"] > old["last_seq"]
        assert second.stats()["first_seq"] == new["seq"]
    finally:
        second.close(1.0)
        sub.client.loop_stop()


def test_a_stale_last_will_after_a_reconnect_is_answered_with_online(broker_factory, tmp_path: Path) -> None:
    """The broker may publish the will of a dead connection after we reconnected (a network cut, no FIN)."""
    broker: Broker = broker_factory()
    watcher = Collector(broker, "edge-agent/dev-w/status")
    cfg = MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5)
    pub = Publisher(cfg, OutboxConfig(), "dev-w", tmp_path / "state")
    try:
        pub.start()
        assert wait(lambda: pub.connected)
        assert watcher.wait_for(lambda m: any(x.json()["state"] == "online" for x in m))
        will = pub._status_payload("offline", "connection_lost")  # exactly what the broker holds for us
        watcher.client.publish("edge-agent/dev-w/status", will, qos=1, retain=True).wait_for_publish(5)
        assert watcher.wait_for(lambda m: m[-1].json()["state"] == "online" and len(m) >= 3, 10)
        assert pub.stats()["status_repairs"] == 1
        late = Collector(broker, "edge-agent/dev-w/status")  # a newcomer sees the retained value
        assert late.wait_for(bool) and late.messages[0].json()["state"] == "online"
        assert all(json.loads(x.payload)["seq"] is None for x in watcher.messages)
    finally:
        pub.close(1.0)


def test_a_dead_network_thread_is_replaced_and_delivery_continues(broker_factory, tmp_path: Path) -> None:
    broker: Broker = broker_factory()
    sub = Collector(broker, "edge-agent/dev-n/#")
    cfg = MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5)
    pub = Publisher(cfg, OutboxConfig(), "dev-n", tmp_path / "state")
    body = {"command": "x", "request_id": None, "ok": True, "result": None, "error": None}
    try:
        pub.start()
        assert wait(lambda: pub.connected)
        pub._client.loop_stop()  # paho's network thread ends without a disconnect: as if it had crashed
        assert not pub.healthy()
        assert wait(lambda: pub.stats()["network_restarts"] == 1, 5)
        msg_id = pub.submit("cmd/x/result", body, schema="edge-agent/cmd_result/1")
        assert sub.wait_for(lambda m: any(x.json()["msg_id"] == msg_id for x in m), 10)
        assert wait(pub.healthy)
    finally:
        pub.close(1.0)
