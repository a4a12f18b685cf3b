"""Configuration: config.toml → validated AgentConfig; secrets from env/credentials; device id and config hash."""

from edge_agent.config.errors import ConfigError
from edge_agent.config.identity import config_hash, default_device_id
from edge_agent.config.loader import describe_origin, discover_config, load_config, parse_config, validate_config
from edge_agent.config.model import AgentConfig
from edge_agent.config.secrets import read_secret

__all__ = [
    "AgentConfig",
    "ConfigError",
    "config_hash",
    "default_device_id",
    "describe_origin",
    "discover_config",
    "load_config",
    "parse_config",
    "read_secret",
    "validate_config",
]
