"""The consumer engine without MQTT: raw messages in, typed records and delivery reports out, to callbacks.

`Consumer.handle(topic, payload, retained, now, token)` and `Consumer.tick(now)` return the tokens of messages
that are finished (handed to the callbacks, or refused as duplicate or invalid), so the MQTT layer acknowledges
a message only after the application has seen it: a consumer that dies mid-way gets it again from its session.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from edge_agent.client.records import ParseError, Record, Stats, Status, parse
from edge_agent.client.sequence import Dedup, DeviceSequencer, Released, SeqRange
from edge_agent.client.topics import match

log = logging.getLogger(__name__)

R = TypeVar("R")
Token = Hashable


@dataclass(frozen=True, slots=True)
class Delivery:
    """A record as handed to callbacks. `late`: it arrived after later messages of its device were handed on."""

    record: Record
    late: bool


@dataclass(frozen=True, slots=True)
class DeviceState:
    """Liveness of one device from its `status` topic; `last_will` when the broker announced it gone."""

    device_id: str
    online: bool
    reason: str | None
    last_will: bool
    since: datetime  # the status message's ts


@dataclass(frozen=True, slots=True)
class EpochChange:
    """The device's outbox was reset: a new sequence began. Old-epoch messages (salvaged rows) may still come,
    and numbers of the old epoch not seen within `loss_after_s` are reported lost as usual."""

    device_id: str
    old: int | None
    new: int | None


@dataclass(frozen=True, slots=True)
class Invalid:
    """A message that failed parsing or validation (logged and counted, never handed on as a record)."""

    topic: str
    reason: str


Handlers = dict[str, list[Callable[[Any], None]]]
Seqr = DeviceSequencer[tuple[Record, Token]]


class _Device:
    """What the consumer tracks per device: seen msg_ids (across epochs) and one sequencer per epoch."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.dedup = Dedup()
        self.epochs: dict[int | None, Seqr] = {}
        self.current: int | None = None


class Consumer:
    """Thread-safe: MQTT callbacks and a timer may call `handle` and `tick` concurrently."""

    def __init__(self, prefix: str = "edge-agent", *, hold_s: float = 0.5, loss_after_s: float = 90.0) -> None:
        self.prefix = prefix
        self.hold_s = hold_s
        self.loss_after_s = loss_after_s
        self._lock = threading.RLock()
        self._devices: dict[str, _Device] = {}
        self._liveness: dict[str, DeviceState] = {}
        self._handlers: Handlers = {}
        self.counts = {
            "received": 0,
            "delivered": 0,
            "duplicates": 0,
            "invalid": 0,
            "late": 0,
            "lost": 0,
            "dropped_by_device": 0,
            "handler_errors": 0,
        }

    # -- registration --------------------------------------------------------------------------------------------

    def on(self, kind: type[R] | str, fn: Callable[[Any], None]) -> None:
        """Call `fn` for each event of `kind`: a record class (gets a Delivery), or "loss", "dropped", "epoch",
        "device", "invalid", "any" (every Delivery)."""
        key = kind if isinstance(kind, str) else kind.__name__
        self._handlers.setdefault(key, []).append(fn)

    def device_states(self) -> dict[str, DeviceState]:
        with self._lock:
            return dict(self._liveness)

    def pending(self) -> list[SeqRange]:
        """Gaps still waiting to be filled, explained by the device, or declared lost."""
        with self._lock:
            return [g for d in self._devices.values() for q in d.epochs.values() for g in q.pending]

    def export_state(self, remember: int = 10_000) -> dict[str, Any]:
        """What a restarted consumer needs to go on without repeats or false gaps: per device, the newest
        msg_ids and, per epoch, the next seq expected. JSON-able."""
        with self._lock:
            return {
                dev.device_id: {
                    "seen": dev.dedup.recent(remember),
                    "current": dev.current,
                    "epochs": [[e, q.position] for e, q in dev.epochs.items() if q.position is not None],
                }
                for dev in self._devices.values()
            }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Undo `export_state` in a fresh consumer (before any message)."""
        with self._lock:
            for device_id, doc in state.items():
                dev = self._devices.setdefault(device_id, _Device(device_id))
                for msg_id in doc.get("seen", []):
                    dev.dedup.seen(str(msg_id))
                dev.current = doc.get("current")
                for epoch, position in doc.get("epochs", []):
                    self._sequencer(dev, epoch).resume_at(int(position))

    # -- input ---------------------------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, *, retained: bool, now: float, token: Token = None) -> list[Token]:
        """One MQTT message; returns the tokens now finished (to acknowledge)."""
        with self._lock:
            self.counts["received"] += 1
            device, _, suffix = topic[len(self.prefix) + 1 :].partition("/")
            spec = match(suffix) if topic.startswith(self.prefix + "/") else None
            if spec is None or spec.direction != "agent_publishes":
                return [token]  # e.g. a command request from another consumer: not ours to read
            try:
                record = parse(topic, payload, retained=retained, device_id=device)
            except ParseError as exc:
                self.counts["invalid"] += 1
                log.warning("client: invalid message skipped: %s", exc)
                self._emit("invalid", Invalid(topic, str(exc)))
                return [token]
            dev = self._devices.get(device) or self._devices.setdefault(device, _Device(device))
            if dev.dedup.seen(record.meta.msg_id):
                self.counts["duplicates"] += 1
                return [token]
            seq = record.meta.seq
            if retained or seq is None:
                # retained state predates our subscription; status (and its Last Will) is outside the sequence
                self._deliver(Delivery(record, late=False))
                return [token]
            seqr = self._sequencer(dev, record.meta.epoch)
            if isinstance(record, Stats):
                seqr.report_dropped(dropped_ranges(record))
            released = seqr.offer(seq, (record, token), now)
            return self._hand_on(seqr, released, [])

    def tick(self, now: float) -> list[Token]:
        """Release held messages and declare overdue gaps lost; call a few times a second."""
        with self._lock:
            done: list[Token] = []
            for dev in self._devices.values():
                for epoch, seqr in list(dev.epochs.items()):
                    released, lost = seqr.poll(now)
                    done += self._hand_on(seqr, released, lost)
                    if epoch != dev.current and seqr.idle:
                        del dev.epochs[epoch]  # an old epoch with nothing open: forget it
            return done

    # -- internals -----------------------------------------------------------------------------------------------

    def _sequencer(self, dev: _Device, epoch: int | None) -> Seqr:
        """The sequencer of (device, epoch); a larger epoch than the device's current one is an epoch change."""
        if dev.current is None or (epoch is not None and epoch > dev.current):
            if dev.epochs:
                log.info("client: device %s started a new epoch %s (was %s)", dev.device_id, epoch, dev.current)
                self._emit("epoch", EpochChange(dev.device_id, dev.current, epoch))
            dev.current = epoch
        seqr = dev.epochs.get(epoch)
        if seqr is None:
            seqr = dev.epochs[epoch] = DeviceSequencer(
                dev.device_id, epoch, hold_s=self.hold_s, loss_after_s=self.loss_after_s
            )
        return seqr

    def _hand_on(
        self,
        seqr: DeviceSequencer[tuple[Record, Token]],
        released: list[Released[tuple[Record, Token]]],
        lost: list[SeqRange],
    ) -> list[Token]:
        done: list[Token] = []
        for rel in released:
            record, token = rel.item
            if rel.late:
                self.counts["late"] += 1
            self._deliver(Delivery(record, rel.late))
            done.append(token)
        for rng in seqr.take_explained():
            self.counts["dropped_by_device"] += rng.count
            self._emit("dropped", rng)
        for rng in lost:
            self.counts["lost"] += rng.count
            log.warning("client: device %s lost seq %d..%d (epoch %s)", rng.device_id, rng.first, rng.last, rng.epoch)
            self._emit("loss", rng)
        return done

    def _deliver(self, delivery: Delivery) -> None:
        record = delivery.record
        if isinstance(record, Status):
            self._liveness_update(record)
        self.counts["delivered"] += 1
        self._emit(type(record).__name__, delivery)
        self._emit("any", delivery)

    def _liveness_update(self, status: Status) -> None:
        state = DeviceState(
            status.meta.device_id, status.state == "online", status.reason, status.is_last_will, status.meta.ts
        )
        before = self._liveness.get(state.device_id)
        self._liveness[state.device_id] = state
        if before is None or (before.online, before.reason) != (state.online, state.reason):
            self._emit("device", state)

    def _emit(self, key: str, event: object) -> None:
        for fn in self._handlers.get(key, ()):
            try:
                fn(event)
            except Exception:  # an application bug must not stop delivery to the other callbacks
                self.counts["handler_errors"] += 1
                log.exception("client: %s callback failed", key)


def dropped_ranges(stats: Stats) -> list[tuple[int, int]]:
    """The seq runs the device reports as never to be delivered (`stats.publish.dropped_seq.ranges`), as
    (first, last) pairs. The list is cumulative for the epoch, so a lost `stats` message loses no report."""
    ranges = ((stats.raw.get("publish") or {}).get("dropped_seq") or {}).get("ranges") or []
    return [(int(r[0]), int(r[1])) for r in ranges if isinstance(r, list) and len(r) == 2]
