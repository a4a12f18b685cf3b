"""Outbox figures: replay rate after a reconnect, and messages lost in a broker outage at 10 msg/s.

    python -m benchmarks.outbox_bench                       # 5000-message replay + 10-minute outage run
    python -m benchmarks.outbox_bench --run-s 60 --outage-s 30 --backlog 2000   # shortened

Both runs use a real mosquitto (with persistence, so the persistent-session subscriber keeps its queue across
the broker restart) and the real Publisher with its SQLite outbox. Prints a JSON summary; exit 0 ok, 1 failure,
2 usage error (e.g. mosquitto missing).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edge_agent.procstats import peak_rss_mb
from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.mqtt import Publisher
from tests.fixtures.broker import Broker, Collector, _find_mosquitto, _mosquitto_conf, free_port

DEVICE = "bench"
log = logging.getLogger("benchmarks.outbox")


def _broker(workdir: Path) -> Broker:
    workdir.mkdir(parents=True, exist_ok=True)
    b = Broker(workdir=workdir, port=free_port(), kind="mosquitto", conf=workdir / "broker.conf")
    b.conf.write_text(_mosquitto_conf(b, persistence=True, listener="allow_anonymous true", extra="log_type error"))
    b.start()
    return b


def _payload(i: int) -> dict[str, Any]:
    # about the size of a track `end` record
    return {
        "uptime_s": float(i),
        "interval_s": 1.0,
        "publish": {"connected": False, "queue_depth": i, "dropped": {}},
        "cameras": {"cam1": {"capture_fps": 30.0, "processed_fps": 29.5, "frames_captured": i}},
    }


def _wait(pred: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return False


def replay(tmp: Path, backlog: int, window: int) -> dict[str, Any]:
    """Queue `backlog` messages with the broker down, start it, time until every one is acknowledged."""
    b = _broker(tmp / "replay-broker")
    sub = Collector(b, f"edge-agent/{DEVICE}/stats", persistent=True)
    b.stop()
    cfg = MqttConfig(host=b.host, port=b.port, reconnect_min_s=0.05, reconnect_max_s=0.1, inflight_window=window)
    pub = Publisher(cfg, OutboxConfig(), DEVICE, tmp / "replay-state")
    pub.start()
    t0 = time.monotonic()
    for i in range(backlog):
        pub.submit("stats", _payload(i), schema="edge-agent/stats/1")
    submit_rate = backlog / (time.monotonic() - t0)
    b.start()
    if not _wait(lambda: pub.connected, 30):
        raise RuntimeError("publisher did not reconnect")
    t1 = time.monotonic()
    ok = _wait(lambda: pub.stats()["queue_depth"] == 0, 300)
    replay_s = time.monotonic() - t1
    _wait(lambda: len(sub.messages) >= backlog, 30)
    received = len({m.json()["msg_id"] for m in sub.messages})
    pub.close(2)
    sub.close()
    b.stop()
    return {
        "backlog": backlog,
        "inflight_window": window,
        "drained": ok,
        "replay_s": round(replay_s, 3),
        "replay_msg_per_s": round(backlog / replay_s, 1),
        "submit_msg_per_s": round(submit_rate, 1),
        "received_unique": received,
    }


def outage(tmp: Path, run_s: float, outage_s: float, rate: float) -> dict[str, Any]:
    """Submit at `rate` msg/s for `run_s`; the broker is down for `outage_s` in the middle. Count what never arrives."""
    b = _broker(tmp / "outage-broker")
    sub = Collector(b, f"edge-agent/{DEVICE}/stats", persistent=True)
    cfg = MqttConfig(host=b.host, port=b.port, reconnect_min_s=0.5, reconnect_max_s=5.0)
    pub = Publisher(cfg, OutboxConfig(), DEVICE, tmp / "outage-state")
    pub.start()
    _wait(lambda: pub.connected, 10)
    accepted: list[str] = []
    down_at, up_at = (run_s - outage_s) / 2, (run_s + outage_s) / 2
    t0 = time.monotonic()
    peak_depth, i = 0, 0
    while (now := time.monotonic() - t0) < run_s:
        if b.running and down_at <= now < up_at:
            b.stop()
            log.info("broker stopped at t=%.1fs", now)
        elif not b.running and now >= up_at:
            b.start()
            log.info("broker restarted at t=%.1fs", now)
        accepted.append(pub.submit("stats", _payload(i), schema="edge-agent/stats/1"))
        peak_depth = max(peak_depth, pub.stats()["queue_depth"])
        i += 1
        time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
    if not b.running:
        b.start()
    _wait(lambda: pub.stats()["queue_depth"] == 0, 120)
    want = set(accepted)
    _wait(lambda: want <= {m.json()["msg_id"] for m in sub.messages}, 60)
    got = [m.json()["msg_id"] for m in sub.messages]
    st = pub.stats()
    pub.close(2)
    sub.close()
    b.stop()
    return {
        "run_s": run_s,
        "outage_s": outage_s,
        "rate_msg_per_s": rate,
        "accepted": len(accepted),
        "lost": len(want - set(got)),
        "duplicates": len(got) - len(set(got)),
        "peak_queue_depth": peak_depth,
        "dropped": st["dropped"],
        "reconnects": st["reconnects"],
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backlog", type=int, default=5000, help="messages queued before the replay (default 5000)")
    ap.add_argument("--window", type=int, default=100, help="in-flight window (default 100, the config default)")
    ap.add_argument("--run-s", type=float, default=600.0, help="outage run length in seconds (default 600)")
    ap.add_argument("--outage-s", type=float, default=300.0, help="broker down time in the middle (default 300)")
    ap.add_argument("--rate", type=float, default=10.0, help="messages per second in the outage run (default 10)")
    ap.add_argument("--skip-outage", action="store_true", help="only measure the replay rate")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if _find_mosquitto() is None:
        print("outbox_bench: mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2
    if args.outage_s >= args.run_s:
        print("outbox_bench: --outage-s must be shorter than --run-s", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="outbox-bench-") as d:
        result: dict[str, Any] = {"replay": replay(Path(d), args.backlog, args.window)}
        print(json.dumps(result["replay"]), flush=True)
        if not args.skip_outage:
            result["outage"] = outage(Path(d), args.run_s, args.outage_s, args.rate)
            print(json.dumps(result["outage"]), flush=True)
    ok = result["replay"]["drained"] and result.get("outage", {}).get("lost", 0) == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
