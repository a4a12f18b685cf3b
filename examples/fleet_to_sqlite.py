"""Store every interval summary of a fleet in SQLite, with loss reports (edge_agent.client example).

    python examples/fleet_to_sqlite.py --host broker --db fleet.sqlite3            # follow the whole fleet
    python examples/fleet_to_sqlite.py --db fleet.sqlite3 --query                  # viewers per device and hour

A fixed client id and a persistent session mean the broker queues summaries while this process is down; the
state file keeps de-duplication and gap accounting across its restarts, and `msg_id` as the primary key makes
every insert idempotent anyway. Several processes can split a big fleet: give each the same `--share` group
(MQTT v5 shared subscription) or a slice of the device ids (`--device` repeated); see docs/client.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
import time
from pathlib import Path

from edge_agent.client import AgentClient, ClientConfig, Delivery, SeqRange, Summary

SCHEMA = """
CREATE TABLE IF NOT EXISTS summaries (
    msg_id               TEXT PRIMARY KEY,   -- de-duplicates redeliveries, whatever happens upstream
    device_id            TEXT NOT NULL,
    camera_id            TEXT NOT NULL,
    interval_start       TEXT NOT NULL,      -- UTC ISO-8601
    interval_end         TEXT NOT NULL,
    interval_s           REAL NOT NULL,
    partial              INTEGER NOT NULL,   -- 1: the agent ran for only part of the interval
    opportunities_to_see INTEGER NOT NULL,
    viewers              INTEGER NOT NULL,
    passers_by           INTEGER NOT NULL,
    dwell_avg_s          REAL NOT NULL,
    attention_avg_s      REAL NOT NULL,
    epoch                INTEGER,
    seq                  INTEGER,
    buffered             INTEGER NOT NULL,   -- 1: replayed from the device's outbox after an outage
    received_at          REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS summaries_device_time ON summaries (device_id, interval_start);
CREATE TABLE IF NOT EXISTS summary_groups (
    msg_id     TEXT NOT NULL REFERENCES summaries (msg_id),
    head       TEXT NOT NULL,                -- age, gender, race (only the heads enabled on the device)
    label      TEXT NOT NULL,
    viewers    INTEGER NOT NULL,
    passers_by INTEGER NOT NULL,
    PRIMARY KEY (msg_id, head, label)
);
CREATE TABLE IF NOT EXISTS losses (            -- seq ranges that never arrived and the device did not drop
    device_id  TEXT NOT NULL,
    epoch      INTEGER,
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    noticed_at REAL NOT NULL
);
"""

QUERY = """
SELECT device_id,
       substr(interval_start, 1, 13) || ':00Z' AS hour,
       SUM(viewers)                            AS viewers,
       SUM(passers_by)                         AS passers_by,
       ROUND(SUM(dwell_avg_s * (viewers + passers_by)) / MAX(SUM(viewers + passers_by), 1), 1) AS avg_dwell_s
FROM summaries
GROUP BY device_id, hour
ORDER BY device_id, hour
"""


class Store:
    """One SQLite connection, used from the client's callback thread (the lock keeps the query path safe too)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def summary(self, delivery: Delivery) -> None:
        s = delivery.record
        if not isinstance(s, Summary):
            return
        m = s.meta
        with self._lock, self.db:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO summaries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (m.msg_id, m.device_id, m.camera_id, s.raw["interval_start"], s.raw["interval_end"], s.interval_s,
                 int(s.partial), s.opportunities_to_see, s.viewers, s.passers_by, s.dwell_avg_s, s.attention_avg_s,
                 m.epoch, m.seq, int(m.buffered), time.time()),
            )  # fmt: skip
            if cur.rowcount:
                self.db.executemany(
                    "INSERT OR IGNORE INTO summary_groups VALUES (?,?,?,?,?)",
                    [(m.msg_id, head, label, v, p) for head, g in s.groups.items() for label, (v, p) in g.items()],
                )

    def loss(self, rng: SeqRange) -> None:
        with self._lock, self.db:
            self.db.execute("INSERT INTO losses VALUES (?,?,?,?,?)",
                            (rng.device_id, rng.epoch, rng.first, rng.last, time.time()))  # fmt: skip

    def report(self) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self.db.execute(QUERY))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--device", action="append", help="follow only these device ids (default: all)")
    ap.add_argument("--client-id", default="fleet-to-sqlite")
    ap.add_argument("--share", default=None, help="MQTT v5 shared-subscription group, to split the fleet")
    ap.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--query", action="store_true", help="print viewers per device and hour, and exit")
    args = ap.parse_args(argv)
    store = Store(args.db)
    if args.query:
        print("device_id\thour\tviewers\tpassers_by\tavg_dwell_s")
        for row in store.report():
            print("\t".join(str(v) for v in row))
        return 0
    cfg = ClientConfig(client_id=args.client_id, host=args.host, port=args.port,
                       devices=tuple(args.device or ["+"]), share_group=args.share,
                       state_file=args.db.with_suffix(".client-state.json"))  # fmt: skip
    client = AgentClient(cfg).on(Summary, store.summary).on("loss", store.loss)
    client.start()
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
