"""Store-and-forward outbox: SQLite (WAL) queue of encoded messages, deleted only once the broker acknowledged them.

Why SQLite: a committed row survives SIGKILL at any instant (the WAL is append-only and replayed on open), so a
crash can at worst deliver a message twice (it was acked but not yet deleted), never zero times.
`synchronous=NORMAL` is the default because in WAL mode it already makes every commit durable against a process
crash; `FULL` (one fsync per commit) is only needed to survive power loss and costs flash wear on SD cards.

Sequence: a message's seq is its row id, committed with the row and `meta.seq` in one transaction, so the
numbers of accepted messages have no gaps; every number deleted without an acknowledgement goes into the drop
ledger in the same transaction. Ordering: each topic is a FIFO by seq; `take()` serves retained device-state
topics first, then the other topics round-robin. Retained state is "last value wins" (a newer retained message
replaces a queued older one, which the ledger records as superseded) and is exempt from size and age eviction.

Storage faults: a failed write never raises into the sender, never renames anything and never consumes a number.
`put()` then refuses new messages (OutboxStorageError, counted, logged once a minute) and probes again every few
seconds; acknowledgements and drops that could not be written are kept and written by `maintain()`.
"""

from __future__ import annotations

import contextlib
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
from edge_agent.publish.outbox_open import open_database, wal_cap
from edge_agent.publish.storage import (
    OutboxError,
    OutboxStorageError,
    StoreHealth,
    check_free_space,
    describe,
    disk_bytes,
    free_bytes,
)
from edge_agent.ratelog import RateLimitedLog

__all__ = ["Outbox", "OutboxError", "OutboxStorageError", "Row"]

log = logging.getLogger(__name__)

RETRY_STORE_S = 2.0  # while storage fails, put() refuses at once and tries SQLite again this often
_ROW_OVERHEAD = 96  # bytes per row beyond the payload: record header, topic, index entry (measured ~70-90)
_FIXED_OVERHEAD = 96 * 1024  # shared-memory file, database header and schema pages


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

    def __init__(self, path: Path, cfg: OutboxConfig, warnings: RateLimitedLog | None = None) -> None:
        self.path = path
        self.warnings = warnings or RateLimitedLog()
        self._lock = threading.RLock()
        self._lockfile = self._exclusive(path)
        try:
            free = check_free_space(path.parent, cfg.min_free_bytes)
            # the bounds (eviction, WAL cap, checkpoint threshold) follow the space the outbox can really get
            self.cfg = cfg.model_copy(update={"max_bytes": self._effective_max_bytes(cfg, free)})
            opened = open_database(path, self.cfg)
        except BaseException:
            self._lockfile.close()
            raise
        self._db, self._sidecar, self.ledger = opened.db, opened.sidecar, opened.ledger
        self.epoch, self.first_seq, self._seq = opened.epoch, opened.first_seq, opened.seq
        self.repaired = opened.repaired + len(opened.quarantined)
        self.max_bytes = self.cfg.max_bytes
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages").fetchone()
        self._count, self._bytes = int(row[0]), int(row[1])
        self._topics = self._topic_flags()
        self._cursor: dict[str, int] = {}  # topic -> highest id leased
        self._leased: set[int] = set()
        self._pending: dict[int, str | None] = {}  # acked (None) or dropped (reason) rows not yet deleted
        self._rr = 0
        self.dropped: Counter[str] = Counter()
        if opened.quarantined:
            self.dropped["quarantined"] += len(opened.quarantined)
        self.superseded = 0
        self.health = StoreHealth(RETRY_STORE_S)
        self._reserve(self._seq)
        if self._count:
            log.info("outbox %s holds %d message(s) (%d bytes) from a previous run", path, self._count, self._bytes)

    @staticmethod
    def _exclusive(path: Path) -> IO[bytes]:
        """One process per outbox: a second agent on the same state dir would send every row twice."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(Path(str(path) + ".lock"), "ab")  # noqa: SIM115 - held for the outbox's lifetime
        except OSError as exc:
            raise OutboxStorageError(
                f"outbox {path}: cannot create it ({exc.strerror or exc}); check agent.state_dir"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutboxError(f"outbox {path} is in use by another edge-agent process; stop it first") from None
        return handle

    def _effective_max_bytes(self, cfg: OutboxConfig, free: int) -> int:
        """max_bytes, but never more than the outbox can get: what it holds now + free space - the reserve."""
        room = disk_bytes(self.path) + free - cfg.min_free_bytes
        if room < cfg.max_bytes:
            limit = max(64 * 1024, room)
            log.warning(
                "outbox: outbox.max_bytes = %d is more than the state directory can hold; using %d",
                cfg.max_bytes,
                limit,
            )
            return limit
        return cfg.max_bytes

    def _topic_flags(self) -> dict[str, bool]:
        return {t: bool(r) for t, r in self._db.execute("SELECT topic, MAX(retain) FROM messages GROUP BY topic")}

    def _reserve(self, seq: int) -> None:
        """Keep the sidecar's reservation ahead of `seq` (one small write per 1000 numbers)."""
        mark = self._sidecar.mark
        if mark is None or mark.epoch != self.epoch or seq >= mark.reserved:
            self._sidecar.reserve(self.epoch, seq)

    # -- producer side -------------------------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """False while storage fails (put() refuses without touching SQLite until the next probe)."""
        return self.health.ok

    @property
    def storage_errors(self) -> int:
        return self.health.errors

    def put(self, topic: str, encode: Callable[[int], bytes], *, retain: bool, created: float) -> int:
        """Commit one message; `encode(seq)` builds its payload. Returns the seq. Evicts the oldest when full.

        Raises OutboxStorageError (counted as dropped `store_error`, no seq used) when it cannot be stored.
        """
        with self._lock:
            if self.health.should_refuse():
                self._refuse("still failing")
            seq = self._seq + 1
            data = encode(seq)
            try:
                self._reserve(seq)
                self._commit_put(seq, topic, data, retain, created)
            except (sqlite3.Error, OSError) as exc:
                self._rollback()
                self._storage_failed(exc)
                self._refuse(describe(exc))
            self.health.succeeded(self.path)
            self._seq = seq
            self._count += 1
            self._bytes += len(data)
            self._topics[topic] = self._topics.get(topic, False) or retain
            self._evict_over_capacity()
            return seq

    def _commit_put(self, seq: int, topic: str, data: bytes, retain: bool, created: float) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        superseded: list[tuple[int, str, int]] = []
        if retain:  # queued (not leased) older state on this topic: the broker would overwrite it anyway
            superseded = self._db.execute(
                "DELETE FROM messages WHERE topic=? AND retain=1 AND id>? RETURNING id, topic, size",
                (topic, self._cursor.get(topic, 0)),
            ).fetchall()
            self.ledger.record(self._db, [(r[0], r[1]) for r in superseded])
        self._db.execute(
            "INSERT INTO messages(id, topic, payload, retain, created, size) VALUES (?,?,?,?,?,?)",
            (seq, topic, data, int(retain), created, len(data)),
        )
        self._db.execute("UPDATE meta SET value=? WHERE key='seq'", (seq,))
        self._db.execute("COMMIT")
        self._count -= len(superseded)
        self._bytes -= sum(r[2] for r in superseded)
        self.superseded += len(superseded)

    def _refuse(self, why: str) -> None:
        self.dropped["store_error"] += 1
        self.health.refused += 1
        self.warnings.warn("store_error", log, "outbox %s: cannot store messages (%s); refusing them", self.path, why)
        raise OutboxStorageError(f"outbox {self.path}: cannot store message: {why}")

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            self.ledger.reload(self._db)

    def _storage_failed(self, exc: BaseException) -> None:
        log.debug("outbox storage error: %s", describe(exc))
        self.health.failed()

    def _evict_over_capacity(self) -> None:
        budget = max(self.max_bytes // 4, self.max_bytes - wal_cap(self.cfg) - _FIXED_OVERHEAD)
        while self._count > self.cfg.max_messages or self._bytes + self._count * _ROW_OVERHEAD > budget:
            reason = "max_messages" if self._count > self.cfg.max_messages else "max_bytes"
            need = max(1, self._count - self.cfg.max_messages) if reason == "max_messages" else 16
            if not self._evict(need, reason):
                return  # only leased or retained rows left; they leave on ack

    def _evict(self, need: int, reason: str) -> int:
        rows = self._db.execute(
            "SELECT id FROM messages WHERE retain=0 ORDER BY id LIMIT ?", (need + len(self._leased),)
        ).fetchall()
        victims = [r[0] for r in rows if r[0] not in self._leased][:need]
        if not victims:
            return 0
        try:
            return self._delete({v: reason for v in victims})
        except (sqlite3.Error, OSError) as exc:
            self._storage_failed(exc)
            self.warnings.warn("store_error", log, "outbox %s: cannot evict (%s)", self.path, describe(exc))
            return 0

    def _delete(self, ids: dict[int, str | None]) -> int:
        """Delete rows in one transaction; those with a reason are dropped (counted, in the ledger)."""
        marks = ",".join("?" * len(ids))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            gone = self._db.execute(
                f"DELETE FROM messages WHERE id IN ({marks}) RETURNING id, topic, size",
                list(ids),
            ).fetchall()
            self.ledger.record(self._db, [(r[0], r[1]) for r in gone if ids.get(r[0])])
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._count -= len(gone)
        self._bytes -= sum(r[2] for r in gone)
        for rid, _topic, _size in gone:
            reason = ids.get(rid)
            if reason:
                self.note_drop(reason)
        return len(gone)

    def note_drop(self, reason: str, n: int = 1) -> None:
        """Count dropped messages; log the first of each reason, then at most one line per minute."""
        with self._lock:
            self.dropped[reason] += n
        self.warnings.warn(
            "dropped",
            log,
            "outbox: dropping messages (%s); %d dropped for this reason so far",
            reason,
            self.dropped[reason],
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
                        # acknowledged rows whose delete is still outstanding are never offered again
                        fresh = [r for r in rows if r[0] not in self._pending]
                        self._leased.update(r[0] for r in fresh)
                        out.extend(Row(r[0], topic, bytes(r[1]), bool(r[2]), float(r[3])) for r in fresh)
        return out

    def _topic_order(self) -> list[str]:
        retained = [t for t, r in self._topics.items() if r]
        rest = [t for t, r in self._topics.items() if not r]
        if rest:
            self._rr = (self._rr + 1) % len(rest)
            rest = rest[self._rr :] + rest[: self._rr]
        return retained + rest

    def ack(self, ids: Iterable[int]) -> int:
        """Delete acknowledged rows (one transaction); if the disk refuses, they are deleted later, not resent."""
        return self._finish(dict.fromkeys(ids))

    def drop(self, row_id: int, reason: str) -> None:
        """Delete one leased row that can never be delivered (refused, oversize), counting it by reason."""
        self._finish({row_id: reason})

    def _finish(self, ids: dict[int, str | None]) -> int:
        if not ids:
            return 0
        with self._lock:
            self._pending.update(ids)
            return self._flush_pending()

    def _flush_pending(self) -> int:
        if not self._pending:
            return 0
        batch = dict(self._pending)
        try:
            done = self._delete(batch)
        except (sqlite3.Error, OSError) as exc:  # kept leased, so not sent again; maintain() retries
            self._storage_failed(exc)
            self.warnings.warn(
                "store_error", log, "outbox %s: cannot delete sent messages yet (%s)", self.path, describe(exc)
            )
            return 0
        for rid in batch:
            self._pending.pop(rid, None)
            self._leased.discard(rid)
        return done

    def release_all(self) -> None:
        """Forget all leases (the transport lost them, e.g. a new connection): the rows are offered again."""
        with self._lock:
            self._leased.clear()
            self._leased.update(self._pending)  # finished, only the delete is outstanding: never resend
            self._cursor.clear()
            self._topics = self._topic_flags()

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
                total += self._delete(dict.fromkeys(victims, "ttl"))

    def maintain(self) -> None:
        """Periodic upkeep (sender thread): pending deletes, TTL, WAL checkpoint, free pages, the on-disk bound."""
        with self._lock:
            self._flush_pending()
            try:
                self.purge_expired()
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.execute("PRAGMA incremental_vacuum(256)").fetchall()
            except (sqlite3.Error, OSError) as exc:
                self._storage_failed(exc)
                self.warnings.warn("store_error", log, "outbox %s: upkeep failed (%s)", self.path, describe(exc))
                return
            if not self.health.ok and free_bytes(self.path.parent) > self.cfg.min_free_bytes:
                self.health.probe_now()  # space is back: the next put() tries at once
            while disk_bytes(self.path) > self.max_bytes and self._evict(64, "max_bytes"):
                self._db.execute("PRAGMA incremental_vacuum(256)").fetchall()

    # -- introspection -------------------------------------------------------------------------------------------

    def dropped_snapshot(self) -> dict[str, int]:
        """A copy of the drop counters, safe to take while other threads drop messages."""
        with self._lock:
            return dict(self.dropped)

    @property
    def depth(self) -> int:
        """Messages queued, including leased (in flight) ones."""
        return self._count

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def disk_bytes(self) -> int:
        return disk_bytes(self.path)

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
            except sqlite3.Error:  # closed, or the disk fails reads
                return None
        return None if row[0] is None else float(row[0])

    def close(self) -> None:
        """Write what is pending, checkpoint the WAL into the main file and close."""
        with self._lock:
            self._flush_pending()
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.debug("outbox checkpoint failed: %s", exc)
            self._db.close()
            self._lockfile.close()  # releases the flock
