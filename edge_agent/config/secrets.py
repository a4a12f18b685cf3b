"""Secrets (MQTT password, TLS key passphrase) from the environment or systemd credentials, never the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edge_agent.config.errors import ConfigError

# Keys that would put a secret into config.toml; each maps to where the secret belongs instead.
SECRET_KEYS: dict[str, tuple[str, str]] = {
    "password": ("EDGE_AGENT_MQTT_PASSWORD", "mqtt_password"),
    "passphrase": ("EDGE_AGENT_TLS_KEY_PASSPHRASE", "tls_key_passphrase"),
    "key_password": ("EDGE_AGENT_TLS_KEY_PASSPHRASE", "tls_key_passphrase"),
    "keyfile_password": ("EDGE_AGENT_TLS_KEY_PASSPHRASE", "tls_key_passphrase"),
}


def reject_secrets_in_file(source: str, raw: Any, prefix: str = "") -> None:
    """Raise ConfigError for any secret-looking key anywhere in the parsed TOML, telling where it belongs."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if str(key).lower() in SECRET_KEYS:
                env, cred = SECRET_KEYS[str(key).lower()]
                raise ConfigError(
                    f"{source}: {path}: secrets are never read from the config file; set ${env} or the systemd "
                    f"credential {cred} (LoadCredential={cred}:/etc/edge-agent/{cred})"
                )
            reject_secrets_in_file(source, value, path)
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            reject_secrets_in_file(source, item, f"{prefix}[{i}]")


def read_secret(env_var: str, credential: str) -> str | None:
    """The secret from $env_var, else from $CREDENTIALS_DIRECTORY/credential; None when neither is set."""
    value = os.environ.get(env_var)
    if value:
        return value
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = Path(cred_dir) / credential
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n") or None
        except OSError:
            return None
    return None
