"""The hand-off outbox → paho for one connection at a time: a bounded in-flight window, acks, refusals.

Why connection generations: paho re-sends what was in flight after a reconnect, but only up to its first
queued message, while anything newer we publish goes out at once, so a topic's order broke across reconnects.
Here a lost connection ends a generation: paho's copies are dropped (under the same lock the sender publishes
under, so nothing slips in between), the outbox leases are released, and the next connection takes the rows
again from the outbox in per-topic seq order; what was in flight is the oldest of its topic, so it goes first.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.publish import envelope
from edge_agent.publish.config import MqttConfig
from edge_agent.publish.outbox import Outbox, Row
from edge_agent.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

PACKET_TOO_LARGE = 0x95


@dataclass(frozen=True, slots=True)
class Sent:
    """A leased row handed to paho during connection generation `gen`."""

    row: Row
    gen: int


class InflightWindow:
    """Owned by the sender thread, except `on_ack`, `connection_up` and `connection_down` (network thread)."""

    def __init__(self, outbox: Outbox, cfg: MqttConfig, warnings: RateLimitedLog) -> None:
        self._outbox = outbox
        self.warnings = warnings
        self.cfg = cfg
        self.lock = threading.Lock()  # a publish and the end of a connection never interleave
        self.gen = 0
        self._synced = 0
        self._live = False
        self._acks: deque[tuple[int, int, ReasonCode | int]] = deque()
        self._mids: dict[int, Sent] = {}
        self.counts: Counter[str] = Counter({"published": 0, "acked": 0, "refused": 0})
        self.conn_acks = 0  # PUBACKs for outbox rows during the current connection

    # -- network thread ------------------------------------------------------------------------------------------

    def on_ack(self, mid: int, rc: ReasonCode | int) -> None:
        if mid in self._mids:
            self.conn_acks += 1
        self._acks.append((self.gen, mid, rc))

    def connection_up(self) -> None:
        with self.lock:
            self.conn_acks = 0
            self._live = True

    def connection_down(self, client: mqtt.Client) -> None:
        """End the generation: paho forgets its copies, so it cannot re-send them ahead of older rows."""
        with self.lock:
            self._live = False
            self.gen += 1
            client.drop_out_messages()

    # -- sender thread -------------------------------------------------------------------------------------------

    def sync(self) -> None:
        """After a connection ended: settle its acks, then offer every unacknowledged row again."""
        if self._synced == self.gen:
            return
        self.process_acks()
        self._synced = self.gen
        self._mids.clear()
        self._outbox.release_all()

    def abandon(self, client: mqtt.Client) -> Row | None:
        """For a client that is thrown away: the oldest row in flight (the poison suspect), everything released."""
        with self.lock:
            self._live = False
            self.gen += 1
            client.drop_out_messages()
        oldest = next(iter(self._mids.values())).row if self._mids else None  # dict order = publish order
        self._acks.clear()
        self._synced = self.gen
        self._mids.clear()
        self._outbox.release_all()
        return oldest

    @property
    def inflight(self) -> int:
        return len(self._mids)

    def fill(self, client: mqtt.Client, connected_at: float, max_packet: int | None) -> None:
        """Hand rows to paho until the in-flight window is full; stops at once if the connection drops."""
        self.sync()
        free = self.cfg.inflight_window - len(self._mids)
        if free <= 0 or not self._live:
            return
        for row in self._outbox.take(free):
            data = envelope.mark_buffered(row.payload) if row.created < connected_at else row.payload
            if max_packet and len(data) + len(row.topic) + 16 > max_packet:
                self.warnings.warn(
                    "oversize", log, "mqtt: seq %d on %s is larger than the broker's maximum packet size %d; dropped",
                    row.id, row.topic, max_packet,
                )  # fmt: skip
                self._outbox.drop(row.id, "oversize")
                continue
            if not self._publish(client, row, data):
                return

    def _publish(self, client: mqtt.Client, row: Row, data: bytes) -> bool:
        """One row to paho; False when the connection is gone (the row is offered again on the next one)."""
        with self.lock:
            if not self._live or self._synced != self.gen:
                return False
            try:
                info = client.publish(row.topic, data, qos=1, retain=row.retain)
            except ValueError as exc:  # paho's own checks (topic, size): this row can never be sent
                self.warnings.warn(
                    "publish_error", log, "mqtt: paho rejected seq %d on %s: %s; dropped", row.id, row.topic, exc
                )
                self._outbox.drop(row.id, "publish_error")
                return True
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self._mids[info.mid] = Sent(row, self.gen)
                self.counts["published"] += 1
                return True
        self.warnings.warn(
            "publish_error", log, "mqtt: paho rejected seq %d on %s: %s; dropped",
            row.id, row.topic, mqtt.error_string(info.rc),
        )  # fmt: skip
        self._outbox.drop(row.id, "publish_error")
        return True

    def process_acks(self) -> None:
        """Delete acknowledged rows; drop (and count) the ones the broker refused."""
        done: list[int] = []
        while self._acks:
            gen, mid, rc = self._acks.popleft()
            sent = self._mids.get(mid)
            if sent is None or sent.gen != gen:
                continue  # status messages published outside the outbox, or a stale mid
            del self._mids[mid]
            code = rc.value if isinstance(rc, ReasonCode) else int(rc)
            if code < 0x80:
                done.append(sent.row.id)
                continue
            reason = "oversize" if code == PACKET_TOO_LARGE else "refused"
            if reason == "refused":
                self.counts["refused"] += 1
            self.warnings.warn(
                "acl" if code == 0x87 else reason, log, "mqtt: broker refused seq %d on %s: %s (0x%02x); dropped",
                sent.row.id, sent.row.topic, rc, code,
            )  # fmt: skip
            self._outbox.drop(sent.row.id, reason)
        if done:
            self._outbox.ack(done)
            self.counts["acked"] += len(done)
