"""edge_agent.client against a real mosquitto and a real agent subprocess: once, in order, losses, epochs, liveness."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_agent.client import AgentClient, ClientConfig, Delivery, DeviceState, EpochChange, SeqRange
from tests.fixtures.broker import Broker, BrokerFactory, Collector
from tests.test_e2e import NO_ATTRIBUTES, agent_env, models_dir, running, start_agent, stop_agent, write_config

__all__ = ["models_dir", "running"]
pytestmark = pytest.mark.slow


class Recorder:
    """Everything an AgentClient hands its callbacks, by kind."""

    def __init__(self, client: AgentClient) -> None:
        self.events: dict[str, list[Any]] = {k: [] for k in ("any", "loss", "dropped", "epoch", "device", "invalid")}
        self._cond = threading.Condition()
        for kind in self.events:
            client.on(kind, lambda e, k=kind: self._add(k, e))

    def _add(self, kind: str, event: Any) -> None:
        with self._cond:
            self.events[kind].append(event)
            self._cond.notify_all()

    def wait(self, pred: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def sequenced(self) -> list[Delivery]:
        """Deliveries that take part in the sequence (not retained snapshots, not status)."""
        return [d for d in self.events["any"] if d.record.meta.seq is not None and not d.record.meta.retained]


def make_client(broker: Broker, dev: str, client_id: str | None = None, **kw: Any) -> tuple[AgentClient, Recorder]:
    cfg = ClientConfig(
        client_id=client_id or f"test-consumer-{uuid.uuid4().hex[:6]}",
        host=broker.host,
        port=broker.port,
        devices=(dev,),
        **{"hold_s": 0.5, "loss_after_s": 3.0, **kw},
    )
    client = AgentClient(cfg)
    rec = Recorder(client)
    client.start(timeout_s=15)
    return client, rec


def sequenced_raw(raw: Collector, dev: str) -> list[tuple[str, bytes, dict[str, Any]]]:
    """What the agent published in the sequence, as a plain subscriber saw it (unique msg_ids)."""
    out: dict[str, tuple[str, bytes, dict[str, Any]]] = {}
    for m in list(raw.messages):
        doc = json.loads(m.payload) if m.payload else {}
        if m.topic.startswith(f"edge-agent/{dev}/") and doc.get("seq") is not None and not m.retain:
            out.setdefault(doc["msg_id"], (m.topic, m.payload, doc))
    return sorted(out.values(), key=lambda t: (t[2]["epoch"], t[2]["seq"]))


def republish(broker: Broker, messages: list[tuple[str, bytes, dict[str, Any]]]) -> None:
    """Send messages again, byte for byte (as a broker bridge or a replaying device would), QoS 1."""
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"replayer-{uuid.uuid4().hex[:6]}")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        for info in [pub.publish(topic, payload, qos=1) for topic, payload, _ in messages]:
            info.wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


def test_restart_loses_nothing_order_holds_and_a_replayed_backlog_is_delivered_once(
    tmp_path: Path, broker_factory: BrokerFactory, models_dir: Path, running: list[subprocess.Popen[str]]
) -> None:
    broker = broker_factory(persistence=True)
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    raw = Collector(broker, f"edge-agent/{dev}/#")
    state = tmp_path / "consumer-state.json"
    client, rec1 = make_client(broker, dev, client_id="ads-player-1", state_file=state)
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    assert rec1.wait(lambda: len(rec1.sequenced()) >= 20, 40), "the client got too little from the agent"
    client.close()  # the consumer restarts while the agent keeps publishing: the broker session queues for it
    time.sleep(3)
    client, rec2 = make_client(broker, dev, client_id="ads-player-1", state_file=state)
    time.sleep(3)
    code, _, err = stop_agent(proc, signal.SIGTERM)
    assert code == 0, err[-2000:]
    sent = sequenced_raw(raw, dev)
    assert rec2.wait(lambda: len(rec1.sequenced()) + len(rec2.sequenced()) >= len(sent), 20)
    time.sleep(1.0)
    got = [d.record.meta for d in rec1.sequenced() + rec2.sequenced()]
    assert sorted(m.seq for m in got) == [doc["seq"] for _, _, doc in sent]  # nothing lost, nothing twice
    for rec in (rec1, rec2):  # in seq order within each run of the consumer
        seqs = [d.record.meta.seq for d in rec.sequenced()]
        assert seqs == sorted(seqs) and not any(d.late for d in rec.sequenced())
    assert rec1.events["loss"] == rec2.events["loss"] == []

    before = len(rec2.events["any"])
    republish(broker, sent)  # the whole backlog again, as after a device crash between PUBACK and delete
    assert rec2.wait(lambda: client.counts["duplicates"] >= len(rec2.sequenced()), 15), client.counts
    time.sleep(1.0)
    assert len(rec2.events["any"]) == before  # none of it reached the callbacks again
    client.close()


def test_a_gap_is_a_loss_but_a_range_the_device_dropped_is_not(
    tmp_path: Path, broker_factory: BrokerFactory, models_dir: Path, running: list[subprocess.Popen[str]]
) -> None:
    # the client acknowledges a message only once handed on, so while it holds messages for ordering the broker's
    # in-flight window to it fills; a consumer that reorders needs room there (mosquitto's default is 20)
    broker = broker_factory(persistence=True, extra="max_inflight_messages 200")
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES + "[outbox]\nmax_messages = 10\n")
    raw = Collector(broker, f"edge-agent/{dev}/#", persistent=True)
    client, rec = make_client(broker, dev, client_id="fleet-store-1")
    broker.stop()  # the agent starts offline: its 10-message outbox must drop the oldest
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    time.sleep(8)
    broker.start()
    assert rec.wait(lambda: bool(rec.events["dropped"]), 40), f"no dropped report; {client.counts}"
    time.sleep(4)  # > loss_after_s: any unexplained gap would be reported by now
    assert rec.events["loss"] == []
    dropped = sum(r.count for r in rec.events["dropped"])
    stats = [d.record for d in rec.events["any"] if type(d.record).__name__ == "Stats"]
    assert dropped <= stats[-1].raw["publish"]["dropped_seq"]["count"]
    code, _, err = stop_agent(proc, signal.SIGTERM)
    assert code == 0, err[-2000:]
    client.close()

    # the same real stream, out of order and with three messages missing, to a fresh consumer. Each block of 10
    # is shuffled: more disorder than the agent's round-robin replay makes, and within the broker's in-flight window
    sent = sequenced_raw(raw, dev)
    assert len(sent) > 20
    missing = sent[len(sent) // 2 : len(sent) // 2 + 3]
    kept = [m for m in sent if m not in missing]
    shuffled = []
    rng = random.Random(7)
    for i in range(0, len(kept), 10):
        block = kept[i : i + 10]
        rng.shuffle(block)
        shuffled += block
    assert shuffled != kept
    fresh, rec2 = make_client(broker, dev, hold_s=3.0)
    republish(broker, shuffled)
    assert rec2.wait(lambda: bool(rec2.events["loss"]), 15), fresh.counts
    first, last = missing[0][2]["seq"], missing[-1][2]["seq"]
    epoch = missing[0][2]["epoch"]
    assert SeqRange(dev, epoch, first, last) in rec2.events["loss"]
    seqs = [d.record.meta.seq for d in rec2.sequenced()]
    assert seqs == sorted(seqs)  # shuffled on the wire, in order at the callbacks
    fresh.close()


def test_an_outbox_reset_is_an_epoch_change_and_a_vanished_device_is_offline_by_its_last_will(
    tmp_path: Path, broker: Broker, models_dir: Path, running: list[subprocess.Popen[str]]
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    client, rec = make_client(broker, dev)
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    assert rec.wait(lambda: len(rec.sequenced()) >= 5, 40)
    code, _, err = stop_agent(proc, signal.SIGTERM)
    assert code == 0, err[-2000:]
    shutil.rmtree(tmp_path / "state")  # the whole state directory is wiped: seq restarts, with a new epoch
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    assert rec.wait(lambda: bool(rec.events["epoch"]), 40), client.counts
    [change] = rec.events["epoch"]
    assert isinstance(change, EpochChange) and change.new > change.old
    assert rec.wait(lambda: any(d.record.meta.epoch == change.new for d in rec.sequenced()), 20)
    assert not any(d.late for d in rec.sequenced())  # seq 1 of the new epoch is not "late"

    proc.send_signal(signal.SIGKILL)  # vanishes: no clean offline; the broker sends the Last Will (~1.5 x 5 s)
    proc.wait(10)
    assert rec.wait(lambda: any(not s.online for s in rec.events["device"]), 30)
    last: DeviceState = rec.events["device"][-1]
    assert (last.online, last.last_will, last.reason) == (False, True, "connection_lost")
    assert client.device_states()[dev] == last
    time.sleep(3.5)
    assert rec.events["loss"] == []
    client.close()
