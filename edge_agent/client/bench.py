"""`python -m edge_agent.client.bench`: how many messages a second one Consumer parses, validates and orders.

Feeds real-shaped `cameras/<id>/audience` messages of many devices, in seq order with a few shuffled, through
`Consumer.handle` on one thread (no broker: this is the client's own cost). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid

from edge_agent.client.core import Consumer


def message(device: str, seq: int) -> tuple[str, bytes]:
    doc = {
        "schema": "edge-agent/audience/1",
        "msg_id": str(uuid.uuid4()),
        "seq": seq,
        "epoch": 1_700_000_000_000,
        "ts": "2026-12-01T10:00:00.000Z",
        "device_id": device,
        "camera_id": "cam0",
        "t": "2026-12-01T10:00:00.000Z",
        "count": 2,
        "looking_count": 1,
        "minors": 0,
        "present": [],
        "looking": ["0123456789abcdef"],
        "dominant": {"gender": "female", "age": "30-39"},
    }
    return f"edge-agent/{device}/cameras/cam0/audience", json.dumps(doc).encode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--per-device", type=int, default=100)
    args = ap.parse_args(argv)
    rng = random.Random(1)
    msgs = [message(f"sign-{d:04d}", s) for s in range(1, args.per_device + 1) for d in range(args.devices)]
    for i in range(0, len(msgs) - 1, 50):  # a little disorder, as after a reconnect
        j = min(len(msgs) - 1, i + rng.randrange(1, 5))
        msgs[i], msgs[j] = msgs[j], msgs[i]
    consumer = Consumer(hold_s=0.5, loss_after_s=90.0)
    delivered = [0]
    consumer.on("any", lambda _d: delivered.__setitem__(0, delivered[0] + 1))
    t0 = time.perf_counter()
    for topic, payload in msgs:
        consumer.handle(topic, payload, retained=False, now=time.monotonic())
    consumer.tick(time.monotonic() + 1.0)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"messages": len(msgs), "devices": args.devices, "delivered": delivered[0],
                      "seconds": round(elapsed, 2), "msg_per_s": round(len(msgs) / elapsed),
                      "us_per_msg": round(1e6 * elapsed / len(msgs), 1), "lost": consumer.counts["lost"]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
