"""Broker endpoints for `mqtt.hosts`: fail over in order, and return to the first one after a while.

A failed connection attempt, or a lost connection, moves paho to the next endpoint for its next (backed-off)
attempt (set in on_pre_connect, the one moment paho allows it), so the agent walks the list in order and wraps
around. While connected to any but the first, the sender checks every `failback_s` whether the first answers
a TCP connect; if it does, the publisher disconnects cleanly (so the broker drops its Last Will) and the same
paho client reconnects there, as after a lost connection. Everything else (outbox, seq, per-topic order,
re-sending what was in flight) is the publisher's, and holds across a switch exactly as across any reconnect.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

    from edge_agent.publish.config import MqttConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str, default_port: int) -> Endpoint:
    """`host`, `host:port`, `[v6]:port` → Endpoint; ValueError with the expected form."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not host or (port and not port.isdigit()) or not 1 <= int(port or default_port) <= 65535:
        raise ValueError(f'{text!r} is not "host:port" (e.g. "broker-a.example.net:8883")')
    return Endpoint(host, int(port or default_port))


class Endpoints:
    """The ordered endpoint list and which one the client is on (thread-safe: paho's thread and the sender)."""

    def __init__(self, cfg: MqttConfig) -> None:
        default = cfg.effective_port
        hosts = cfg.hosts or [f"{cfg.host}:{default}" if ":" not in cfg.host else f"[{cfg.host}]:{default}"]
        self.endpoints = [parse_endpoint(h, default) for h in hosts]
        self.failback_s = cfg.failback_s
        self._index = 0
        self._connected_since: float | None = None
        self._next_probe = 0.0
        self._returning = False  # the next disconnect is our own, to go back to the first endpoint
        self._lock = threading.Lock()

    @property
    def current(self) -> Endpoint:
        return self.endpoints[self._index]

    @property
    def several(self) -> bool:
        return len(self.endpoints) > 1

    def failed(self) -> None:
        """The current endpoint failed (attempt or connection): the next attempt goes to the next one."""
        with self._lock:
            self._connected_since = None
            if self._returning:  # the publisher disconnected on purpose: stay on the first endpoint
                self._returning = False
                return
            if not self.several:
                return
            old = self.current
            self._index = (self._index + 1) % len(self.endpoints)
            new = self.current
        log.warning("mqtt: %s failed; the next attempt goes to %s", old, new)

    def apply(self, client: mqtt.Client) -> None:
        """Point paho at the current endpoint; call from on_pre_connect, just before paho opens the socket.

        paho's public `host`/`port` setters refuse while the client is CONNECTING, which is the state during
        on_pre_connect, so the attributes they guard are set directly (reconnect() reads them right after).
        """
        ep = self.current
        if (client.host, client.port) != (ep.host, ep.port):
            client._host, client._port = ep.host, ep.port  # see the docstring

    def connected(self) -> None:
        with self._lock:
            self._connected_since = time.monotonic()
            self._next_probe = self._connected_since + self.failback_s

    def should_fail_back(self, now: float | None = None) -> bool:
        """On a fallback endpoint for `failback_s` and the first one accepts TCP again: time to go back."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._index == 0 or self._connected_since is None or not self.failback_s or now < self._next_probe:
                return False
            self._next_probe = now + self.failback_s
            first = self.endpoints[0]
        try:
            with socket.create_connection((first.host, first.port), timeout=2.0):
                pass
        except OSError:
            log.debug("mqtt: first endpoint %s still unreachable; staying on %s", first, self.current)
            return False
        log.info("mqtt: first endpoint %s is back; returning to it from %s", first, self.current)
        return True

    def to_first(self) -> Endpoint:
        """Make the first endpoint current; the disconnect that the caller makes next does not advance it."""
        with self._lock:
            self._index = 0
            self._returning = True
            return self.current
