"""Storage facts for the outbox: SQLite error classes, file header, free space, the seq sidecar, row salvage.

Why a separate module: "the disk is full" and "the file is damaged" need opposite reactions. A storage error
(disk full, I/O error, read-only, cannot open) must never cost a message: the file is kept and the agent retries.
Only a file that fails the header check or SQLite's integrity check is damaged; then every readable row is
salvaged before the file is moved aside.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
SEQ_BLOCK = 1000  # numbers reserved in the sidecar per write: one small file write per 1000 messages
# Primary result codes (sqlite3.h) that mean "the storage failed", not "the file is damaged".
_STORAGE_CODES = frozenset(
    {3, 5, 6, 7, 8, 10, 13, 14, 15}
)  # PERM BUSY LOCKED NOMEM READONLY IOERR FULL CANTOPEN PROTOCOL
_CORRUPT_CODES = frozenset({11, 26})  # CORRUPT NOTADB
_SALVAGE_BUDGET_S = 10.0
_PROBE_AHEAD = 2048


class OutboxError(RuntimeError):
    """The outbox cannot store a message or cannot be opened."""


class OutboxStorageError(OutboxError):
    """A storage fault (disk full, I/O error, read-only, no space at start-up): nothing was renamed or lost."""


def is_storage_error(exc: BaseException) -> bool:
    """True for SQLite errors caused by the storage (retry later), False for a damaged file."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF
        if primary in _CORRUPT_CODES:
            return False
        if primary in _STORAGE_CODES:
            return True
    text = str(exc).lower()
    if "malformed" in text or "not a database" in text:
        return False
    return isinstance(exc, sqlite3.OperationalError | OSError)


def describe(exc: BaseException) -> str:
    """`database or disk is full (SQLITE_FULL)`: the message with SQLite's error name when known."""
    name = getattr(exc, "sqlite_errorname", None)
    return f"{exc} ({name})" if name else str(exc)


def header_ok(path: Path) -> bool:
    """The file starts with SQLite's 16-byte magic string."""
    with open(path, "rb") as fh:
        return fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def free_bytes(directory: Path) -> int:
    """Bytes available to an unprivileged writer in `directory`'s file system."""
    st = os.statvfs(directory)
    return int(st.f_bavail * st.f_frsize)


def disk_bytes(path: Path) -> int:
    """What the outbox keeps on disk: the database plus its -wal and -shm files."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += Path(str(path) + suffix).stat().st_size
    return total


def check_free_space(directory: Path, minimum: int) -> int:
    """Raise OutboxStorageError when `directory` has less than `minimum` bytes free; returns the free bytes."""
    try:
        free = free_bytes(directory)
    except OSError as exc:
        raise OutboxStorageError(f"outbox: cannot read free space of {directory}: {exc.strerror or exc}") from None
    if free < minimum:
        raise OutboxStorageError(
            f"outbox: state directory {directory} has {free / 1e6:.2f} MB free, less than "
            f"outbox.min_free_bytes = {minimum}; free some space (nothing was changed)"
        )
    return free


@dataclass(frozen=True, slots=True)
class SeqMark:
    """The sidecar's content: the epoch and the highest seq it has reserved."""

    epoch: int
    reserved: int


class Sidecar:
    """`outbox.sqlite3.seq`: a high-water mark of the sequence that outlives the database.

    It is written before a number beyond the reservation is committed, so after the database is lost or
    rebuilt the next epoch can start above every number the old one may have used: seq never goes backwards.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = Path(str(db_path) + ".seq")
        self.mark = self._read()

    def _read(self) -> SeqMark | None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return SeqMark(int(doc["epoch"]), int(doc["reserved"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("outbox: ignoring unreadable sequence sidecar %s (%s)", self.path, exc)
            return None

    def reserve(self, epoch: int, upto: int) -> None:
        """Persist `reserved = upto + SEQ_BLOCK` atomically (write, fsync, rename). Raises OSError."""
        mark = SeqMark(epoch, upto + SEQ_BLOCK)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"epoch": mark.epoch, "reserved": mark.reserved}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.mark = mark


def new_epoch(previous: int | None) -> int:
    """Milliseconds since 1970, and always above the previous epoch even if the clock went backwards."""
    now = int(time.time() * 1000)
    return max(now, (previous or 0) + 1)


@dataclass(frozen=True, slots=True)
class Salvage:
    """What could still be read from a damaged outbox file."""

    rows: list[tuple[int, str, bytes, int, float]]
    seq: int  # highest number known to have been used (meta or rows), 0 if none
    epoch: int | None
    unreadable: bool  # some part of the messages table could not be read


def salvage(path: Path) -> Salvage:
    """Read every row that SQLite can still read from a damaged outbox (chunked, probing past bad pages)."""
    rows: list[tuple[int, str, bytes, int, float]] = []
    seq, epoch, unreadable = 0, None, False
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=1.0)
    except sqlite3.Error:
        return Salvage([], 0, None, True)
    try:
        db.execute("PRAGMA query_only=1")
        db.execute("PRAGMA writable_schema=1")  # lets SQLite read a file shorter than its header says
        seq, epoch = _salvage_meta(db)
        unreadable = _salvage_rows(db, rows)
    except sqlite3.Error:
        unreadable = True
    finally:
        db.close()
    top = max([seq] + [r[0] for r in rows])
    return Salvage(rows, top, epoch, unreadable)


def _salvage_meta(db: sqlite3.Connection) -> tuple[int, int | None]:
    seq, epoch = 0, None
    with contextlib.suppress(sqlite3.Error):
        for key, value in db.execute("SELECT key, value FROM meta"):
            if key == "seq" and isinstance(value, int):
                seq = value
            elif key == "epoch" and isinstance(value, int):
                epoch = value
    return seq, epoch


def _salvage_rows(db: sqlite3.Connection, out: list[tuple[int, str, bytes, int, float]]) -> bool:
    """Append readable rows to `out`; True if something was unreadable."""
    deadline = time.monotonic() + _SALVAGE_BUDGET_S
    cursor, unreadable = 0, False
    query = "SELECT id, topic, payload, retain, created FROM messages WHERE id>? ORDER BY id LIMIT 256"
    while time.monotonic() < deadline:
        try:
            chunk = db.execute(query, (cursor,)).fetchall()
        except sqlite3.DatabaseError:
            unreadable = True
            nxt = _probe_next(db, cursor, out, deadline)
            if nxt is None:
                return True
            cursor = nxt
            continue
        if not chunk:
            return unreadable
        out.extend(r for r in chunk if _plausible(r))
        cursor = chunk[-1][0]
    return True


def _probe_next(
    db: sqlite3.Connection, cursor: int, out: list[tuple[int, str, bytes, int, float]], deadline: float
) -> int | None:
    """Look up ids one by one past a bad page; the id of the first readable row, or None."""
    for rid in range(cursor + 1, cursor + 1 + _PROBE_AHEAD):
        if time.monotonic() > deadline:
            return None
        try:
            row = db.execute("SELECT id, topic, payload, retain, created FROM messages WHERE id=?", (rid,)).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None:
            if _plausible(row):
                out.append(row)
            return rid
    return None


def _plausible(row: tuple[object, ...]) -> bool:
    rid, topic, payload, retain, created = row
    return (
        isinstance(rid, int)
        and isinstance(topic, str)
        and bool(topic)
        and isinstance(payload, bytes)
        and payload.endswith(b"}")
        and isinstance(retain, int)
        and isinstance(created, int | float)
    )


def move_aside(path: Path) -> Path:
    """Rename a damaged database (and its -wal/-shm) to `<name>.corrupt-<time>`; returns the new name."""
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(str(aside) + suffix))
    return aside


class StoreHealth:
    """Whether the outbox can write: after a storage error, writes are refused without touching SQLite until
    the next probe (every `retry_s`, or at once when free space is back), so a full disk costs nothing per
    message; the first success logs how long it lasted and how many messages were refused."""

    def __init__(self, retry_s: float) -> None:
        self.retry_s = retry_s
        self.errors = 0
        self.since: float | None = None
        self.next_try = 0.0
        self.refused = 0

    @property
    def ok(self) -> bool:
        return self.since is None

    def should_refuse(self) -> bool:
        """True while failing and before the next probe is due."""
        return self.since is not None and time.monotonic() < self.next_try

    def failed(self) -> None:
        self.errors += 1
        if self.since is None:
            self.since = time.monotonic()
            self.refused = 0
        self.next_try = time.monotonic() + self.retry_s

    def probe_now(self) -> None:
        self.next_try = 0.0

    def succeeded(self, where: Path) -> None:
        if self.since is not None:
            log.warning(
                "outbox %s: storing messages again after %.1f s; %d message(s) were refused meanwhile",
                where,
                time.monotonic() - self.since,
                self.refused,
            )
            self.since = None
