"""Config sections of the publish stage: `[mqtt]`, `[mqtt.tls]` and `[outbox]` (pydantic v2, unknown keys rejected).

Secrets are deliberately absent: the MQTT password and the TLS key passphrase come from the environment or
systemd credentials (see `edge_agent.publish.auth`), never from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TlsConfig(BaseModel):
    """TLS to the broker: TLS 1.2 or newer, server certificate and host name verified unless explicitly disabled."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Connect with TLS (usually port 8883).")
    ca_file: Path | None = Field(
        default=None, description="PEM file of the CA(s) that signed the broker certificate. Default: the system CAs."
    )
    cert_file: Path | None = Field(default=None, description="Client certificate (PEM) for mutual TLS; optional.")
    key_file: Path | None = Field(
        default=None,
        description="Client private key (PEM). Default when cert_file is set: $CREDENTIALS_DIRECTORY/<key_credential>.",
    )
    key_credential: str = Field(
        default="mqtt_client_key", description="systemd credential name holding the client key when key_file is unset."
    )
    key_passphrase_credential: str = Field(
        default="tls_key_passphrase",
        description=(
            "systemd credential with the key passphrase (or $EDGE_AGENT_TLS_KEY_PASSPHRASE); only if encrypted."
        ),
    )
    verify_hostname: bool = Field(
        default=True,
        description="Check that the broker certificate names `mqtt.host`. Turn off only for a broker reached by IP "
        "whose certificate lacks that IP; the chain is still verified.",
    )
    min_version: Literal["1.2", "1.3"] = Field(default="1.2", description="Lowest TLS version accepted.")


class MqttConfig(BaseModel):
    """The broker connection: address, topic prefix, MQTT v5 session, authentication and reconnect behaviour."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="localhost", min_length=1, description="Broker host name or IP.")
    hosts: list[str] = Field(
        default_factory=list,
        description='Several brokers (a cluster): ordered "host:port" entries, e.g. ["mq-a:1883", "mq-b:1883"]. '
        "The agent fails over in this order with backoff and returns to the first after failback_s. Replaces "
        "host/port when set. With TLS, each host name must be in its broker's certificate.",
    )
    failback_s: float = Field(
        default=300.0,
        ge=0,
        description="While on a fallback broker, check this often whether the first of `hosts` answers again, "
        "and reconnect there if it does. 0: stay on the fallback until it fails.",
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Broker port. Default: 8883 with TLS, else 1883."
    )
    prefix: str = Field(
        default="edge-agent",
        pattern=r"^[^#+\x00]+$",
        description="Topic prefix; topics are <prefix>/<device_id>/<suffix>. No MQTT wildcards.",
    )
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT protocol version. 5 (default) lets the agent see refused publishes (PUBACK reason codes) "
        "and the broker's maximum packet size; 3.1.1 is for brokers without v5 (refusals then go unnoticed).",
    )
    keepalive_s: int = Field(
        default=30,
        ge=5,
        le=3600,
        description="MQTT keepalive; the broker sends the Last Will after ~1.5x this silence.",
    )
    username: str | None = Field(
        default=None,
        description="Broker user name. The password comes from $EDGE_AGENT_MQTT_PASSWORD or the systemd credential "
        "named by password_credential, never from this file.",
    )
    password_credential: str = Field(
        default="mqtt_password", description="systemd credential file name ($CREDENTIALS_DIRECTORY/<name>)."
    )
    allow_plaintext_password: bool = Field(
        default=False,
        description="Allow sending the password without TLS. Off by default: the agent refuses to start instead.",
    )
    session_expiry_s: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="MQTT v5 session expiry. 0: the broker forgets the session on disconnect, so commands sent "
        "while the device is offline are not replayed stale; outgoing data is kept safe by the outbox instead.",
    )
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60, description="First reconnect delay (doubles each try).")
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600, description="Longest reconnect delay.")
    inflight_window: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Messages handed to the broker and not yet acknowledged (PUBACK) at any time.",
    )
    max_payload_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=268_435_455,
        description="Larger payloads are refused at submit (logged, counted as dropped `oversize`).",
    )
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings.")

    @field_validator("host", "prefix", "username")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        """A NUL or newline in a host or topic would truncate it or split a log line; refuse it here."""
        if value is None:
            return value
        bad = next((c for c in value if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0), None)
        if bad is not None:
            raise ValueError(f"contains the control character {bad!r}; remove it")
        return value

    @field_validator("host")
    @classmethod
    def _host_has_no_spaces(cls, value: str) -> str:
        if value != value.strip() or " " in value:
            raise ValueError("a host name has no spaces; remove them")
        return value

    @field_validator("hosts")
    @classmethod
    def _endpoints(cls, hosts: list[str]) -> list[str]:
        from edge_agent.publish.failover import parse_endpoint

        for h in hosts:
            cls._no_control_characters(h)
            parse_endpoint(h, 1883)
        return hosts

    @model_validator(mode="after")
    def _delays_ordered(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"reconnect_max_s = {self.reconnect_max_s} is below reconnect_min_s = {self.reconnect_min_s}; "
                "make it at least as large"
            )
        return self

    @property
    def effective_port(self) -> int:
        """The configured port, or the IANA default for the transport."""
        if self.port is not None:
            return self.port
        return 8883 if self.tls.enabled else 1883


class OutboxConfig(BaseModel):
    """The persistent store-and-forward queue between `submit` and the broker."""

    model_config = ConfigDict(extra="forbid")

    max_messages: int = Field(
        default=100_000, ge=10, le=10_000_000, description="Most queued messages; beyond it the oldest are dropped."
    )
    max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=64 * 1024,
        le=16 * 1024**3,
        description="Most bytes the outbox keeps on disk (database, WAL and shared-memory files); beyond it the "
        "oldest messages are dropped. Also capped at start-up to the space the state directory has.",
    )
    min_free_bytes: int = Field(
        default=1024 * 1024,
        ge=0,
        le=16 * 1024**3,
        description="Start-up refuses (exit 1, one line, nothing changed) a state directory with less free space.",
    )
    ttl_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="Queued messages older than this are dropped (counted as `ttl`). Retained state is exempt.",
    )
    synchronous: Literal["normal", "full"] = Field(
        default="normal",
        description="SQLite synchronous mode. `normal` (WAL) survives a process crash or SIGKILL without loss; "
        "`full` also survives power loss, at one fsync per message.",
    )
    file_name: str = Field(
        default="outbox.sqlite3", pattern=r"^[A-Za-z0-9_.-]+$", description="File name inside the state directory."
    )
