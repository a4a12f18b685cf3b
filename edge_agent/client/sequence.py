"""Delivery semantics for one device's message stream: de-duplication, seq order, gaps, losses and epochs.

Pure logic, no MQTT and no clock of its own (callers pass `now`), so every rule is testable on its own.

The agent numbers every message of a device with one gap-free `seq` per outbox epoch. A consumer that sees the
whole device stream can therefore tell exactly which messages it never got. A gap is first *pending* (the
message may still come: the agent replays a backlog topic by topic, not in global seq order). It is resolved
as *dropped* when the device's `stats` reports the range as dropped (the agent had to discard it: bounded
outbox, oversize, refused), as *filled* when the message arrives late, and otherwise, after `loss_after_s`,
as *lost*: something between the device and us lost it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SeqRange:
    """An inclusive range of seq numbers of one device epoch."""

    device_id: str
    epoch: int | None
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class Released(Generic[T]):
    """A message the sequencer hands on, in seq order. `late`: it arrived after later messages were released."""

    item: T
    seq: int
    late: bool


@dataclass(slots=True)
class _Gap:
    first: int
    last: int
    noticed: float


@dataclass(slots=True)
class _Held(Generic[T]):
    seq: int
    arrived: float
    item: T = field(compare=False)


class Dedup:
    """The msg_ids of one device seen lately (bounded, oldest forgotten first)."""

    def __init__(self, remember: int = 100_000) -> None:
        self._remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0

    def seen(self, msg_id: str) -> bool:
        """Record a msg_id; True if it was already seen (a duplicate: redelivery or replay)."""
        if msg_id in self._seen:
            self._seen.move_to_end(msg_id)
            self.duplicates += 1
            return True
        self._seen[msg_id] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return False

    def recent(self, n: int) -> list[str]:
        """The newest `n` msg_ids, oldest first (what a consumer persists across its own restarts)."""
        return list(self._seen)[-n:]


class DeviceSequencer(Generic[T]):
    """One `(device, epoch)` sequence: `offer()` messages, `poll()` on a timer; both return what to hand on.

    Messages are held for at most `hold_s` to put them in seq order; one that arrives after a later one was
    released is handed on at once with `late=True`.
    """

    def __init__(self, device_id: str, epoch: int | None, *, hold_s: float, loss_after_s: float) -> None:
        self.device_id = device_id
        self.epoch = epoch
        self.hold_s = hold_s
        self.loss_after_s = loss_after_s
        self._held: list[tuple[int, int, _Held[T]]] = []
        self._tie = itertools.count()
        self._next: int | None = None  # lowest seq not yet released or accounted for
        self._gaps: list[_Gap] = []
        self._dropped: list[tuple[int, int]] = []  # ranges the device reported as dropped, this epoch
        self._explained: list[SeqRange] = []  # gaps the device's dropped ranges explained, not yet collected
        self.late = 0

    # -- input ---------------------------------------------------------------------------------------------------

    def offer(self, seq: int, item: T, now: float) -> list[Released[T]]:
        """A new (not duplicate) message of this sequence; returns what can be released now."""
        if self._next is not None and seq < self._next:
            self.late += 1
            self._fill(seq)
            return [Released(item, seq, late=True)]
        heapq.heappush(self._held, (seq, next(self._tie), _Held(seq, now, item)))
        return self._release(now)

    def report_dropped(self, ranges: list[tuple[int, int]]) -> None:
        """Ranges the device says it dropped (from its `stats`); they explain gaps now or when the gaps appear."""
        self._dropped.extend(ranges)
        self._resolve_dropped()

    def take_explained(self) -> list[SeqRange]:
        """Gaps explained by the device's dropped reports since the last call (not losses)."""
        out, self._explained = self._explained, []
        return out

    @property
    def position(self) -> int | None:
        """The next seq expected: everything below it was handed on or accounted for."""
        return self._next

    def resume_at(self, position: int) -> None:
        """Continue a sequence a previous consumer process had followed up to `position` (exclusive)."""
        if self._next is None:
            self._next = position

    @property
    def idle(self) -> bool:
        """Nothing held and no open gap: an old epoch in this state can be forgotten."""
        return not self._held and not self._gaps

    # -- timer ---------------------------------------------------------------------------------------------------

    def poll(self, now: float) -> tuple[list[Released[T]], list[SeqRange]]:
        """Release held messages whose wait is over; return them and the gaps now declared lost."""
        released = self._release(now)
        lost: list[SeqRange] = []
        keep: list[_Gap] = []
        for gap in self._gaps:
            if now - gap.noticed >= self.loss_after_s:
                lost.append(SeqRange(self.device_id, self.epoch, gap.first, gap.last))
            else:
                keep.append(gap)
        self._gaps = keep
        return released, lost

    @property
    def pending(self) -> list[SeqRange]:
        """Gaps not yet explained, filled or declared lost."""
        return [SeqRange(self.device_id, self.epoch, g.first, g.last) for g in self._gaps]

    @property
    def held(self) -> int:
        return len(self._held)

    # -- internals -----------------------------------------------------------------------------------------------

    def _release(self, now: float) -> list[Released[T]]:
        out: list[Released[T]] = []
        while self._held:
            seq, _, head = self._held[0]
            if self._next is not None and seq < self._next:  # an older copy raced in while held: release it
                heapq.heappop(self._held)
                out.append(Released(head.item, seq, late=False))
                continue
            contiguous = self._next is not None and seq == self._next
            if not contiguous and now - head.arrived < self.hold_s:
                break
            heapq.heappop(self._held)
            if self._next is not None and seq > self._next:
                self._gaps.append(_Gap(self._next, seq - 1, now))
            self._next = seq + 1
            out.append(Released(head.item, seq, late=False))
        if out:
            self._resolve_dropped()
        return out

    def _fill(self, seq: int) -> None:
        """A late message arrived: cut its seq out of the pending gaps."""
        keep: list[_Gap] = []
        for g in self._gaps:
            if g.first <= seq <= g.last:
                if g.first < seq:
                    keep.append(_Gap(g.first, seq - 1, g.noticed))
                if seq < g.last:
                    keep.append(_Gap(seq + 1, g.last, g.noticed))
            else:
                keep.append(g)
        self._gaps = keep

    def _resolve_dropped(self) -> None:
        for lo, hi in self._dropped:
            keep: list[_Gap] = []
            for g in self._gaps:
                a, b = max(g.first, lo), min(g.last, hi)
                if a > b:
                    keep.append(g)
                    continue
                self._explained.append(SeqRange(self.device_id, self.epoch, a, b))
                if g.first < a:
                    keep.append(_Gap(g.first, a - 1, g.noticed))
                if b < g.last:
                    keep.append(_Gap(b + 1, g.last, g.noticed))
            self._gaps = keep
        # reports below every open gap and below the release point can never explain anything again
        floor = min([g.first for g in self._gaps] + ([self._next] if self._next is not None else []), default=None)
        if floor is not None:
            self._dropped = [(lo, hi) for lo, hi in self._dropped if hi >= floor]
