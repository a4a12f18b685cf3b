"""Building a configured paho-mqtt 2.x client (MQTT v5, TLS, auth, backoff), shared by the publisher and `tail`."""

from __future__ import annotations

import functools
import logging
import secrets
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge_agent.publish.auth import Credentials
from edge_agent.publish.config import MqttConfig
from edge_agent.publish.failover import Endpoint, Endpoints

log = logging.getLogger(__name__)
_F = TypeVar("_F", bound=Callable[..., Any])


class Client(mqtt.Client):
    """A paho client that remembers why the last connection attempt failed (paho's loop swallows the exception)."""

    def __init__(self, client_id: str, protocol: str = "5") -> None:
        if protocol == "5":
            super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
        else:  # 3.1.1: a clean session, since the random client id could never resume it anyway
            super().__init__(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=MQTTProtocolVersion.MQTTv311,
                clean_session=True,
            )
        self.last_error: BaseException | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:  # includes ssl.SSLError: untrusted certificate, wrong host name, ...
            self.last_error = exc
            raise

    def release_sockets(self) -> None:
        """Close paho's sockets, including the wake-up socket pair it leaves to the garbage collector after
        `loop_stop()` (one pair per retired client during failover). Only once its network thread has stopped."""
        self._reset_sockets()

    def _ssl_wrap_socket(self, tcp_sock: Any) -> ssl.SSLSocket:
        """paho's TLS wrap, closing the socket when the handshake fails (paho leaves it to the garbage collector).

        The same steps as paho 2.x: SNI with the broker's name, the connect timeout, a blocking handshake. paho's own
        extra `match_hostname` never runs here: `tls_set_context` makes it follow `check_hostname`, which the context
        already enforces during the handshake.
        """
        if self._ssl_context is None:  # paho calls this only with TLS configured
            raise ValueError("TLS wrap without an SSL context")
        ssl_sock = self._ssl_context.wrap_socket(tcp_sock, server_hostname=self._host, do_handshake_on_connect=False)
        try:
            ssl_sock.settimeout(self._connect_timeout)
            ssl_sock.do_handshake()
        except BaseException:
            ssl_sock.close()  # one socket per failed attempt would otherwise wait for the GC while paho retries
            raise
        return ssl_sock


def unique_client_id(device_id: str, role: str = "") -> str:
    """Device id + random suffix: two processes on one device never kick each other off the broker."""
    stem = f"{device_id}-{role}" if role else device_id
    return f"{stem[:40]}-{secrets.token_hex(4)}"


def make_client(cfg: MqttConfig, client_id: str, creds: Credentials, ssl_ctx: ssl.SSLContext | None) -> Client:
    """A client configured for QoS 1 publishing: backoff, unlimited paho queue (the outbox bounds it), TLS, auth."""
    client = Client(client_id, cfg.protocol)
    client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)  # type: ignore[arg-type]
    client.max_inflight_messages_set(cfg.inflight_window + 8)  # + room for status messages outside the window
    client.max_queued_messages_set(0)
    client.connect_timeout = 5.0
    if ssl_ctx is not None:
        client.tls_set_context(ssl_ctx)
    if creds.username:
        client.username_pw_set(creds.username, creds.password)
    return client


def connect_properties(cfg: MqttConfig) -> Properties | None:
    """MQTT v5 CONNECT properties: the session expiry (0 = session ends with the connection)."""
    if cfg.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho's Properties.__init__ is unannotated
    props.SessionExpiryInterval = cfg.session_expiry_s
    return props


def start(client: Client, cfg: MqttConfig, endpoint: Endpoint | None = None) -> None:
    """Non-blocking connect (to `endpoint`, default the first of mqtt.hosts, else mqtt.host); paho retries."""
    if endpoint is None:
        endpoint = Endpoints(cfg).current
    host, port = endpoint.host, endpoint.port
    client.connect_async(host, port, keepalive=cfg.keepalive_s, properties=connect_properties(cfg))
    client.loop_start()


def subscribe_options(cfg: MqttConfig, *, no_local: bool) -> SubscribeOptions | int:
    """QoS 1; with MQTT v5 optionally no-local (our own publishes are not echoed back to us)."""
    if cfg.protocol == "5":
        return SubscribeOptions(qos=1, noLocal=no_local)
    return 1


def guarded(func: _F) -> _F:
    """A paho callback that cannot raise into (and so cannot kill) paho's network thread."""

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except Exception as exc:
            self.warnings.warn(
                "callback_error", log, "mqtt: %s failed: %s: %s", func.__name__, type(exc).__name__, exc,
                level=logging.ERROR,
            )  # fmt: skip
            log.debug("callback traceback", exc_info=True)
            return None

    return wrapper  # type: ignore[return-value]


def thread_alive(client: mqtt.Client) -> bool:
    """paho's loop thread (a private attribute, but the only handle there is) is running."""
    thread = getattr(client, "_thread", None)
    return thread is not None and thread.is_alive()


def retire(client: mqtt.Client) -> None:
    """Stop an abandoned client without blocking the sender (loop_stop joins paho's thread)."""
    try:
        client.disconnect()
        client.loop_stop()
        if isinstance(client, Client):
            client.release_sockets()
    except Exception as exc:  # noqa: BLE001 - it is being thrown away
        log.debug("mqtt: retiring the old client: %s", exc)
