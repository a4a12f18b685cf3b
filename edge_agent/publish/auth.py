"""Broker credentials and TLS: password from env/systemd credentials, TLS 1.2+ context, plaintext-password guard."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.config.errors import ConfigError
from edge_agent.config.secrets import read_secret
from edge_agent.publish.config import MqttConfig, TlsConfig

PASSWORD_ENV = "EDGE_AGENT_MQTT_PASSWORD"
KEY_PASSPHRASE_ENV = "EDGE_AGENT_TLS_KEY_PASSPHRASE"


@dataclass(frozen=True, slots=True)
class Credentials:
    """User name and password for CONNECT; the password never appears in repr or logs."""

    username: str | None
    password: str | None = field(default=None, repr=False)


def resolve_credentials(cfg: MqttConfig) -> Credentials:
    """Read the password and refuse configurations that would leak it. Raises ConfigError (one line)."""
    if not cfg.username:
        return Credentials(None, None)
    password = read_secret(PASSWORD_ENV, cfg.password_credential)
    if not password:
        raise ConfigError(
            f"mqtt.username = {cfg.username!r} needs a password: set ${PASSWORD_ENV} or the systemd credential "
            f"{cfg.password_credential} ($CREDENTIALS_DIRECTORY/{cfg.password_credential})"
        )
    if not cfg.tls.enabled and not cfg.allow_plaintext_password:
        raise ConfigError(
            f"mqtt: refusing to send the password for {cfg.username!r} unencrypted to {cfg.host}:{cfg.effective_port}; "
            "set mqtt.tls.enabled = true, or mqtt.allow_plaintext_password = true if the network is trusted"
        )
    return Credentials(cfg.username, password)


def _key_file(tls: TlsConfig) -> Path | None:
    if tls.key_file is not None:
        return tls.key_file
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if tls.cert_file is not None and cred_dir:
        candidate = Path(cred_dir) / tls.key_credential
        if candidate.is_file():
            return candidate
    return None


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """An SSLContext for the broker connection. Raises ConfigError naming the key for unreadable files."""
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file) if tls.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"mqtt.tls.ca_file = '{tls.ca_file}' cannot be loaded ({exc}); expected a PEM CA file"
        ) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if tls.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = tls.verify_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED  # the chain is always verified; only the name check is optional
    if tls.cert_file is not None:
        key = _key_file(tls)
        passphrase = read_secret(KEY_PASSPHRASE_ENV, tls.key_passphrase_credential)
        try:
            ctx.load_cert_chain(str(tls.cert_file), str(key) if key else None, password=passphrase)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"mqtt.tls.cert_file = '{tls.cert_file}' / key {key} cannot be loaded ({exc}); expected PEM "
                "certificate and key (encrypted keys need $EDGE_AGENT_TLS_KEY_PASSPHRASE)"
            ) from None
    return ctx
