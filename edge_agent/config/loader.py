"""Read config.toml with tomllib and validate it into AgentConfig, turning every problem into one ConfigError line."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path, PurePath
from typing import Any

from pydantic import ValidationError

from edge_agent.config.errors import ConfigError
from edge_agent.config.errors_format import format_all, format_validation_error
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


def _as_json(raw: dict[str, Any], source: str) -> str:
    """The TOML data as JSON text, so pydantic can validate it in strict JSON mode.

    Why JSON mode: strict validation of Python objects would refuse a string for a Path; strict JSON keeps
    exactly the conversions a TOML file needs (string → path, integer → float) and refuses the sloppy ones
    (true for a number, "false" or 0 for a boolean, "1883" for an integer).
    """

    def other(value: Any) -> Any:
        if isinstance(value, PurePath):  # callers that validate Python data (tests, reload) may pass paths
            return str(value)
        where = _find(raw, value) or "(somewhere)"
        raise ConfigError(
            f"{source}: {where} = {value}: dates and times are not used in this file; use a string or number"
        )

    try:
        return json.dumps(raw, default=other, allow_nan=True)
    except ValueError as exc:  # circular data from a Python caller
        raise ConfigError(f"{source}: cannot be validated: {exc}") from None


def _find(node: Any, target: Any, path: str = "") -> str | None:
    """The dotted key path of `target` inside nested TOML data (for the error line)."""
    if node is target:
        return path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        sub = (
            f"{path}.{key}" if isinstance(key, str) and path else str(key) if isinstance(key, str) else f"{path}[{key}]"
        )
        found = _find(child, target, sub)
        if found is not None:
            return found
    return None


def validate_config(raw: dict[str, Any], source: str = "config") -> AgentConfig:
    """Validate already-parsed TOML data strictly (also used by `reload` and by tests).

    Raises ConfigError whose message names the first problem and whose `problems` lists all of them.
    """
    reject_secrets_in_file(source, raw)
    try:
        return AgentConfig.model_validate_json(_as_json(raw, source), strict=True)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(source, AgentConfig, raw, exc), format_all(source, AgentConfig, raw, exc)
        ) from None
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
    for bom, name in BOMS:
        if data.startswith(bom):
            raise ConfigError(
                f"{source}: starts with a {name} byte-order mark (BOM); save it as UTF-8 without a BOM "
                "(e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`)"
                if name == "UTF-8"
                else f"{source}: not UTF-8 text: it starts with a {name} byte-order mark (BOM); save it as UTF-8"
            )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (bad byte at offset {exc.start})") from None
    return parse_config(text, source)


# UTF-32 first: its little-endian mark begins with UTF-16's.
BOMS = (
    (b"\xef\xbb\xbf", "UTF-8"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


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
