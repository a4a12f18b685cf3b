"""mqtt.hosts failover with the real Publisher and two real mosquitto brokers: in order, back to the first,
nothing lost, per-topic order kept. (The cluster test with RabbitMQ is tests/test_failover_cluster.py.)"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.failover import Endpoint, parse_endpoint
from edge_agent.publish.mqtt import Publisher
from tests.fixtures.broker import BrokerFactory, Collector

DEVICE = "dev-failover"


def payload(i: int) -> dict[str, Any]:
    return {"uptime_s": float(i), "interval_s": 1.0, "publish": {"connected": True, "queue_depth": 0, "dropped": {}}}


def test_endpoints_parse_with_default_ports_and_ipv6() -> None:
    assert parse_endpoint("mq-a", 1883) == Endpoint("mq-a", 1883)
    assert parse_endpoint("mq-b:8883", 1883) == Endpoint("mq-b", 8883)
    assert parse_endpoint("[::1]:1884", 1883) == Endpoint("::1", 1884)
    assert parse_endpoint("::1", 1883) == Endpoint("::1", 1883)  # a bare IPv6 address takes the default port
    for bad in ("", "a:b", "a:70000", "[::1]:x"):
        with pytest.raises(ValueError):
            parse_endpoint(bad, 1883)
    with pytest.raises(ValueError, match="hosts"):
        MqttConfig(hosts=["mq-a:1883", "mq-b:x"])


@pytest.mark.slow
def test_publisher_fails_over_in_order_returns_to_the_first_and_loses_nothing(
    tmp_path: Path, broker_factory: BrokerFactory
) -> None:
    a, b = broker_factory(persistence=True), broker_factory(persistence=True)
    subs = {"a": Collector(a, f"edge-agent/{DEVICE}/#", persistent=True),
            "b": Collector(b, f"edge-agent/{DEVICE}/#", persistent=True)}  # fmt: skip
    cfg = MqttConfig(
        hosts=[f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"],
        failback_s=2.0,
        keepalive_s=5,
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
    )
    pub = Publisher(cfg, OutboxConfig(), DEVICE, tmp_path / "state")
    pub.start()
    sent: list[int] = []

    def send(n: int) -> None:
        for _ in range(n):
            pub.submit("stats", payload(len(sent)), schema="edge-agent/stats/1")
            pub.submit("cameras/cam0/tracks_like", payload(len(sent)), schema="edge-agent/stats/1")
            sent.append(len(sent))
            time.sleep(0.02)

    try:
        send(30)
        assert subs["a"].wait_for(lambda m: len(m) >= 60, 15), "the first broker got nothing"
        a.stop()  # the broker the agent is connected to dies while it publishes
        send(60)
        assert subs["b"].wait_for(lambda m: sum(1 for x in m if x.topic.endswith("/stats")) >= 30, 20)
        assert pub.stats()["connected"]
        a.start()  # back: after failback_s the publisher returns to the first
        subs["a"].connected.wait(10)
        deadline = time.monotonic() + 20
        before = len(subs["a"].messages)
        while time.monotonic() < deadline and len(subs["a"].messages) == before:
            send(5)
        assert len(subs["a"].messages) > before, "did not return to the first broker"
        send(10)
        time.sleep(2)
        assert pub.stats()["queue_depth"] == 0
    finally:
        pub.close(2.0)
    docs = [json.loads(m.payload) for s in subs.values() for m in s.messages if m.payload]
    seqs = {d["seq"] for d in docs if d.get("seq") is not None}
    accepted = pub.stats()["last_seq"] if "last_seq" in pub.stats() else 2 * len(sent)
    assert seqs == set(range(min(seqs), accepted + 1)), "a seq went missing across the switches"
    assert len(seqs) == 2 * len(sent)
    for s in subs.values():  # per-topic order on each broker (a repeat of an in-flight message may precede)
        for topic in {m.topic for m in s.messages}:
            got = [json.loads(m.payload)["seq"] for m in s.messages if m.topic == topic and m.payload]
            got = [x for x in got if x is not None]
            dedup = list(dict.fromkeys(got))
            assert dedup == sorted(dedup), topic
    for s in subs.values():
        s.close()
