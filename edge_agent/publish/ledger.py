"""The drop ledger: which accepted seq numbers of this epoch will never be delivered, kept in the outbox database.

Why persisted, and in the same transaction as the delete: the contract says every number is delivered or
reported. A report only in memory would vanish with a crash right after the drop; a report only in a `stats`
message would vanish with that message. So the ledger lives next to the rows, and `stats` repeats all of it.

Ranges are maximal runs of consecutive dropped numbers (any topic), so a consumer can test one missing
number exactly; per topic the ledger keeps a count and the lowest and highest number.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS dropped_ranges (first INTEGER PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dropped_topics (
    topic TEXT PRIMARY KEY, n INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL
);
"""
MAX_RANGES = 4096  # kept in the database; older runs are folded into the omitted counters
SHOWN_RANGES = 64  # listed in each stats message


@dataclass(frozen=True, slots=True)
class TopicDrops:
    """Dropped numbers on one topic: how many, the lowest and the highest."""

    count: int
    first: int
    last: int


class DropLedger:
    """In-memory mirror of the ledger tables; `record()` runs inside the caller's open transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.reload(db)

    def reload(self, db: sqlite3.Connection) -> None:
        """(Re)read the tables, e.g. after a transaction that recorded drops was rolled back."""
        self._by_first: dict[int, int] = {}
        self._by_last: dict[int, int] = {}
        for first, last in db.execute("SELECT first, last FROM dropped_ranges"):
            self._by_first[int(first)] = int(last)
            self._by_last[int(last)] = int(first)
        self.topics: dict[str, TopicDrops] = {
            str(t): TopicDrops(int(n), int(a), int(b))
            for t, n, a, b in db.execute("SELECT topic, n, first, last FROM dropped_topics")
        }
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('omitted', 'omitted_ranges')").fetchall())
        self.omitted = int(meta.get("omitted", 0) or 0)
        self.omitted_ranges = int(meta.get("omitted_ranges", 0) or 0)
        self.count = self.omitted + sum(b - a + 1 for a, b in self._by_first.items())

    def record(self, db: sqlite3.Connection, dropped: Iterable[tuple[int, str]]) -> None:
        """Add (seq, topic) pairs; the caller commits (or rolls back and calls `reload`)."""
        for seq, topic in sorted(dropped):
            if seq in self._by_first or seq in self._by_last:
                continue  # already reported
            self._add(db, seq)
            self.count += 1
            old = self.topics.get(topic)
            new = (
                TopicDrops(1, seq, seq)
                if old is None
                else TopicDrops(old.count + 1, min(old.first, seq), max(old.last, seq))
            )
            self.topics[topic] = new
            db.execute(
                "INSERT OR REPLACE INTO dropped_topics(topic, n, first, last) VALUES (?,?,?,?)",
                (topic, new.count, new.first, new.last),
            )
        self._fold(db)

    def _add(self, db: sqlite3.Connection, seq: int) -> None:
        first, last = seq, seq
        if seq - 1 in self._by_last:  # extends a run ending just below
            first = self._by_last.pop(seq - 1)
            del self._by_first[first]
            db.execute("DELETE FROM dropped_ranges WHERE first=?", (first,))
        if seq + 1 in self._by_first:  # and joins a run starting just above
            last = self._by_first.pop(seq + 1)
            del self._by_last[last]
            db.execute("DELETE FROM dropped_ranges WHERE first=?", (seq + 1,))
        self._by_first[first] = last
        self._by_last[last] = first
        db.execute("INSERT OR REPLACE INTO dropped_ranges(first, last) VALUES (?,?)", (first, last))

    def _fold(self, db: sqlite3.Connection) -> None:
        """Beyond MAX_RANGES, forget the oldest runs but keep counting their numbers."""
        while len(self._by_first) > MAX_RANGES:
            first = min(self._by_first)
            last = self._by_first.pop(first)
            del self._by_last[last]
            self.omitted += last - first + 1
            self.omitted_ranges += 1
            db.execute("DELETE FROM dropped_ranges WHERE first=?", (first,))
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('omitted', ?)", (self.omitted,))
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('omitted_ranges', ?)", (self.omitted_ranges,))

    def ranges(self) -> list[tuple[int, int]]:
        """Every run still held, oldest first."""
        return sorted(self._by_first.items())

    def snapshot(self, strip_prefix: str = "") -> dict[str, Any]:
        """`stats.publish.dropped_seq` and `dropped_topics` (topic names without `strip_prefix`)."""
        runs = self.ranges()
        shown = runs[-SHOWN_RANGES:]
        hidden = runs[: len(runs) - len(shown)]
        seq_part: dict[str, Any] = {"count": self.count, "ranges": [list(r) for r in shown]}
        omitted_ranges = self.omitted_ranges + len(hidden)
        if omitted_ranges:
            seq_part["omitted_ranges"] = omitted_ranges
            seq_part["omitted"] = self.omitted + sum(b - a + 1 for a, b in hidden)
        topics = {
            (t[len(strip_prefix) :] if strip_prefix and t.startswith(strip_prefix) else t): {
                "count": d.count,
                "first": d.first,
                "last": d.last,
            }
            for t, d in sorted(self.topics.items())
        }
        return {"dropped_seq": seq_part, "dropped_topics": topics}
