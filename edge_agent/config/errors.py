"""ConfigError: the one typed error for a bad config file, always a single line naming key, value and fix."""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(ValueError):
    """The config file cannot be used; the message is one line the CLI prints before exiting 2.

    `problems` holds one line per problem found (the message names the first and how many more), so
    `check-config` can list every one of them.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(" ".join(str(message).split()))
        self.problems: list[str] = [" ".join(str(p).split()) for p in problems] or [str(self)]
