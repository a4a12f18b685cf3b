"""Store-and-forward outbox: SQLite (WAL) queue of encoded messages, deleted only once the broker acknowledged them.

Why SQLite: a committed row survives SIGKILL at any instant (the WAL is append-only and replayed on open), so a
crash can at worst deliver a message twice (it was acked but not yet deleted), never zero times.
`synchronous=NORMAL` is the default because in WAL mode it already makes every commit durable against a process
crash; `FULL` (one fsync per commit) is only needed to survive power loss and costs flash wear on SD cards.

Ordering: each topic is a FIFO by `seq` (= row id). `take()` serves retained device-state topics first, then the
other topics round-robin, so a long backlog on one topic never starves live messages on the others.
Retained state (status/info/camera status) is "last value wins": a newer retained message on the same topic
replaces a queued older one (it would be overwritten at the broker anyway), and retained rows are exempt from
size and age eviction, so the current device state is always delivered first after an outage.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edge_agent.publish.config import OutboxConfig

log = logging.getLogger(__name__)

_DROP_LOG_EVERY_S = 60.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,          -- = envelope seq
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL,           -- wall-clock seconds, for the TTL and the `buffered` decision
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_topic ON messages(topic, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('seq', 0);
"""


class OutboxError(RuntimeError):
    """The outbox cannot store a message (disk full, read-only state directory, ...)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One queued message, as handed to the sender."""

    id: int
    topic: str
    payload: bytes
    retain: bool
    created: float


class Outbox:
    """Thread-safe persistent queue. Rows handed out by `take()` are leased until `ack()`/`drop()`."""

    def __init__(self, path: Path, cfg: OutboxConfig) -> None:
        self.path = path
        self.cfg = cfg
        self._lock = threading.Lock()
        self._lockfile = self._exclusive(path)
        self._db = self._open(path)
        self._seq = int(self._db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(MAX(id), 0) FROM messages").fetchone()
        self._count, self._bytes = int(row[0]), int(row[1])
        self._seq = max(self._seq, int(row[2]))  # belt and braces: seq never goes backwards
        self._topics: dict[str, bool] = {
            t: bool(r) for t, r in self._db.execute("SELECT topic, MAX(retain) FROM messages GROUP BY topic")
        }
        self._cursor: dict[str, int] = {}  # topic -> highest id leased
        self._leased: set[int] = set()
        self._rr = 0
        self.dropped: Counter[str] = Counter()
        self._count_lock = threading.Lock()  # note_drop runs with and without self._lock held
        self._last_drop_log: dict[str, float] = {}
        self.superseded = 0
        if self._count:
            log.info("outbox %s holds %d message(s) (%d bytes) from a previous run", path, self._count, self._bytes)

    @staticmethod
    def _exclusive(path: Path) -> IO[bytes]:
        """One process per outbox: a second agent on the same state dir would send every row twice."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(Path(str(path) + ".lock"), "ab")  # noqa: SIM115 - held for the outbox's lifetime
        except OSError as exc:
            raise OutboxError(
                f"outbox {path}: cannot create it ({exc.strerror or exc}); check agent.state_dir"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutboxError(f"outbox {path} is in use by another edge-agent process; stop it first") from None
        return handle

    def _open(self, path: Path) -> sqlite3.Connection:
        try:
            return self._connect(path)
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            log.error("outbox %s is unreadable (%s); moved aside to %s and starting empty", path, exc, aside)
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(path) + suffix)
                if src.exists():
                    src.rename(Path(str(aside) + suffix))
            return self._connect(path)

    def _connect(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"outbox {path}: SQLite refused WAL mode (got {mode})")
            db.execute(f"PRAGMA synchronous={self.cfg.synchronous.upper()}")
            db.executescript(_SCHEMA)
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    # -- producer side -------------------------------------------------------------------------------------------

    def next_seq(self) -> int:
        """Allocate a seq for a message that bypasses the queue (status online/offline, Last Will)."""
        with self._lock:
            self._seq += 1
            self._db.execute("UPDATE meta SET value=? WHERE key='seq'", (self._seq,))
            return self._seq

    def put(self, topic: str, encode: Callable[[int], bytes], *, retain: bool, created: float) -> int:
        """Commit one message; `encode(seq)` builds its payload. Returns the seq. Evicts the oldest when full."""
        with self._lock:
            seq = self._seq + 1
            data = encode(seq)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                if retain:
                    self._supersede(topic)
                self._db.execute(
                    "INSERT INTO messages(id, topic, payload, retain, created, size) VALUES (?,?,?,?,?,?)",
                    (seq, topic, data, int(retain), created, len(data)),
                )
                self._db.execute("UPDATE meta SET value=? WHERE key='seq'", (seq,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self.note_drop("store_error")
                raise OutboxError(f"outbox {self.path}: cannot store message: {exc}") from None
            self._seq = seq
            self._count += 1
            self._bytes += len(data)
            self._topics[topic] = self._topics.get(topic, False) or retain
            self._evict_over_capacity()
            return seq

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _supersede(self, topic: str) -> None:
        """Delete queued (not leased) retained rows of `topic`: a newer state replaces them."""
        cur = self._db.execute(
            "DELETE FROM messages WHERE topic=? AND retain=1 AND id>? RETURNING size",
            (topic, self._cursor.get(topic, 0)),
        )
        sizes = [r[0] for r in cur.fetchall()]
        self._count -= len(sizes)
        self._bytes -= sum(sizes)
        self.superseded += len(sizes)

    def _evict_over_capacity(self) -> None:
        while self._count > self.cfg.max_messages or self._bytes > self.cfg.max_bytes:
            reason = "max_messages" if self._count > self.cfg.max_messages else "max_bytes"
            need = max(1, self._count - self.cfg.max_messages) if reason == "max_messages" else 16
            rows = self._db.execute(
                "SELECT id FROM messages WHERE retain=0 ORDER BY id LIMIT ?", (need + len(self._leased),)
            ).fetchall()
            victims = [r[0] for r in rows if r[0] not in self._leased][:need]
            if not victims:
                return  # only leased or retained rows left; they leave on ack
            self._delete(victims, reason)

    def _delete(self, ids: list[int], reason: str | None) -> int:
        """Delete rows by id (autocommit), keep counters exact; `reason` counts them as dropped."""
        marks = ",".join("?" * len(ids))
        sizes = [r[0] for r in self._db.execute(f"DELETE FROM messages WHERE id IN ({marks}) RETURNING size", ids)]
        self._count -= len(sizes)
        self._bytes -= sum(sizes)
        if reason and sizes:
            self.note_drop(reason, len(sizes))
        return len(sizes)

    def note_drop(self, reason: str, n: int = 1) -> None:
        """Count dropped messages; log the first of each reason, then at most one summary per minute."""
        with self._count_lock:
            self.dropped[reason] += n
        now = time.monotonic()
        if now - self._last_drop_log.get(reason, -1e9) >= _DROP_LOG_EVERY_S:
            self._last_drop_log[reason] = now
            log.warning(
                "outbox: dropping messages (%s); %d dropped for this reason so far", reason, self.dropped[reason]
            )

    # -- sender side ---------------------------------------------------------------------------------------------

    def take(self, limit: int) -> list[Row]:
        """Lease up to `limit` rows: retained topics first, then one fair share per topic, FIFO within a topic."""
        out: list[Row] = []
        with self._lock:
            while len(out) < limit and self._topics:
                order = self._topic_order()
                share = max(1, (limit - len(out)) // len(order))
                for topic in order:
                    want = min(share, limit - len(out))
                    if want <= 0:
                        break
                    rows = self._db.execute(
                        "SELECT id, payload, retain, created FROM messages WHERE topic=? AND id>? ORDER BY id LIMIT ?",
                        (topic, self._cursor.get(topic, 0), want),
                    ).fetchall()
                    if len(rows) < want:
                        del self._topics[topic]  # drained for now; put() re-adds it
                    if rows:
                        self._cursor[topic] = rows[-1][0]
                        self._leased.update(r[0] for r in rows)
                        out.extend(Row(r[0], topic, bytes(r[1]), bool(r[2]), r[3]) for r in rows)
        return out

    def _topic_order(self) -> list[str]:
        retained = [t for t, r in self._topics.items() if r]
        rest = [t for t, r in self._topics.items() if not r]
        if rest:
            self._rr = (self._rr + 1) % len(rest)
            rest = rest[self._rr :] + rest[: self._rr]
        return retained + rest

    def ack(self, ids: Iterable[int]) -> int:
        """Delete acknowledged rows (one transaction for the whole batch)."""
        ids = list(ids)
        if not ids:
            return 0
        with self._lock:
            self._leased.difference_update(ids)
            return self._delete(ids, None)

    def drop(self, row_id: int, reason: str) -> None:
        """Delete one leased row that can never be delivered (refused, oversize), counting it by reason."""
        with self._lock:
            self._leased.discard(row_id)
            self._delete([row_id], reason)

    def release_all(self) -> None:
        """Forget all leases (the transport lost them, e.g. a new client): the rows are offered again."""
        with self._lock:
            self._leased.clear()
            self._cursor.clear()
            self._topics = {
                t: bool(r) for t, r in self._db.execute("SELECT topic, MAX(retain) FROM messages GROUP BY topic")
            }

    def purge_expired(self, now: float | None = None) -> int:
        """Drop non-retained, non-leased rows older than the TTL; returns how many."""
        cutoff = (time.time() if now is None else now) - self.cfg.ttl_s
        total = 0
        with self._lock:
            while True:
                rows = self._db.execute(
                    "SELECT id FROM messages WHERE retain=0 AND created<? ORDER BY id LIMIT 500", (cutoff,)
                ).fetchall()
                victims = [r[0] for r in rows if r[0] not in self._leased]
                if not victims:
                    return total
                total += self._delete(victims, "ttl")

    # -- introspection -------------------------------------------------------------------------------------------

    def dropped_snapshot(self) -> dict[str, int]:
        """A copy of the drop counters, safe to take while other threads drop messages."""
        with self._count_lock:
            return dict(self.dropped)

    @property
    def depth(self) -> int:
        """Messages queued, including leased (in flight) ones."""
        return self._count

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def inflight(self) -> int:
        return len(self._leased)

    @property
    def last_seq(self) -> int:
        return self._seq

    def oldest_created(self) -> float | None:
        """Creation time of the oldest queued non-retained message (None when empty or closed)."""
        with self._lock:
            try:
                row = self._db.execute("SELECT MIN(created) FROM messages WHERE retain=0").fetchone()
            except sqlite3.ProgrammingError:  # closed
                return None
        return None if row[0] is None else float(row[0])

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.debug("outbox checkpoint failed: %s", exc)
            self._db.close()
            self._lockfile.close()  # releases the flock
