"""The MQTT publisher: outbox-backed QoS 1 delivery, status/Last Will, reconnect with backoff, command subscriptions.

Threads: paho's network thread (callbacks only record facts and never touch the disk, so a full disk cannot
kill it) and one sender thread that owns the hand-off outbox → paho (`InflightWindow`), the outbox upkeep and the
supervision of the network thread: a dead one is replaced by a new client. Status messages (online, offline,
the Last Will) are outside the sequence and built without any disk access.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config.errors import ConfigError
from edge_agent.publish import envelope, failover, transport
from edge_agent.publish.auth import resolve_credentials, tls_context
from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.delivery import InflightWindow
from edge_agent.publish.envelope import MessageError
from edge_agent.publish.incoming import CommandCallback, Incoming
from edge_agent.publish.outbox import Outbox
from edge_agent.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

_MAINTAIN_EVERY_S = 2.0
# DISCONNECT reasons that point at a message rather than the network: malformed, protocol error, not authorized,
# topic invalid, packet too large, quota exceeded, payload format invalid, retain / QoS not supported.
_POISON_CODES = frozenset({0x81, 0x82, 0x87, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B})
_POISON_STRIKES = 3


class MessageTooLarge(MessageError):
    """The encoded message exceeds mqtt.max_payload_bytes."""


class Publisher:
    """Accepts messages into the outbox and delivers them to `<prefix>/<device_id>/<suffix>` over MQTT v5, QoS 1."""

    def __init__(self, cfg: MqttConfig, outbox_cfg: OutboxConfig, device_id: str, state_dir: Path) -> None:
        if not envelope.TOPIC_RE.match(device_id) or "/" in device_id:
            raise ConfigError(f"agent.device_id = {device_id!r} cannot be used in an MQTT topic (no / + # allowed)")
        self.cfg = cfg
        self.device_id = device_id
        self.base = f"{cfg.prefix}/{device_id}"
        self._creds = resolve_credentials(cfg)  # ConfigError before anything touches the disk or the network
        self._ssl_ctx = tls_context(cfg.tls) if cfg.tls.enabled else None
        self.warnings = RateLimitedLog()
        self._outbox = Outbox(state_dir / outbox_cfg.file_name, outbox_cfg, self.warnings)
        self._delivery = InflightWindow(self._outbox, cfg, self.warnings)
        self._subs: dict[str, CommandCallback] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = False
        self._connected_at = float("inf")  # rows created before this are replayed backlog → "buffered"
        self._max_packet: int | None = None
        self._last_failure: str | None = None
        self._connack_refused = False
        self._last_attempt = time.monotonic()
        self._strikes = 0  # connections in a row killed by a protocol-level error before any ack
        self._rebuild = threading.Event()
        self._counts = {
            "reconnects": 0,
            "connects": 0,
            "connect_failures": 0,
            "network_restarts": 0,
            "status_repairs": 0,
        }
        self._sender = threading.Thread(target=self._run, name="mqtt-sender", daemon=True)
        self._started = False
        self._closed = False
        self._endpoints = failover.Endpoints(cfg)  # mqtt.hosts: fail over in order, back to the first later
        self._client = self._new_client()

    # -- public interface ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (never blocks, never fails on an absent broker) and start the sender."""
        if self._started:
            return
        self._started = True
        self._sender.start()
        transport.start(self._client, self.cfg, self._endpoints.current)
        log.info("mqtt: publishing to %s under %s/", ", ".join(map(str, self._endpoints.endpoints)), self.base)

    def submit(
        self,
        topic_suffix: str,
        payload: dict[str, Any],
        *,
        schema: str,
        camera_id: str | None = None,
        retain: bool = False,
    ) -> str:
        """Commit one message to the outbox and return its msg_id; delivery happens in the background.

        An oversize message is logged, counted as dropped `oversize` and not queued (its msg_id is still returned).
        Raises MessageError for a caller bug (bad suffix, reserved key, not JSON) and OutboxStorageError when the
        state directory cannot store it (counted, logged once a minute); in both cases nothing was accepted and no
        seq was used.
        """
        if not envelope.TOPIC_RE.match(topic_suffix):
            raise MessageError(f"topic suffix {topic_suffix!r} is empty or contains a wildcard or empty level")
        msg_id = envelope.new_msg_id()
        ts = time.time()
        epoch = self._outbox.epoch

        def encode(seq: int) -> bytes:
            data = envelope.encode(
                payload,
                schema=schema,
                msg_id=msg_id,
                seq=seq,
                epoch=epoch,
                ts=ts,
                device_id=self.device_id,
                camera_id=camera_id,
            )
            if len(data) > self.cfg.max_payload_bytes:
                raise MessageTooLarge(f"{len(data)} bytes > mqtt.max_payload_bytes = {self.cfg.max_payload_bytes}")
            return data

        try:
            self._outbox.put(f"{self.base}/{topic_suffix}", encode, retain=retain, created=ts)
        except MessageTooLarge as exc:
            self._outbox.note_drop("oversize")
            self.warnings.warn("oversize", log, "mqtt: message %s on %s not queued: %s", msg_id, topic_suffix, exc)
            return msg_id
        self._wake.set()
        return msg_id

    def subscribe(self, topic_suffix_filter: str, callback: CommandCallback) -> None:
        """Call `callback(Incoming)` for messages on `<prefix>/<device_id>/<filter>` (e.g. `cmd/#`).

        Runs on paho's network thread: hand work off to a queue. Our own publishes are not echoed (v5 no-local).
        """
        if not envelope.FILTER_RE.match(topic_suffix_filter):
            raise MessageError(f"topic filter {topic_suffix_filter!r} is not a valid MQTT filter")
        self._subs[topic_suffix_filter] = callback
        if self._client.is_connected():  # else on_connect subscribes (a duplicate SUBSCRIBE is harmless)
            self._subscribe_one(topic_suffix_filter)

    def stats(self) -> dict[str, Any]:
        """Counters for the `stats` message (see edge_agent/schemas/stats.json, `publish`)."""
        ob = self._outbox
        oldest = ob.oldest_created()
        return {
            "connected": self._connected,
            "healthy": self.healthy(),
            "accepting": ob.accepting,
            "queue_depth": ob.depth,
            "queue_bytes": ob.size_bytes,
            "disk_bytes": ob.disk_bytes,
            "inflight": self._delivery.inflight,
            "oldest_queued_age_s": None if oldest is None else round(max(0.0, time.time() - oldest), 3),
            **dict(self._delivery.counts),
            "superseded": ob.superseded,
            **self._counts,
            "storage_errors": ob.storage_errors,
            "repaired": ob.repaired,
            "epoch": ob.epoch,
            "first_seq": ob.first_seq,
            "last_seq": ob.last_seq,
            "dropped": ob.dropped_snapshot(),
            **ob.ledger.snapshot(strip_prefix=self.base + "/"),
        }

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def epoch(self) -> int:
        return self._outbox.epoch

    def healthy(self, now: float | None = None) -> bool:
        """Network and sender threads alive, and connected or trying on schedule (for the systemd watchdog)."""
        if not self._started or self._closed:
            return not self._closed
        if not self._sender.is_alive() or not transport.thread_alive(self._client):
            return False
        if self._connected:
            return True
        overdue = self.cfg.reconnect_max_s + self._client.connect_timeout + 10.0
        return (time.monotonic() if now is None else now) - self._last_attempt < overdue

    def close(self, timeout_s: float = 3.0) -> None:
        """Flush what can be flushed within `timeout_s`, publish retained `offline`, disconnect cleanly."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + max(0.0, timeout_s)
        reserve = min(1.0, timeout_s / 4)
        while self._started and self._connected and self._outbox.depth > 0 and time.monotonic() < deadline - reserve:
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._sender.is_alive():
            self._sender.join(max(0.1, deadline - time.monotonic()))
        if self._connected:
            info = self._client.publish(self._status_topic(), self._status_payload("offline", "shutdown"), 1, True)
            try:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                log.debug("mqtt: offline status not confirmed: %s", exc)
        self._delivery.process_acks()  # acks that arrived while offline was sent: do not replay those next start
        left = self._outbox.depth
        self._client.disconnect()
        stopper = threading.Thread(target=self._client.loop_stop, daemon=True)
        stopper.start()
        stopper.join(max(0.1, deadline - time.monotonic()))
        if not stopper.is_alive():
            self._client.release_sockets()
        self._connected = False
        self._outbox.close()
        if left:
            log.info("mqtt: %d message(s) stay in the outbox for the next start", left)

    def _new_client(self) -> transport.Client:
        client = transport.make_client(self.cfg, transport.unique_client_id(self.device_id), self._creds, self._ssl_ctx)
        client.suppress_exceptions = True  # belt and braces: our callbacks are guarded already
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # -- paho callbacks (network thread): no disk access, nothing that can raise -----------------------------

    def _status_topic(self) -> str:
        return f"{self.base}/status"

    def _status_payload(self, state: str, reason: str | None = None) -> bytes:
        return envelope.status(state, reason, epoch=self._outbox.epoch, device_id=self.device_id)

    @transport.guarded
    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        # A fresh Last Will per attempt, so its ts is recent; the broker publishes it if we vanish.
        self._connack_refused = False
        self._last_attempt = time.monotonic()
        self._endpoints.apply(client)
        client.will_set(self._status_topic(), self._status_payload("offline", "connection_lost"), qos=1, retain=True)

    @transport.guarded
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if rc.is_failure:
            self._connack_refused = True  # the disconnect that follows is the same failure
            self._counts["connect_failures"] += 1
            self._log_failure(f"broker {self.cfg.host}:{self.cfg.effective_port} refused the connection: {rc}")
            return
        self._max_packet = getattr(props, "MaximumPacketSize", None)
        client.publish(self._status_topic(), self._status_payload("online"), qos=1, retain=True)
        for filt in self._subs:
            self._subscribe_one(filt)
        if self.cfg.protocol == "5":  # to see a stale Last Will of our previous connection (see _on_status)
            self._subscribe_one("status")
        if self._counts["connects"]:
            self._counts["reconnects"] += 1
        self._counts["connects"] += 1
        self._last_failure = None
        self._connected_at = time.time()
        self._delivery.connection_up()
        self._connected = True
        self._endpoints.connected()
        self._wake.set()
        log.info("mqtt: connected to %s; %d message(s) queued", self._endpoints.current, self._outbox.depth)

    @transport.guarded
    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._counts["connect_failures"] += 1
        err = getattr(client, "last_error", None)
        self._log_failure(f"cannot connect to {self._endpoints.current}: {err or 'connection failed'}")
        self._endpoints.failed()

    def _log_failure(self, msg: str) -> None:
        """One clear line per distinct failure; identical retries (backoff) only at debug level."""
        if msg != self._last_failure:
            log.error("mqtt: %s; retrying with backoff up to %gs", msg, self.cfg.reconnect_max_s)
            self._last_failure = msg
        else:
            log.debug("mqtt: %s (still failing)", msg)

    @transport.guarded
    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        was = self._connected
        self._connected = False
        if self._stop.is_set():
            return
        self._delivery.connection_down(client)
        self._wake.set()
        self._endpoints.failed()  # the next attempt goes to the next of mqtt.hosts (a no-op for one host)
        if was:
            log.warning("mqtt: connection lost (%s); queueing in the outbox and reconnecting", rc)
            self._count_strike(rc)
        elif not self._connack_refused:
            # closed before CONNACK, e.g. TLS 1.3 client-certificate rejection happens after our handshake ends
            self._counts["connect_failures"] += 1
            self._log_failure(
                f"broker {self.cfg.host}:{self.cfg.effective_port} closed the connection before "
                f"accepting it ({rc}); check TLS client certificate and broker logs"
            )

    def _count_strike(self, rc: ReasonCode) -> None:
        """A message the broker cannot digest (e.g. over mosquitto's message_size_limit, answered with a PUBACK
        code paho rejects) kills every connection before anything is acked; after 3 such connections the oldest
        in-flight message is the culprit and is dropped, so the queue can never wedge."""
        code = rc.value if isinstance(rc, ReasonCode) else int(rc)
        if code in _POISON_CODES and self._delivery.inflight and self._delivery.conn_acks == 0:
            self._strikes += 1
            if self._strikes >= _POISON_STRIKES:
                self._rebuild.set()
                self._wake.set()
        else:
            self._strikes = 0

    @transport.guarded
    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        self._delivery.on_ack(mid, rc)
        self._wake.set()

    @transport.guarded
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.topic.startswith(self.base + "/"):
            return
        suffix = msg.topic[len(self.base) + 1 :]
        if suffix == "status":
            self._on_status(client, bytes(msg.payload))
            return
        if self.cfg.protocol != "5" and suffix.endswith("/result"):
            return  # MQTT 3.1.1 has no no-local option: do not feed our own command results back
        incoming = Incoming(suffix, bytes(msg.payload), bool(msg.retain))
        for filt, callback in list(self._subs.items()):
            if mqtt.topic_matches_sub(filt, suffix):
                try:
                    callback(incoming)
                except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the network thread
                    self.warnings.warn(
                        "handler_error", log, "mqtt: handler for %s failed on %s: %s", filt, suffix, exc,
                        level=logging.ERROR,
                    )  # fmt: skip

    def _on_status(self, client: mqtt.Client, payload: bytes) -> None:
        """The broker publishes the Last Will of a connection it has not yet noticed is dead (after a kill -9,
        up to 1.5 keepalives later) even when we are already connected again, which would leave a retained
        `offline` on a live device. Our own publishes are not echoed (no-local), so an `offline` here is always
        such a stale will: answer it with a fresh retained `online`."""
        if self._connected and b'"offline"' in payload:
            self._counts["status_repairs"] += 1
            client.publish(self._status_topic(), self._status_payload("online"), qos=1, retain=True)

    def _subscribe_one(self, filt: str) -> None:
        opts = transport.subscribe_options(self.cfg, no_local=True)
        if isinstance(opts, int):
            self._client.subscribe(f"{self.base}/{filt}", qos=opts)
        else:
            self._client.subscribe(f"{self.base}/{filt}", options=opts)

    # -- sender thread -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        next_upkeep = 0.0
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()  # before working: a submit during the work re-arms it
            try:
                self._supervise()
                self._delivery.process_acks()
                self._delivery.sync()
                if time.monotonic() >= next_upkeep:
                    self._outbox.maintain()
                    next_upkeep = time.monotonic() + _MAINTAIN_EVERY_S
                if self._connected:
                    self._delivery.fill(self._client, self._connected_at, self._max_packet)
            except Exception as exc:  # e.g. a disk error: keep going, the rows are still in the outbox
                self.warnings.warn("sender_error", log, "mqtt: sender error: %s", exc, level=logging.ERROR)
                log.debug("sender traceback", exc_info=True)
                time.sleep(0.5)

    def _supervise(self) -> None:
        """Replace the client when paho's network thread died or a poison message keeps killing connections."""
        if self._rebuild.is_set():
            self._rebuild.clear()
            self._strikes = 0
            self._replace_client(poison=True)
        elif self._started and not self._stop.is_set() and not transport.thread_alive(self._client):
            self._counts["network_restarts"] += 1
            log.error("mqtt: the network thread died; starting a new MQTT client")
            self._replace_client(poison=False)
        elif self._connected and self._endpoints.should_fail_back():
            self._endpoints.to_first()  # a clean disconnect (no Last Will), then the same client reconnects there
            self._client.disconnect()
            self._client.loop_stop()
            self._client.release_sockets()  # loop_start() makes a new wake-up pair without closing the old one
            transport.start(self._client, self.cfg, self._endpoints.current)

    def _replace_client(self, *, poison: bool) -> None:
        old = self._client
        self._connected = False
        row = self._delivery.abandon(old)
        if poison and row is not None:
            log.error(
                "mqtt: the broker dropped the connection %d times right after receiving seq %d on %s (%d bytes); "
                "dropping that message (over the broker's message size limit or not allowed?)",
                _POISON_STRIKES,
                row.id,
                row.topic,
                len(row.payload),
            )
            self._outbox.drop(row.id, "broker_disconnect")
        old.on_disconnect = None
        threading.Thread(target=transport.retire, args=(old,), name="mqtt-retire", daemon=True).start()
        self._client = self._new_client()
        transport.start(self._client, self.cfg, self._endpoints.current)
