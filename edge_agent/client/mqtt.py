"""AgentClient: a paho-mqtt subscriber with a persistent session that feeds the Consumer and acknowledges late.

A message is acknowledged (PUBACK) only once the callbacks have seen it, or it was refused as duplicate or
invalid. With a persistent session (fixed client id, clean start off, a session expiry), the broker keeps
everything the client has not acknowledged, and whatever arrives while it is down, for the next run.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.client.core import Consumer, DeviceState, Token

log = logging.getLogger(__name__)

_TICK_S = 0.1
_SAVE_EVERY_S = 5.0


class ClientError(RuntimeError):
    """The client could not connect or subscribe within the time asked for."""


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Connection and delivery settings of an AgentClient."""

    client_id: str  # fixed: the broker keeps this id's session (and queue) while the consumer is down
    host: str = "localhost"
    port: int = 1883
    prefix: str = "edge-agent"
    devices: tuple[str, ...] = ("+",)  # device ids to follow; "+" is the whole fleet
    session_expiry_s: int = 7 * 86400  # how long the broker keeps the queue of a consumer that is down
    protocol: Literal["5", "3.1.1"] = "5"
    share_group: str | None = None  # MQTT v5 shared subscription $share/<group>/...: consumers split the load
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    keepalive_s: int = 30
    state_file: Path | None = None  # where seen msg_ids and seq positions survive a consumer restart
    hold_s: float = 0.5  # wait this long for an earlier seq before handing a later one on
    loss_after_s: float = 90.0  # a gap not filled nor reported dropped by the device after this is a loss

    def filters(self) -> list[str]:
        share = f"$share/{self.share_group}/" if self.share_group else ""
        return [f"{share}{self.prefix}/{device}/#" for device in self.devices]


class AgentClient:
    """Subscribe to one device, several, or a fleet, and get typed records in order, once, with loss reports.

    `on(kind, fn)` registers callbacks (see `Consumer.on`); they run on the client's threads, one at a time.
    """

    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        loss_after = cfg.loss_after_s
        if cfg.share_group:
            # a shared subscription splits one device's stream across consumers: gaps here are normal
            loss_after = float("inf")
        self.consumer = Consumer(cfg.prefix, hold_s=cfg.hold_s, loss_after_s=loss_after)
        if cfg.state_file is not None:
            self._load_state(cfg.state_file)
        self._gen = 0  # connection generation: a token from an older connection must never be acknowledged
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="agent-client-tick", daemon=True)
        self._client = self._make_client()

    def on(self, kind: type | str, fn: Callable[[Any], None]) -> AgentClient:
        self.consumer.on(kind, fn)
        return self

    def start(self, timeout_s: float = 10.0) -> AgentClient:
        """Connect and subscribe; raises ClientError if that does not happen within `timeout_s`."""
        props = None
        kwargs: dict[str, Any] = {}
        if self.cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            kwargs["clean_start"] = False
        self._client.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive_s, properties=props, **kwargs)
        self._client.loop_start()
        self._ticker.start()
        if not self._subscribed.wait(timeout_s):
            self.close()
            raise ClientError(f"could not connect and subscribe to {self.cfg.host}:{self.cfg.port} in {timeout_s}s")
        return self

    def close(self) -> None:
        """Disconnect; what was not acknowledged stays in the broker session for the next start."""
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(2.0)
        self._client.disconnect()
        self._client.loop_stop()
        self.save_state()

    def save_state(self) -> None:
        """Write the consumer state to `state_file` atomically (also done every few seconds while running)."""
        path = self.cfg.state_file
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.consumer.export_state()), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.error("client: cannot save state to %s: %s", path, exc)

    def _load_state(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:  # a damaged file costs repeats and false gaps, never the start
            log.error("client: state file %s unreadable (%s); starting without it", path, exc)
            return
        self.consumer.restore_state(state)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def device_states(self) -> dict[str, DeviceState]:
        return self.consumer.device_states()

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.consumer.counts)

    # -- paho ----------------------------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        cfg = self.cfg
        protocol = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
        extra: dict[str, Any] = {} if cfg.protocol == "5" else {"clean_session": False}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=protocol, manual_ack=True, **extra
        )
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls_ca_file or cfg.tls_cert_file:
            client.tls_set(
                ca_certs=str(cfg.tls_ca_file) if cfg.tls_ca_file else None,
                certfile=str(cfg.tls_cert_file) if cfg.tls_cert_file else None,
                keyfile=str(cfg.tls_key_file) if cfg.tls_key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if rc.is_failure:
            log.error("client: broker %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, rc)
            return
        self._gen += 1
        self._connected.set()
        if flags.session_present:
            log.info("client: resumed the session of %s; the broker replays what was queued", self.cfg.client_id)
            self._subscribed.set()
            return
        for filt in self.cfg.filters():
            client.subscribe(filt, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: list[Any], props: Any) -> None:
        failed = [c for c in codes if getattr(c, "is_failure", False) or c == 0x80]
        if failed:
            log.error("client: subscription refused by the broker: %s (check the ACL)", failed)
            return
        self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("client: connection lost (%s); reconnecting, the session keeps what we miss", rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        token = (self._gen, msg.mid, msg.qos)
        try:
            done = self.consumer.handle(
                msg.topic, bytes(msg.payload), retained=bool(msg.retain), now=time.monotonic(), token=token
            )
        except Exception:  # a bug here must not kill paho's network thread; the message is skipped, not retried
            log.exception("client: message on %s could not be handled; skipped", msg.topic)
            done = [token]
        self._ack(done)

    def _tick_loop(self) -> None:
        next_save = time.monotonic() + _SAVE_EVERY_S
        while not self._stop.wait(_TICK_S):
            self._ack(self.consumer.tick(time.monotonic()))
            if time.monotonic() >= next_save:
                next_save = time.monotonic() + _SAVE_EVERY_S
                self.save_state()

    def _ack(self, tokens: list[Token]) -> None:
        for token in tokens:
            if not isinstance(token, tuple):
                continue
            gen, mid, qos = token
            if gen == self._gen and qos > 0:
                self._client.ack(mid, qos)
