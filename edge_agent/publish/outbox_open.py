"""Opening the outbox database: detect damage (header + integrity check), salvage, repair values, set the epoch.

The rules (docs/mqtt.md, "Storage faults"): a storage error at open raises OutboxStorageError and leaves every
file as it is; only a file that fails the header or integrity check is moved aside, after its readable rows were
copied into the fresh database; valid SQL with wrong values is repaired or quarantined row by row. Any start that
cannot continue the previous sequence from the database begins a new epoch above every number ever reserved.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.publish.config import OutboxConfig
from edge_agent.publish.ledger import LEDGER_SCHEMA, DropLedger
from edge_agent.publish.storage import (
    OutboxError,
    OutboxStorageError,
    Salvage,
    Sidecar,
    describe,
    header_ok,
    is_storage_error,
    move_aside,
    new_epoch,
    salvage,
)

log = logging.getLogger(__name__)

SCHEMA = (
    """
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
"""
    + LEDGER_SCHEMA
)
_BAD_ROWS = """
SELECT id, topic, payload, retain, created FROM messages
WHERE typeof(topic) != 'text' OR typeof(payload) != 'blob' OR typeof(retain) != 'integer'
   OR typeof(created) NOT IN ('real', 'integer') OR typeof(size) != 'integer' OR size != length(payload)
"""


@dataclass
class Opened:
    """A usable database plus what opening it found."""

    db: sqlite3.Connection
    sidecar: Sidecar
    ledger: DropLedger
    epoch: int
    first_seq: int
    seq: int
    repaired: int = 0
    quarantined: list[tuple[int, str]] = field(default_factory=list)
    reset_reason: str | None = None


def wal_cap(cfg: OutboxConfig) -> int:
    """The most bytes the WAL may hold: an eighth of max_bytes, 32 KiB to 1 MiB (checkpoints keep it there)."""
    return max(32 * 1024, min(1024 * 1024, cfg.max_bytes // 8))


def autocheckpoint_pages(cfg: OutboxConfig) -> int:
    """SQLite's automatic checkpoint threshold in 4 KiB pages, so the WAL stays within `wal_cap` between ticks."""
    return max(8, wal_cap(cfg) // 4096 // 2)


def connect(path: Path, cfg: OutboxConfig) -> sqlite3.Connection:
    """Open (or create) the database with WAL, the configured durability and a bounded journal."""
    fresh = not path.exists() or path.stat().st_size == 0
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        if fresh:  # only possible before the first table exists; gives freed pages back to the file system
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutboxError(f"outbox {path}: SQLite refused WAL mode (got {mode})")
        db.execute(f"PRAGMA synchronous={cfg.synchronous.upper()}")
        db.execute(f"PRAGMA journal_size_limit={wal_cap(cfg)}")
        db.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint_pages(cfg)}")
        check = db.execute("PRAGMA integrity_check(20)").fetchall()
        if [tuple(r) for r in check] != [("ok",)]:
            raise sqlite3.DatabaseError("integrity check failed: " + "; ".join(str(r[0]) for r in check[:3]))
        db.executescript(SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def open_database(path: Path, cfg: OutboxConfig) -> Opened:
    """Open the outbox at `path`, handling a missing, empty, damaged or partly wrong file (see module doc)."""
    sidecar = Sidecar(path)
    reset: str | None = None
    saved: Salvage | None = None
    if path.exists():
        reset, saved = _check_file(path)
    elif sidecar.mark is not None:
        reset = "the database file is missing"
    try:
        db = connect(path, cfg)
    except sqlite3.Error as exc:
        if is_storage_error(exc):
            raise OutboxStorageError(
                f"outbox {path}: cannot open it: {describe(exc)}; the file was left as it is"
            ) from None
        saved, reset = _damaged(path, exc)
        try:
            db = connect(path, cfg)
        except sqlite3.Error as exc2:
            raise OutboxStorageError(f"outbox {path}: cannot create a fresh database: {describe(exc2)}") from None
    try:
        opened = _settle(db, sidecar, reset, saved)
    except sqlite3.Error as exc:
        db.close()
        if is_storage_error(exc):
            raise OutboxStorageError(
                f"outbox {path}: cannot prepare it: {describe(exc)}; nothing was renamed"
            ) from None
        raise OutboxError(f"outbox {path}: cannot prepare it: {describe(exc)}") from None
    return opened


def _check_file(path: Path) -> tuple[str | None, Salvage | None]:
    """Before SQLite sees the file: an empty file is a reset, a wrong header is damage (moved aside)."""
    try:
        size = path.stat().st_size
        wal = Path(str(path) + "-wal")
        wal_size = wal.stat().st_size if wal.exists() else 0
        if size == 0 and wal_size == 0:
            for suffix in ("", "-wal", "-shm"):  # nothing in them to keep
                Path(str(path) + suffix).unlink(missing_ok=True)
            return "the database file was empty (0 bytes)", None
        if size > 0 and not header_ok(path):
            aside = move_aside(path)
            why = f"the file is not an SQLite database (bad header); moved aside to {aside.name}"
            return why, Salvage([], 0, None, True)
    except OSError as exc:
        raise OutboxStorageError(f"outbox {path}: cannot read it: {exc.strerror or exc}; nothing was changed") from None
    return None, None


def _damaged(path: Path, exc: BaseException) -> tuple[Salvage, str]:
    saved = salvage(path)
    try:
        aside = move_aside(path)
    except OSError as err:
        raise OutboxStorageError(f"outbox {path} is damaged ({exc}) and cannot be moved aside: {err}") from None
    lost = " (some of it was unreadable)" if saved.unreadable else ""
    kept = f"{len(saved.rows)} message(s) salvaged{lost}"
    return saved, f"the file is damaged ({exc}); {kept}; moved aside to {aside.name}"


def _meta(db: sqlite3.Connection) -> tuple[dict[str, int], list[str]]:
    """Integer meta values, and the keys whose value is not an integer."""
    good: dict[str, int] = {}
    bad: list[str] = []
    for key, value in db.execute("SELECT key, value FROM meta WHERE key IN ('seq', 'epoch', 'first_seq')"):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            good[str(key)] = value
        else:
            bad.append(f"meta.{key} = {value!r}")
    return good, bad


def _settle(db: sqlite3.Connection, sidecar: Sidecar, reset: str | None, saved: Salvage | None) -> Opened:
    """Salvaged rows in, values repaired, epoch and seq decided and written."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if saved is not None and saved.rows:
            db.executemany(
                "INSERT OR IGNORE INTO messages(id, topic, payload, retain, created, size) VALUES (?,?,?,?,?,?)",
                [(r[0], r[1], r[2], int(bool(r[3])), float(r[4]), len(r[2])) for r in saved.rows],
            )
        meta, bad = _meta(db)
        max_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0])
        repaired, quarantined = _repair_rows(db)
        mark = sidecar.mark
        if bad:
            reset = reset or f"{', '.join(bad)} is not a number"
            repaired += len(bad)
        if reset is not None or "epoch" not in meta:
            prior = max(meta.get("seq", 0), max_id, mark.reserved if mark and reset else 0, saved.seq if saved else 0)
            epoch = new_epoch(max(mark.epoch if mark else 0, meta.get("epoch", 0), (saved.epoch or 0) if saved else 0))
            first_seq, seq = prior + 1, prior
        else:
            epoch, seq = meta["epoch"], max(meta.get("seq", 0), max_id)
            first_seq = meta.get("first_seq", 1)
        for key, value in (("seq", seq), ("epoch", epoch), ("first_seq", first_seq)):
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
        if reset is not None:
            for table in ("dropped_ranges", "dropped_topics"):  # the ledger belongs to the old epoch
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key IN ('omitted', 'omitted_ranges')")
        ledger = DropLedger(db)
        ledger.record(db, quarantined)
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    if reset is not None:
        log.error("outbox: %s; starting sequence epoch %d at seq %d", reset, epoch, first_seq)
    return Opened(db, sidecar, ledger, epoch, first_seq, seq, repaired, quarantined, reset)


def _repair_rows(db: sqlite3.Connection) -> tuple[int, list[tuple[int, str]]]:
    """Fix rows whose values have the wrong type; delete (quarantine) those that are not a message any more."""
    repaired, quarantined = 0, []
    for rid, topic, payload, retain, created in db.execute(_BAD_ROWS).fetchall():
        fixed = _fixed_row(topic, payload, retain, created)
        if fixed is None:
            db.execute("DELETE FROM messages WHERE id=?", (rid,))
            quarantined.append((int(rid), str(topic)))
            log.error(
                "outbox: row seq %d is not a valid message (topic %r); quarantined (dropped, counted)", rid, topic
            )
        else:
            db.execute("UPDATE messages SET topic=?, payload=?, retain=?, created=?, size=? WHERE id=?", (*fixed, rid))
            repaired += 1
    if repaired:
        log.warning("outbox: repaired %d row(s) with values of the wrong type", repaired)
    return repaired, quarantined


def _fixed_row(topic: object, payload: object, retain: object, created: object) -> tuple[object, ...] | None:
    """The row with every value converted to its proper type, or None when that is impossible."""
    if not isinstance(topic, str) or not topic:
        return None
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    if not isinstance(data, bytes) or not data.endswith(b"}"):
        return None
    try:
        if not isinstance(json.loads(data), dict):
            return None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    try:
        flag = int(retain)  # type: ignore[call-overload]
        when = float(created)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if flag not in (0, 1):
        return None
    if math.isnan(when):
        when = time.time()
    return topic, data, flag, when, len(data)
