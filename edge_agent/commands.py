"""Remote commands on `<prefix>/<device_id>/cmd/<name>`: pause, resume, reload, status; each gets a result message.

Rules (docs/mqtt.md, "Commands"): a retained or empty message is not a command (ignored, counted); every
malformed request within the rate limit gets an error result; bursts beyond the rate limit are counted and
not answered, so a flood can neither run `reload` a hundred times nor fill the outbox with replies. Every
received request ends in exactly one counter: results (ok/failed), rate_limited, queue_dropped or ignored.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge_agent.publish.incoming import Incoming
from edge_agent.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

COMMANDS: tuple[str, ...] = ("pause", "resume", "reload", "status")
RESULT_SCHEMA = "edge-agent/cmd_result/1"
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_DEPTH = 32
BURST = 20  # requests answered at once
RATE_PER_S = 10.0  # sustained


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
    code: str | None = None  # malformed / unknown_command, with `error`


def _too_deep(payload: bytes, limit: int = MAX_DEPTH) -> bool:
    """Nesting deeper than `limit`, found without parsing (json.loads would recurse; brackets in strings count
    too, which errs on the side of refusing absurd requests)."""
    depth = 0
    for byte in payload:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def _malformed(name: str, why: str) -> Command:
    return Command(name, None, error=why, code="malformed")


def parse_command(topic_suffix: str, payload: bytes) -> Command | None:
    """`cmd/<name>` + JSON body → Command; None for topics that are not requests (e.g. our own results)."""
    parts = topic_suffix.strip("/").split("/")
    if len(parts) != 2 or parts[0] != "cmd" or not parts[1]:
        return None  # cmd/<name>/result (our own output) or something deeper: not a request
    name = parts[1][:64]
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _malformed(name, f"payload too large ({len(payload)} bytes, limit {MAX_PAYLOAD_BYTES})")
    if _too_deep(payload):
        return _malformed(name, f"payload is nested deeper than {MAX_DEPTH} levels")
    try:
        body: Any = json.loads(payload.decode("utf-8")) if payload.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return _malformed(name, f"payload is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _malformed(name, 'payload must be a JSON object like {"id": "…"}')
    rid = body.get("id", body.get("msg_id"))  # a request in our own envelope style carries msg_id
    if isinstance(rid, bool) or (rid is not None and not isinstance(rid, (str, int, float))):
        return _malformed(name, "id must be a string or a number")
    if isinstance(rid, str) and len(rid) > 128:
        rid = rid[:128]
    if name not in COMMANDS:
        known = ", ".join(COMMANDS)
        return Command(name, rid, error=f"unknown command {name!r}; known: {known}", code="unknown_command")
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
            result["code"] = "failed"
    else:
        result["code"] = cmd.code or "malformed"
    return result


class TokenBucket:
    """`take()` is True for at most `burst` calls at once and `rate` per second on average."""

    def __init__(self, rate: float = RATE_PER_S, burst: int = BURST) -> None:
        self.rate, self.burst = rate, float(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class CommandQueue:
    """Bounded hand-off from the MQTT network thread to the pipeline loop, which runs the commands."""

    def __init__(self, maxsize: int = 2 * BURST, bucket: TokenBucket | None = None) -> None:
        # room for a whole burst: what the rate limit admits is answered, unless the pipeline is stuck
        self._queue: queue.Queue[Command] = queue.Queue(maxsize=maxsize)
        self._bucket = bucket or TokenBucket()
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.warnings = RateLimitedLog()

    @property
    def received(self) -> int:
        return self.counts["received"]

    @property
    def dropped(self) -> int:
        return self.counts["queue_dropped"]

    def on_message(self, msg: Incoming) -> None:
        """Publisher subscription callback (network thread): filter, rate-limit, parse and enqueue."""
        cmd = parse_command(msg.topic_suffix, msg.payload)
        if cmd is None:
            return
        with self._lock:
            self.counts["received"] += 1
            reason = "retained" if msg.retained else "empty" if not msg.payload.strip() else None
            if reason is not None:
                self.ignored[reason] += 1
                self.warnings.warn("command", log, "command on %s ignored: %s message", msg.topic_suffix, reason)
                return
            if not self._bucket.take():
                self.counts["rate_limited"] += 1
                self.warnings.warn(
                    "command", log, "commands arrive too fast; %s not answered (rate limit)", msg.topic_suffix
                )
                return
        self._enqueue(cmd)

    def request(self, name: str, request_id: str) -> None:
        """A command from inside the device (SIGHUP → reload): not rate-limited, answered like the others."""
        with self._lock:
            self.counts["received"] += 1
        if name not in COMMANDS:  # answered as an error like a remote one, never run (getattr would raise)
            known = ", ".join(COMMANDS)
            err = f"unknown command {name!r}; known: {known}"
            self._enqueue(Command(name, request_id, error=err, code="unknown_command"))
            return
        self._enqueue(Command(name, request_id))

    def _enqueue(self, cmd: Command) -> None:
        while True:
            try:
                self._queue.put_nowait(cmd)
                return
            except queue.Full:
                try:
                    old = self._queue.get_nowait()
                except queue.Empty:
                    continue
                with self._lock:
                    self.counts["queue_dropped"] += 1
                self.warnings.warn("command", log, "command queue full; dropped cmd/%s id=%r", old.name, old.request_id)

    def drain(self, controls: Controls, publish: Callable[[str, dict[str, Any]], Any]) -> int:
        """Execute every queued command and publish each result on `cmd/<name>/result`; returns how many ran."""
        count = 0
        while True:
            try:
                cmd = self._queue.get_nowait()
            except queue.Empty:
                return count
            result = execute(cmd, controls)
            with self._lock:
                self.counts["results"] += 1
                self.counts["ok" if result["ok"] else "failed"] += 1
            if result["ok"]:
                log.info("remote command %s (id=%r) ok", cmd.name, cmd.request_id)
            else:
                self.warnings.warn(
                    "command", log, "remote command %s (id=%r) failed: %s", cmd.name, cmd.request_id, result["error"]
                )
            publish(f"cmd/{cmd.name}/result", result)
            count += 1

    def stats(self) -> dict[str, Any]:
        """`stats.commands`: received = results + rate_limited + queue_dropped + ignored (+ still queued)."""
        with self._lock:
            out: dict[str, Any] = {
                k: self.counts[k] for k in ("received", "results", "ok", "failed", "rate_limited", "queue_dropped")
            }
            out["ignored"] = {"retained": self.ignored["retained"], "empty": self.ignored["empty"]}
        return out
