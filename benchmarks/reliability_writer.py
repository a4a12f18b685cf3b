"""The publisher process the reliability benchmark kills, restarts and starves of disk (run as a subprocess).

`python -m benchmarks.reliability_writer --host H --port P --state DIR [--rate R]` submits to three topics
round-robin at R messages/s and prints one line per submit on stdout:
  `A <msg_id> <topic>` accepted (committed to the outbox), `R <topic>` refused (storage error, no seq).
On SIGTERM it closes the publisher cleanly and prints `S <json>`: its final `stats.publish`.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.mqtt import Publisher
from edge_agent.publish.storage import OutboxStorageError

DEVICE = "rel-dev"
TOPICS = (
    ("cameras/cam0/tracks", "edge-agent/cmd_result/1"),
    ("cameras/cam0/audience", "edge-agent/cmd_result/1"),
    ("stats", "edge-agent/cmd_result/1"),
)


def payload(i: int) -> dict[str, object]:
    """A small valid cmd_result body (the schema does not matter to the outbox; the size does, a little)."""
    return {"command": "bench", "request_id": str(i), "ok": True, "result": {"i": i, "pad": "x" * 120}, "error": None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--rate", type=float, default=60.0)
    ap.add_argument("--min-free-bytes", type=int, default=64 * 1024)
    ap.add_argument("--max-bytes", type=int, default=64 * 1024 * 1024)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="writer: %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    mqtt = MqttConfig(host=args.host, port=args.port, reconnect_min_s=0.1, reconnect_max_s=0.5, keepalive_s=5)
    outbox = OutboxConfig(min_free_bytes=args.min_free_bytes, max_bytes=args.max_bytes)
    pub = Publisher(mqtt, outbox, DEVICE, args.state)
    pub.start()
    print("READY", flush=True)
    period, i, nxt = 1.0 / args.rate, 0, time.monotonic()
    while not stop.is_set():
        suffix, schema = TOPICS[i % len(TOPICS)]
        try:
            msg_id = pub.submit(suffix, payload(i), schema=schema)
            print(f"A {msg_id} {suffix}", flush=True)
        except OutboxStorageError:
            print(f"R {suffix}", flush=True)
        i += 1
        nxt += period
        stop.wait(max(0.0, nxt - time.monotonic()))
    pub.close(5.0)
    print("S " + json.dumps(pub.stats()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
