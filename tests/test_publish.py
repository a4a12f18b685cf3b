"""Publisher against a real mosquitto: envelope and schemas, status/online/offline, commands, oversize, bad input."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config.errors import ConfigError
from edge_agent.publish.config import MqttConfig, OutboxConfig, TlsConfig
from edge_agent.publish.envelope import MessageError
from edge_agent.publish.incoming import Incoming
from edge_agent.publish.mqtt import Publisher
from edge_agent.publish.schemas import validate
from tests.fixtures.broker import Broker, Collector

DEVICE = "dev-1"


def mqtt_cfg(broker: Broker, **kw: Any) -> MqttConfig:
    return MqttConfig(
        host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5, protocol=broker.protocol, **kw
    )


@pytest.fixture
def make_publisher(tmp_path: Path) -> Iterator[Callable[..., Publisher]]:
    made: list[Publisher] = []

    def make(broker: Broker, outbox: OutboxConfig | None = None, state: Path | None = None, **kw: Any) -> Publisher:
        p = Publisher(mqtt_cfg(broker, **kw), outbox or OutboxConfig(), DEVICE, state or tmp_path / "state")
        made.append(p)
        return p

    yield make
    for p in made:
        p.close(0.5)


def stats_payload(i: int) -> dict[str, Any]:
    return {"uptime_s": float(i), "interval_s": 1.0, "publish": {"connected": True, "queue_depth": 0, "dropped": {}}}


def wait(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_messages_arrive_with_a_valid_envelope_and_payload_schema(broker, collector_factory, make_publisher) -> None:
    sub: Collector = collector_factory(broker, f"edge-agent/{DEVICE}/#")
    pub = make_publisher(broker)
    pub.start()
    ids = [pub.submit("stats", stats_payload(i), schema="edge-agent/stats/1") for i in range(5)]
    ids.append(
        pub.submit(
            "cameras/cam1/status",
            {"state": "online", "since": "2026-01-01T00:00:00.000Z"},
            schema="edge-agent/camera_status/1",
            camera_id="cam1",
            retain=True,
        )
    )
    assert sub.wait_for(lambda m: len([x for x in m if x.json()["msg_id"] in ids]) == 6)
    docs = [validate(m.payload) for m in sub.messages]  # raises on any schema violation
    ours = [d for d in docs if d["msg_id"] in ids]
    assert [d["msg_id"] for d in ours if d["schema"] == "edge-agent/stats/1"] == ids[:5]
    assert all(d["device_id"] == DEVICE for d in docs)
    stats_seqs = [d["seq"] for d in ours if d["schema"] == "edge-agent/stats/1"]
    assert stats_seqs == sorted(stats_seqs) and len({d["seq"] for d in ours}) == 6  # FIFO per topic, unique seq
    cam = next(d for d in ours if d["schema"] == "edge-agent/camera_status/1")
    assert cam["camera_id"] == "cam1" and cam["seq"] > stats_seqs[-1]
    assert wait(lambda: pub.stats()["acked"] == 6 and pub.stats()["queue_depth"] == 0)


def test_online_is_retained_and_clean_close_leaves_retained_offline(broker, collector_factory, make_publisher) -> None:
    pub = make_publisher(broker)
    pub.start()
    assert wait(lambda: pub.connected)
    late = collector_factory(broker, f"edge-agent/{DEVICE}/status")  # subscribes after the fact: retained only
    assert late.wait_for(bool)
    first = late.messages[0]
    assert first.retain and first.json()["state"] == "online"
    pub.close(2.0)
    assert late.wait_for(lambda m: m[-1].json()["state"] == "offline")
    assert late.messages[-1].json()["reason"] == "shutdown"
    again = collector_factory(broker, f"edge-agent/{DEVICE}/status")
    assert again.wait_for(bool)
    assert again.messages[0].retain and validate(again.messages[0].payload)["state"] == "offline"


def test_online_is_republished_after_a_broker_restart(broker, collector_factory, make_publisher) -> None:
    pub = make_publisher(broker)
    pub.start()
    assert wait(lambda: pub.connected)
    broker.stop()
    assert wait(lambda: not pub.connected)
    broker.start()  # fresh broker without persistence: the old retained status is gone
    assert wait(lambda: pub.connected and pub.stats()["reconnects"] >= 1, 15)
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/status")
    assert sub.wait_for(bool)
    assert sub.messages[0].retain and sub.messages[0].json()["state"] == "online"


def test_commands_reach_the_callback_and_our_own_results_are_not_echoed(broker, collector_factory, make_publisher):
    got: list[tuple[str, bytes]] = []
    pub = make_publisher(broker)
    pub.subscribe("cmd/#", lambda m: got.append((m.topic_suffix, m.payload)))
    pub.start()
    assert wait(lambda: pub.connected)
    sender = collector_factory(broker, "unused/#")
    time.sleep(0.2)  # SUBACK
    sender.client.publish(f"edge-agent/{DEVICE}/cmd/pause", b'{"id":"r1"}', qos=1).wait_for_publish(5)
    sender.client.publish("edge-agent/other/cmd/pause", b"{}", qos=1).wait_for_publish(5)
    assert wait(lambda: bool(got))
    pub.submit(
        "cmd/pause/result",
        {"command": "pause", "request_id": "r1", "ok": True, "result": None, "error": None},
        schema="edge-agent/cmd_result/1",
    )
    assert wait(lambda: pub.stats()["acked"] >= 1)
    time.sleep(0.3)
    assert got == [("cmd/pause", b'{"id":"r1"}')]


def test_a_failing_command_handler_does_not_stop_the_client(broker, collector_factory, make_publisher, caplog):
    calls: list[str] = []

    def handler(msg: Incoming) -> None:
        calls.append(msg.topic_suffix)
        raise RuntimeError("handler bug")

    pub = make_publisher(broker)
    pub.subscribe("cmd/+", handler)
    pub.start()
    assert wait(lambda: pub.connected)
    sender = collector_factory(broker, "unused/#")
    time.sleep(0.2)
    for _ in range(2):
        sender.client.publish(f"edge-agent/{DEVICE}/cmd/x", b"{}", qos=1).wait_for_publish(5)
    assert wait(lambda: len(calls) == 2)
    assert "handler bug" in caplog.text
    pub.submit("stats", stats_payload(0), schema="edge-agent/stats/1")
    assert wait(lambda: pub.stats()["acked"] == 1)


def test_oversize_message_is_dropped_counted_and_the_queue_keeps_flowing(broker, collector_factory, make_publisher):
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/stats")
    pub = make_publisher(broker, max_payload_bytes=4096)
    pub.start()
    big = stats_payload(0) | {"cameras": {f"c{i}": {"reopens": i} for i in range(400)}}
    pub.submit("stats", big, schema="edge-agent/stats/1")
    after = pub.submit("stats", stats_payload(1), schema="edge-agent/stats/1")
    assert sub.wait_for(lambda m: any(x.json()["msg_id"] == after for x in m))
    assert len(sub.messages) == 1
    assert pub.stats()["dropped"] == {"oversize": 1}


def test_message_over_the_brokers_max_packet_size_is_dropped_not_retried(
    broker_factory, collector_factory, make_publisher, caplog
):
    # mosquitto announces max_packet_size in CONNACK (MQTT v5); sending a larger packet would get us disconnected.
    broker = broker_factory(extra="max_packet_size 2000")
    if not broker.v5:
        pytest.skip("needs an MQTT v5 broker for PUBACK reason codes")
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/stats")
    pub = make_publisher(broker)
    pub.start()
    big = stats_payload(0) | {"cameras": {f"c{i}": {"reopens": i} for i in range(200)}}  # ~4 kB < agent limit
    pub.submit("stats", big, schema="edge-agent/stats/1")
    after = pub.submit("stats", stats_payload(1), schema="edge-agent/stats/1")
    assert sub.wait_for(lambda m: any(x.json()["msg_id"] == after for x in m))
    assert wait(lambda: pub.stats()["queue_depth"] == 0)
    assert pub.stats()["dropped"] == {"oversize": 1}
    assert [x.json()["msg_id"] for x in sub.messages] == [after]
    assert "dropped" in caplog.text


def test_message_that_makes_the_broker_drop_us_is_dropped_after_three_tries(
    broker_factory, collector_factory, make_publisher, caplog
):
    # mosquitto's (deprecated) message_size_limit answers with PUBACK 0x95, which paho treats as a protocol error
    # and disconnects; paho would resend the same message on every reconnect, forever.
    broker = broker_factory(extra="message_size_limit 2000")
    if not broker.v5:
        pytest.skip("needs mosquitto")
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/stats")
    pub = make_publisher(broker)
    pub.start()
    assert wait(lambda: pub.connected)
    before = pub.submit("stats", stats_payload(0), schema="edge-agent/stats/1")
    assert sub.wait_for(bool)
    pub.submit(
        "stats",
        stats_payload(1) | {"cameras": {f"c{i}": {"reopens": i} for i in range(200)}},
        schema="edge-agent/stats/1",
    )
    after = pub.submit("stats", stats_payload(2), schema="edge-agent/stats/1")
    assert sub.wait_for(lambda m: any(x.json()["msg_id"] == after for x in m), 15)
    assert wait(lambda: pub.stats()["queue_depth"] == 0)
    assert pub.stats()["dropped"] == {"broker_disconnect": 1}
    assert list(dict.fromkeys(x.json()["msg_id"] for x in sub.messages)) == [before, after]  # QoS 1: dups allowed
    assert "dropping that message" in caplog.text


def test_a_stored_row_paho_cannot_send_is_dropped_and_the_rest_flows(broker, collector_factory, tmp_path):
    from edge_agent.publish.outbox import Outbox

    state = tmp_path / "state"
    box = Outbox(state / "outbox.sqlite3", OutboxConfig())  # e.g. written by an older version
    box.put(f"edge-agent/{DEVICE}/bad/#", lambda seq: b'{"x":1}', retain=False, created=time.time())
    box.close()
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/stats")
    pub = Publisher(mqtt_cfg(broker), OutboxConfig(), DEVICE, state)
    try:
        pub.start()
        mid = pub.submit("stats", stats_payload(0), schema="edge-agent/stats/1")
        assert sub.wait_for(lambda m: any(x.json()["msg_id"] == mid for x in m))
        assert wait(lambda: pub.stats()["queue_depth"] == 0)
        assert pub.stats()["dropped"] == {"publish_error": 1}
    finally:
        pub.close(0.5)


def test_caller_bugs_raise_message_error_and_queue_nothing(broker, make_publisher) -> None:
    pub = make_publisher(broker)
    with pytest.raises(MessageError):
        pub.submit("stats/#", stats_payload(0), schema="edge-agent/stats/1")
    with pytest.raises(MessageError):
        pub.submit("stats", {"msg_id": "mine"}, schema="edge-agent/stats/1")
    with pytest.raises(MessageError):
        pub.submit("stats", {"x": float("nan")}, schema="edge-agent/stats/1")
    with pytest.raises(MessageError):
        pub.submit("stats", {"x": object()}, schema="edge-agent/stats/1")
    with pytest.raises(MessageError):
        pub.submit("stats", {}, schema="stats-v1")
    assert pub.stats()["queue_depth"] == 0


def test_password_over_plaintext_is_refused_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_AGENT_MQTT_PASSWORD", "hunter2")
    cfg = MqttConfig(username="edge")
    with pytest.raises(ConfigError, match="allow_plaintext_password") as err:
        Publisher(cfg, OutboxConfig(), DEVICE, tmp_path)
    assert "hunter2" not in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "outbox.sqlite3").exists()  # refused before touching the disk
    Publisher(MqttConfig(username="edge", allow_plaintext_password=True), OutboxConfig(), DEVICE, tmp_path).close(0)


def test_password_comes_from_the_systemd_credential_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_AGENT_MQTT_PASSWORD", raising=False)
    creds = tmp_path / "creds"
    creds.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = MqttConfig(username="edge", tls=TlsConfig(enabled=True), password_credential="broker_pw")
    with pytest.raises(ConfigError, match="broker_pw"):
        Publisher(cfg, OutboxConfig(), DEVICE, tmp_path)
    (creds / "broker_pw").write_text("from-credential\n")
    from edge_agent.publish.auth import resolve_credentials

    resolved = resolve_credentials(cfg)
    assert resolved.password == "from-credential" and "from-credential" not in repr(resolved)


def test_unused_broker_address_does_not_block_start_or_submit(tmp_path: Path) -> None:
    from tests.fixtures.broker import free_port

    cfg = MqttConfig(host="127.0.0.1", port=free_port(), reconnect_min_s=0.1, reconnect_max_s=0.2)
    pub = Publisher(cfg, OutboxConfig(), DEVICE, tmp_path)
    t0 = time.monotonic()
    pub.start()
    mid = pub.submit("stats", stats_payload(0), schema="edge-agent/stats/1")
    assert uuid.UUID(mid).version == 4
    assert wait(lambda: pub.stats()["connect_failures"] >= 2, 5)  # it keeps retrying
    assert pub.stats()["queue_depth"] == 1 and not pub.connected
    pub.close(0.5)
    assert time.monotonic() - t0 < 8


def test_log_lines_never_contain_the_password(broker, make_publisher, monkeypatch, caplog) -> None:
    monkeypatch.setenv("EDGE_AGENT_MQTT_PASSWORD", "pw-visible-nowhere")
    caplog.set_level(logging.DEBUG)
    pub = make_publisher(broker, username="edge", allow_plaintext_password=True)
    pub.start()
    assert wait(lambda: pub.connected)
    pub.submit("stats", stats_payload(0), schema="edge-agent/stats/1")
    assert wait(lambda: pub.stats()["acked"] == 1)
    pub.close(1.0)
    assert "pw-visible-nowhere" not in caplog.text
    assert json.dumps(pub.stats()).find("pw-visible-nowhere") == -1
