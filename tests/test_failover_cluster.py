"""Failover on a real broker cluster: two RabbitMQ nodes (Debian's rabbitmq-server with its MQTT plugin, MQTT 3.1.1)
on loopback, with their own node names, ports and Erlang cookie, so the machine's own RabbitMQ is left alone.

The agent is connected to node A and publishing when node A is stopped; it must go on with node B, and a
subscriber on node B must end up with every seq of the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.broker import Collector, free_port, wait_port
from tests.test_e2e import NO_ATTRIBUTES, agent_env, models_dir, running, start_agent, stop_agent, write_config

__all__ = ["models_dir", "running"]
pytestmark = pytest.mark.slow

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
COOKIE = "EDGEAGENTFAILOVERTEST"


@dataclass
class RabbitNode:
    """One RabbitMQ node in its own directory; MQTT on `port` (the `host`/`port`/`v5` a Collector needs)."""

    name: str
    workdir: Path
    port: int
    amqp_port: int
    dist_port: int
    host: str = "127.0.0.1"
    v5: bool = False  # RabbitMQ 3.10's MQTT plugin speaks 3.1.1
    proc: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    def env(self) -> dict[str, str]:
        d = self.workdir
        return {
            **os.environ,
            "HOME": str(d / "home"),  # the Erlang cookie lives here, not in the system node's home
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "env.conf"),
            "RABBITMQ_PID_FILE": str(d / "pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def prepare(self) -> None:
        d = self.workdir
        for sub in ("home", "mnesia", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        cookie = d / "home" / ".erlang.cookie"
        cookie.write_text(COOKIE)
        cookie.chmod(0o400)
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            f"mqtt.listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "mqtt.allow_anonymous = true\nloopback_users = none\n"
        )
        (d / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (d / "env.conf").write_text("")

    def start(self) -> None:
        log = open(self.workdir / "server.out", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self.env(), stdout=log, stderr=log)
        log.close()
        if not wait_port(self.host, self.port, 90):
            raise RuntimeError(f"RabbitMQ node {self.node} did not open MQTT: {self.log_tail()}")

    def ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env(), check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip

    def stop(self) -> None:
        """A clean node shutdown (connections closed), then make sure the process is gone."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.ctl("stop", timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.proc.kill()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self) -> str:
        try:
            return (self.workdir / "server.out").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


@pytest.fixture
def rabbit_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RabbitNode, RabbitNode]]:
    """Two clustered RabbitMQ nodes with the MQTT plugin (skips without Debian's rabbitmq-server)."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    tag = uuid.uuid4().hex[:6]
    nodes = tuple(
        RabbitNode(f"ea{tag}{n}", tmp_path_factory.mktemp(f"rabbit-{n}"), free_port(), free_port(), free_port())
        for n in ("a", "b")
    )
    a, b = nodes
    try:
        for node in nodes:
            node.prepare()
            node.start()
        b.ctl("stop_app")
        b.ctl("join_cluster", a.node)
        b.ctl("start_app")
        assert wait_port(b.host, b.port, 60), b.log_tail()
        yield a, b
    finally:
        for node in reversed(nodes):
            node.stop()


def test_agent_fails_over_to_the_other_cluster_node_and_a_subscriber_on_the_cluster_misses_nothing(
    tmp_path: Path,
    rabbit_cluster: tuple[RabbitNode, RabbitNode],
    models_dir: Path,
    running: list[subprocess.Popen[str]],
) -> None:
    a, b = rabbit_cluster
    mqtt = (
        f'hosts = ["127.0.0.1:{a.port}", "127.0.0.1:{b.port}"]\nprotocol = "3.1.1"\nkeepalive_s = 5\n'
        "reconnect_min_s = 0.5\nreconnect_max_s = 2\nfailback_s = 0\n"
    )
    config, dev = write_config(tmp_path, a, NO_ATTRIBUTES)
    single = f'host = "{a.host}"\nport = {a.port}\nkeepalive_s = 5\n'
    assert single in config.read_text()
    config.write_text(config.read_text().replace(single, mqtt))  # the cluster's two nodes instead of one host
    sub = Collector(b, f"edge-agent/{dev}/#", persistent=True)  # a consumer on the surviving node
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)

    def sequenced() -> dict[str, dict[str, object]]:
        docs = (json.loads(m.payload) for m in list(sub.messages) if m.payload)
        return {str(d["msg_id"]): d for d in docs if d.get("seq") is not None}

    assert sub.wait_for(lambda _m: len(sequenced()) >= 20, 60), "nothing arrived through the cluster"
    before = max(int(d["seq"]) for d in sequenced().values())
    a.stop()  # the node the agent is connected to goes away while it publishes
    assert sub.wait_for(lambda _m: max(int(d["seq"]) for d in sequenced().values()) > before + 30, 60), (
        "no new messages after node A stopped"
    )
    code, _, err = stop_agent(proc, signal.SIGTERM)
    assert code == 0, err[-3000:]
    assert f"connected to 127.0.0.1:{a.port}" in err and f"connected to 127.0.0.1:{b.port}" in err, err[-3000:]
    time.sleep(2)
    docs = sequenced()
    seqs = sorted(int(d["seq"]) for d in docs.values())
    stats = [d for d in docs.values() if str(d["schema"]).startswith("edge-agent/stats/")]
    last = max(stats, key=lambda d: int(d["seq"]))
    publish = last["publish"]
    assert isinstance(publish, dict)
    assert publish["dropped_seq"]["count"] == 0
    assert seqs[0] == publish["first_seq"], "messages from before the switch are missing"
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "a seq never reached the subscriber"
    assert seqs[-1] >= int(last["seq"])
    for topic in {m.topic for m in sub.messages}:  # per-topic order held across the switch (repeats aside)
        order = [json.loads(m.payload).get("seq") for m in sub.messages if m.topic == topic and m.payload]
        distinct = list(dict.fromkeys(x for x in order if x is not None))
        assert distinct == sorted(distinct), topic
    sub.close()
