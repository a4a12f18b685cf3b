"""Remote commands on `<prefix>/<device_id>/cmd/<name>`: pause, resume, reload, status; each gets a result message."""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

COMMANDS: tuple[str, ...] = ("pause", "resume", "reload", "status")
RESULT_SCHEMA = "edge-agent/cmd_result/1"
MAX_PAYLOAD_BYTES = 16 * 1024


class Controls(Protocol):
    """What the agent exposes to remote commands. Each returns a JSON-able dict of details or raises ValueError."""

    def pause(self) -> dict[str, Any]: ...

    def resume(self) -> dict[str, Any]: ...

    def reload(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed request: the command name, the request id to echo (any JSON scalar) and its arguments."""

    name: str
    request_id: str | int | float | None
    args: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set when the request itself was malformed


def parse_command(topic_suffix: str, payload: bytes) -> Command | None:
    """`cmd/<name>` + JSON body → Command; None for topics that are not requests (e.g. our own results)."""
    parts = topic_suffix.strip("/").split("/")
    if len(parts) != 2 or parts[0] != "cmd" or not parts[1]:
        return None  # cmd/<name>/result (our own output) or something deeper: not a request
    name = parts[1]
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Command(name, None, error=f"payload too large ({len(payload)} bytes, limit {MAX_PAYLOAD_BYTES})")
    body: Any = {}
    if payload.strip():
        try:
            body = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return Command(name, None, error=f"payload is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return Command(name, None, error='payload must be a JSON object like {"id": "…"}')
    rid = body.get("id", body.get("msg_id"))  # a request in our own envelope style carries msg_id
    if isinstance(rid, bool) or (rid is not None and not isinstance(rid, (str, int, float))):
        return Command(name, None, error="id must be a string or a number")
    if isinstance(rid, str) and len(rid) > 128:
        rid = rid[:128]
    if name not in COMMANDS:
        return Command(name, rid, error=f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
    return Command(name, rid, {k: v for k, v in body.items() if k not in ("id", "msg_id")})


def execute(cmd: Command, controls: Controls) -> dict[str, Any]:
    """Run one command against the agent and build the result payload (never raises)."""
    rid = None if cmd.request_id is None else str(cmd.request_id)
    result: dict[str, Any] = {"command": cmd.name, "request_id": rid, "ok": False, "error": cmd.error, "result": None}
    if cmd.error is None:
        try:
            details = getattr(controls, cmd.name)()
            result.update(ok=True, error=None, result=details)
        except (ValueError, OSError) as exc:
            result["error"] = " ".join(str(exc).split()) or type(exc).__name__
    return result


class CommandQueue:
    """Bounded hand-off from the MQTT network thread to the pipeline loop, which runs the commands."""

    def __init__(self, maxsize: int = 16) -> None:
        self._queue: queue.Queue[Command] = queue.Queue(maxsize=maxsize)
        self.received = 0
        self.dropped = 0

    def on_message(self, topic_suffix: str, payload: bytes) -> None:
        """Publisher subscription callback: parse and enqueue; when full, drop the oldest and count it."""
        cmd = parse_command(topic_suffix, payload)
        if cmd is None:
            return
        self.received += 1
        while True:
            try:
                self._queue.put_nowait(cmd)
                return
            except queue.Full:
                try:
                    old = self._queue.get_nowait()
                    self.dropped += 1
                    log.warning("command queue full; dropped cmd/%s id=%r", old.name, old.request_id)
                except queue.Empty:
                    pass

    def drain(self, controls: Controls, publish: Callable[[str, dict[str, Any]], Any]) -> int:
        """Execute every queued command and publish each result on `cmd/<name>/result`; returns how many ran."""
        count = 0
        while True:
            try:
                cmd = self._queue.get_nowait()
            except queue.Empty:
                return count
            result = execute(cmd, controls)
            if result["ok"]:
                log.info("remote command %s (id=%r) ok", cmd.name, cmd.request_id)
            else:
                log.warning("remote command %s (id=%r) failed: %s", cmd.name, cmd.request_id, result["error"])
            publish(f"cmd/{cmd.name}/result", result)
            count += 1
