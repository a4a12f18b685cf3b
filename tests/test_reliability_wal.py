"""The outbox keeps its WAL and its whole footprint bounded on a small state directory during a 5-minute run.

A 3 MiB tmpfs, a broker that is up, 40 messages a second flowing through the outbox (insert + delete each): the
situation in which the WAL used to grow from 0.5 to 1.8 MB in 40 s and fill the disk. Sampled twice a second.
`EDGE_AGENT_WAL_TEST_S` sets the length. The suite runs 60 s, to keep CI inside its 20-minute budget;
`EDGE_AGENT_WAL_TEST_S=300 pytest -s tests/test_reliability_wal.py` is the 5-minute run recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.mqtt import Publisher
from edge_agent.publish.outbox_open import wal_cap
from edge_agent.publish.storage import free_bytes
from tests.fixtures.broker import Broker, Collector

pytestmark = pytest.mark.slow
DURATION_S = float(os.environ.get("EDGE_AGENT_WAL_TEST_S", "60"))
RATE = 40.0
BODY = {"command": "x", "request_id": None, "ok": True, "result": {"pad": "w" * 300}, "error": None}


@pytest.mark.timeout(DURATION_S + 120)
def test_wal_and_outbox_stay_within_their_bounds_for_five_minutes(broker: Broker, tmpfs) -> None:
    state = tmpfs("3m") / "state"
    cfg = MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5)
    pub = Publisher(cfg, OutboxConfig(min_free_bytes=256 * 1024), "dev-wal", state)
    sub = Collector(broker, "edge-agent/dev-wal/#")
    wal = Path(state / "outbox.sqlite3-wal")
    limit = pub._outbox.max_bytes  # capped to what the 3 MiB can hold
    cap = wal_cap(pub._outbox.cfg)
    peak_wal = peak_disk = 0
    low_free = free_bytes(state)
    sent = 0
    try:
        pub.start()
        t0 = next_sample = time.monotonic()
        while time.monotonic() - t0 < DURATION_S:
            pub.submit("cmd/x/result", BODY, schema="edge-agent/cmd_result/1")
            sent += 1
            if time.monotonic() >= next_sample:
                next_sample += 0.5
                peak_wal = max(peak_wal, wal.stat().st_size if wal.exists() else 0)
                peak_disk = max(peak_disk, pub.stats()["disk_bytes"])
                low_free = min(low_free, free_bytes(state))
            time.sleep(1.0 / RATE)
        assert sub.wait_for(lambda m: len(m) >= sent, 30)
        stats = pub.stats()
    finally:
        pub.close(1.0)
    print(f"wal peak {peak_wal} (cap {cap}), outbox peak {peak_disk} (limit {limit}), lowest free {low_free}")
    assert limit < 3 * 1024 * 1024 and sent >= RATE * DURATION_S * 0.8
    assert peak_wal <= cap * 1.25, (peak_wal, cap)  # one transaction past the checkpoint threshold at most
    assert peak_disk <= limit, (peak_disk, limit)
    assert low_free > 0 and stats["storage_errors"] == 0 and stats["dropped"] == {}
