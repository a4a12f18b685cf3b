"""Read config.toml with tomllib and validate it into AgentConfig, turning every problem into one ConfigError line."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge_agent.config.errors import ConfigError
from edge_agent.config.errors_format import format_validation_error
from edge_agent.config.model import AgentConfig
from edge_agent.config.secrets import reject_secrets_in_file


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """tomllib with its error turned into `source: line L, column C: reason`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid TOML"
        raise ConfigError(f"{source}: not valid TOML: {reason}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: nested too deeply") from None


def validate_config(raw: dict[str, Any], source: str = "config") -> AgentConfig:
    """Validate already-parsed TOML data (also used by `reload` and by tests)."""
    reject_secrets_in_file(source, raw)
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, AgentConfig, raw, exc)) from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None


def parse_config(text: str, source: str = "config") -> AgentConfig:
    """Parse and validate TOML text."""
    return validate_config(parse_toml(text, source), source)


def load_config(path: str | Path | None) -> AgentConfig:
    """Load `path` (None → all defaults). Raises ConfigError with a one-line message naming key, value and fix."""
    if path is None:
        return AgentConfig()
    path = Path(path)
    source = path.name if path.name else str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, expected a TOML file: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (bad byte at offset {exc.start})") from None
    return parse_config(text, source)


ENV_CONFIG = "EDGE_AGENT_CONFIG"
SYSTEM_CONFIG = Path("/etc/edge-agent/config.toml")
BUILTIN = "built-in defaults"


def discover_config(explicit: str | Path | None, system: Path = SYSTEM_CONFIG) -> Path | None:
    """The config file a daemon user expects: `-c`, else $EDGE_AGENT_CONFIG, else /etc/edge-agent/config.toml if it
    exists, else None (built-in defaults). A path named by -c or the variable must exist; the system one may not."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(ENV_CONFIG, "").strip()
    if env:
        return Path(env)
    return system if system.is_file() else None


def describe_origin(path: Path | None, explicit: str | Path | None) -> str:
    """`/etc/edge-agent/config.toml (system default)` etc., for the one start-up line naming the config."""
    if path is None:
        return BUILTIN
    if explicit is not None:
        return f"{path} (command line)"
    if os.environ.get(ENV_CONFIG, "").strip():
        return f"{path} (${ENV_CONFIG})"
    return f"{path} (system default)"
