"""Where outgoing messages go: the MQTT publisher, plus stdout JSON lines for `run --print`."""

from __future__ import annotations

import json
import logging
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from edge_agent.publish.storage import OutboxStorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish under `<prefix>/<device_id>/<topic_suffix>`; the publisher adds the envelope."""

    topic_suffix: str
    payload: dict[str, Any] = field(repr=False)
    schema: str
    camera_id: str | None = None
    retain: bool = False


class PublisherLike(Protocol):
    def submit(
        self,
        topic_suffix: str,
        payload: dict[str, Any],
        *,
        schema: str,
        camera_id: str | None = None,
        retain: bool = False,
    ) -> str: ...


class Sink:
    """Submits to the publisher (and prints track events with --print). A refused message is logged and counted."""

    def __init__(self, publisher: PublisherLike | None, print_events: bool = False, out: TextIO | None = None) -> None:
        self._publisher = publisher
        self._print = print_events
        self._out = out or sys.stdout
        self._lock = threading.Lock()
        self.submitted = 0
        self.failed = 0

    def send(self, msg: Outgoing) -> None:
        if self._print and msg.topic_suffix.endswith("/tracks"):
            self._print_line(msg)
        if self._publisher is None:
            return
        try:
            self._publisher.submit(
                msg.topic_suffix, msg.payload, schema=msg.schema, camera_id=msg.camera_id, retain=msg.retain
            )
            self.submitted += 1
        except OutboxStorageError:  # disk full etc.: counted and logged (once a minute) by the outbox itself
            self.failed += 1
        except Exception as exc:  # noqa: BLE001 - one unpublishable message must not stop the pipeline
            self.failed += 1
            log.error("cannot publish %s: %s", msg.topic_suffix, exc)

    def _print_line(self, msg: Outgoing) -> None:
        line = json.dumps({"camera_id": msg.camera_id, **msg.payload}, separators=(",", ":"), default=str)
        with self._lock:
            try:
                self._out.write(line + "\n")
                self._out.flush()
            except (OSError, ValueError):  # stdout closed (e.g. a pipe into `head`): keep running
                self._print = False
