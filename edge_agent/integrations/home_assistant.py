"""Home Assistant MQTT discovery: retained entity configs that read the agent's own topics, and their removal.

The entities need no extra state messages: each config points `state_topic` at an existing agent topic
(`audience`, `summary`, `cameras/<id>/status`) with a `value_template`, and ties availability to the retained
`status` topic, whose Last Will turns every entity unavailable when the device vanishes. The configs go out
over a short-lived second connection (the outbox carries only the agent's enveloped messages), retried with
backoff until the broker has acknowledged all of them. `decommission()` clears every retained discovery
config of the device, and the device's own retained state, by publishing empty retained messages.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from edge_agent import __version__
from edge_agent.config import AgentConfig
from edge_agent.publish import failover, transport
from edge_agent.publish.auth import resolve_credentials, tls_context

log = logging.getLogger(__name__)

AVAILABILITY_TEMPLATE = "{{ value_json.state }}"


@dataclass(frozen=True, slots=True)
class Entity:
    """One per-camera entity: which agent topic it reads and how."""

    key: str
    component: str  # "sensor" or "binary_sensor"
    name: str
    topic: str  # suffix under cameras/<id>/
    template: str
    extra: tuple[tuple[str, Any], ...] = ()
    interval: bool = False  # a per-interval figure (from `summary`): expires when summaries stop


ENTITIES: tuple[Entity, ...] = (
    Entity(
        "people_present",
        "sensor",
        "people present",
        "audience",
        "{{ value_json.count }}",
        (("state_class", "measurement"), ("icon", "mdi:account-group")),
    ),
    Entity(
        "people_looking",
        "sensor",
        "people looking",
        "audience",
        "{{ value_json.looking_count }}",
        (("state_class", "measurement"), ("icon", "mdi:eye")),
    ),
    Entity(
        "viewers",
        "sensor",
        "viewers (last interval)",
        "summary",
        "{{ value_json.viewers }}",
        (("state_class", "measurement"), ("icon", "mdi:account-eye")),
        interval=True,
    ),
    Entity(
        "passers_by",
        "sensor",
        "passers-by (last interval)",
        "summary",
        "{{ value_json.passers_by }}",
        (("state_class", "measurement"), ("icon", "mdi:walk")),
        interval=True,
    ),
    Entity(
        "average_dwell",
        "sensor",
        "average dwell (last interval)",
        "summary",
        "{{ value_json.dwell_s.average }}",
        (
            ("device_class", "duration"),
            ("unit_of_measurement", "s"),
            ("state_class", "measurement"),
            ("suggested_display_precision", 1),
        ),
        interval=True,
    ),
    Entity(
        "camera",
        "binary_sensor",
        "camera",
        "status",
        "{{ 'ON' if value_json.state == 'online' else 'OFF' }}",
        (
            ("device_class", "connectivity"),
            ("payload_on", "ON"),
            ("payload_off", "OFF"),
            ("entity_category", "diagnostic"),
        ),
    ),
)


def node_id(cfg: AgentConfig, device_id: str) -> str:
    return cfg.integrations.home_assistant.node_id or "edge_agent_" + _slug(device_id)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def discovery_configs(cfg: AgentConfig, device_id: str) -> dict[str, dict[str, Any]]:
    """Discovery topic → config payload for every enabled camera (pure: the tests call it directly)."""
    ha = cfg.integrations.home_assistant
    node = node_id(cfg, device_id)
    base = f"{cfg.mqtt.prefix}/{device_id}"
    device = {
        "identifiers": [node],
        "name": f"edge-agent {device_id}",
        "manufacturer": "edge-agent",
        "model": "audience analytics agent",
        "sw_version": __version__,
    }
    availability = [
        {
            "topic": f"{base}/status",
            "value_template": AVAILABILITY_TEMPLATE,
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    ]
    expire = round(ha.summary_expiry_intervals * cfg.analytics.summary.interval_s) if ha.summary_expiry_intervals else 0
    out: dict[str, dict[str, Any]] = {}
    for cam in (c.id for c in cfg.cameras if c.enabled):
        for ent in ENTITIES:
            object_id = f"{_slug(cam)}_{ent.key}"
            payload: dict[str, Any] = {
                "name": f"{cam} {ent.name}",
                "unique_id": f"{node}_{object_id}",
                "state_topic": f"{base}/cameras/{cam}/{ent.topic}",
                "value_template": ent.template,
                "availability": availability,
                "availability_mode": "latest",
                "device": device,
                "origin": {"name": "edge-agent", "sw_version": __version__},
                "qos": 1,
                **dict(ent.extra),
            }
            if ent.interval and expire:
                payload["expire_after"] = expire
            out[f"{ha.discovery_prefix}/{ent.component}/{node}/{object_id}/config"] = payload
    return out


def _client(cfg: AgentConfig, device_id: str, role: str) -> tuple[transport.Client, failover.Endpoints]:
    """A configured client that walks `mqtt.hosts` like the publisher does (start it with `_start`)."""
    creds = resolve_credentials(cfg.mqtt)
    ssl_ctx = tls_context(cfg.mqtt.tls) if cfg.mqtt.tls.enabled else None
    client = transport.make_client(cfg.mqtt, transport.unique_client_id(device_id, role), creds, ssl_ctx)
    endpoints = failover.Endpoints(cfg.mqtt)
    client.on_pre_connect = lambda c, _u: endpoints.apply(c)
    client.on_connect_fail = lambda _c, _u: endpoints.failed()
    return client, endpoints


class DiscoveryPublisher:
    """Publishes the discovery configs once, in the background, retrying until every one is acknowledged."""

    def __init__(self, cfg: AgentConfig, device_id: str) -> None:
        self.configs = discovery_configs(cfg, device_id)
        self.done = threading.Event()
        self._cfg = cfg
        self._stop = threading.Event()
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._client, self._endpoints = _client(cfg, device_id, "ha")
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish

    def start(self) -> None:
        if not self.configs:
            self.done.set()
            return
        # paho retries with the agent's backoff until connected, walking mqtt.hosts
        transport.start(self._client, self._cfg.mqtt, self._endpoints.current)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if getattr(rc, "is_failure", False):
            return
        with self._lock:
            self._pending = {
                client.publish(topic, json.dumps(body, separators=(",", ":")), qos=1, retain=True).mid
                for topic, body in self.configs.items()
            }

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any = None, props: Any = None) -> None:
        if getattr(rc, "is_failure", False):  # e.g. 0x87: the ACL does not let this device write its configs
            log.warning("home assistant: the broker refused a discovery config (%s); check the ACL", rc)
        with self._lock:
            self._pending.discard(mid)
            finished = not self._pending
        if finished and not self.done.is_set():
            self.done.set()
            log.info("home assistant: %d discovery config(s) published", len(self.configs))
            threading.Thread(target=self.close, name="ha-discovery-close", daemon=True).start()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()


@dataclass(frozen=True, slots=True)
class Decommissioned:
    """What `decommission` cleared: retained topics now empty."""

    discovery: tuple[str, ...]
    state: tuple[str, ...]


def decommission(cfg: AgentConfig, device_id: str, *, settle_s: float = 1.0, timeout_s: float = 15.0) -> Decommissioned:
    """Clear every retained discovery config of this device and its retained `status`/`info`/camera status.

    Finds them by subscribing (the broker hands over what it retains), so configs of cameras removed from the
    config long ago are cleared too. Stop the agent first, or it publishes its state again.
    """
    node = node_id(cfg, device_id)
    filters = [
        f"{cfg.integrations.home_assistant.discovery_prefix}/+/{node}/+/config",
        f"{cfg.mqtt.prefix}/{device_id}/#",
    ]
    retained: set[str] = set()
    last = [time.monotonic()]
    subscribed = threading.Event()
    client, endpoints = _client(cfg, device_id, "decommission")

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain and msg.payload:
            retained.add(msg.topic)
            last[0] = time.monotonic()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
        for f in filters:
            c.subscribe(f, qos=1)

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any = None) -> None:
        last[0] = time.monotonic()  # retained messages follow the SUBACK: wait settle_s from here
        subscribed.set()

    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    transport.start(client, cfg.mqtt, endpoints.current)
    try:
        if not subscribed.wait(timeout_s):
            where = ", ".join(map(str, endpoints.endpoints))
            raise ConnectionError(f"cannot reach the broker {where}")
        while time.monotonic() - last[0] < settle_s:  # retained messages arrive right after the SUBACK
            time.sleep(0.05)
        infos = [client.publish(t, b"", qos=1, retain=True) for t in sorted(retained)]
        for info in infos:
            info.wait_for_publish(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return _split(retained, cfg.integrations.home_assistant.discovery_prefix)


def _split(topics: Iterable[str], discovery_prefix: str) -> Decommissioned:
    disc = tuple(sorted(t for t in topics if t.startswith(discovery_prefix + "/")))
    return Decommissioned(disc, tuple(sorted(t for t in topics if t not in disc)))
