"""ConfigError: the one typed error for a bad config file, always a single line naming key, value and fix."""

from __future__ import annotations


class ConfigError(ValueError):
    """The config file cannot be used; the message is one line the CLI prints before exiting 2."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
