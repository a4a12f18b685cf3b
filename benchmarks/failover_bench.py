"""`python -m benchmarks.failover_bench`: what a broker switch costs the publisher (`mqtt.hosts`).

Two mosquitto brokers on loopback, a persistent-session subscriber on each, and the real Publisher sending
`--rate` messages a second to `mqtt.hosts = [A, B]` with `failback_s`. Broker A is stopped in the middle of the
run and started again later. Prints one JSON line: how long after A stopped the first message reached B (the
switch), how long after A came back the first message reached A again (the failback), and accepted / received
/ lost / duplicate counts. Needs mosquitto; bounded in time, loopback only.
"""

from __future__ import annotations

import argparse
import getpass
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.mqtt import Publisher

DEVICE = "bench-failover"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        home = workdir / f"broker-{self.port}"
        home.mkdir()
        self.conf = home / "mosquitto.conf"
        # persistence_location must be a directory: the subscribers' sessions survive the broker's restart
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
            f"persistence true\npersistence_location {home}/\nmax_queued_messages 0\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Subscriber:
    """Persistent session, so messages that reach a broker while we reconnect are not missed."""

    def __init__(self, port: int) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, _u, flags, _rc, _p: (
            None if flags.session_present else c.subscribe(f"edge-agent/{DEVICE}/#", qos=1)
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        doc = json.loads(msg.payload) if msg.payload else {}
        if doc.get("seq") is not None:
            with self._lock:
                self.arrivals.append((time.monotonic(), doc))

    def first_after(self, t: float) -> float | None:
        with self._lock:
            return next((a for a, _ in self.arrivals if a >= t), None)


def run(rate: float, before_s: float, outage_s: float, after_s: float, failback_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        a, b = Mosquitto(work), Mosquitto(work)
        a.start()
        b.start()
        subs = [Subscriber(a.port), Subscriber(b.port)]
        cfg = MqttConfig(hosts=[f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"], failback_s=failback_s,
                         keepalive_s=5, reconnect_min_s=0.2, reconnect_max_s=2.0)  # fmt: skip
        pub = Publisher(cfg, OutboxConfig(), DEVICE, work / "state")
        pub.start()
        t_stop = t_back = 0.0
        accepted = 0
        t0 = time.monotonic()
        phases = [(before_s, None), (outage_s, "stop"), (after_s, "start")]
        try:
            for length, action in phases:
                if action == "stop":
                    a.stop()
                    t_stop = time.monotonic()
                elif action == "start":
                    a.start()
                    t_back = time.monotonic()
                end = time.monotonic() + length
                while time.monotonic() < end:
                    pub.submit("stats", {"uptime_s": time.monotonic() - t0, "interval_s": 1.0,
                                         "publish": {"connected": True, "queue_depth": 0, "dropped": {}}},
                               schema="edge-agent/stats/1")  # fmt: skip
                    accepted += 1
                    time.sleep(1.0 / rate)
            time.sleep(3.0)
        finally:
            final = pub.stats()
            pub.close(3.0)
            for s in subs:
                s.client.disconnect()
                s.client.loop_stop()
            a.stop()
            b.stop()
        docs = [d for s in subs for _, d in s.arrivals]
        unique = {d["msg_id"] for d in docs}
        seqs = {int(d["seq"]) for d in docs}
        missing = sorted(set(range(min(seqs), max(seqs) + 1)) - seqs) if seqs else []
        switch = subs[1].first_after(t_stop)
        back = subs[0].first_after(t_back)
        return {
            "rate_msg_per_s": rate, "accepted": accepted, "received_unique": len(unique),
            "duplicates": len(docs) - len(unique), "lost": accepted - len(unique), "missing_seq": missing[:10],
            "last_seq_received": max(seqs, default=None), "t_stop_rel": round(t_stop - t0, 2),
            "switch_s": None if switch is None else round(switch - t_stop, 2),
            "publisher_dropped": final.get("dropped"), "publisher_queue_depth": final.get("queue_depth"),
            "failback_s_setting": failback_s, "failback_after_s": None if back is None else round(back - t_back, 2),
        }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--before-s", type=float, default=5.0)
    ap.add_argument("--outage-s", type=float, default=10.0)
    ap.add_argument("--after-s", type=float, default=15.0)
    ap.add_argument("--failback-s", type=float, default=5.0)
    args = ap.parse_args(argv)
    print(json.dumps(run(args.rate, args.before_s, args.outage_s, args.after_s, args.failback_s)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
