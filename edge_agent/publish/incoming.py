"""A message received on one of the publisher's subscriptions (commands), as handed to the subscriber."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message received on a subscription: the topic under `<prefix>/<device_id>/`, payload, retain flag."""

    topic_suffix: str
    payload: bytes
    retained: bool


CommandCallback = Callable[[Incoming], None]
