"""`edge-agent tail`: subscribe to the agent's topics and print one line per message (or raw JSON lines).

The CLI wires this up; other views (e.g. an audience table) can register a formatter per schema name with
`register_formatter("audience", fn)`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from edge_agent.publish import transport
from edge_agent.publish.auth import resolve_credentials, tls_context
from edge_agent.publish.config import MqttConfig

log = logging.getLogger(__name__)

ENVELOPE = ("schema", "msg_id", "seq", "epoch", "ts", "device_id", "camera_id", "buffered")
Formatter = Callable[[dict[str, Any]], str]
_FORMATTERS: dict[str, Formatter] = {}
_COLORS = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "dim": "2", "bold": "1"}
MAX_LINE = 240


def register_formatter(schema_name: str, fn: Formatter) -> None:
    """Use `fn(message) -> str` for the body of messages whose schema is `edge-agent/<schema_name>/<n>`."""
    _FORMATTERS[schema_name] = fn


def _paint(text: str, color: str, enabled: bool) -> str:
    return f"\x1b[{_COLORS[color]}m{text}\x1b[0m" if enabled else text


def _scalar(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_scalar(x)}" for k, x in list(v.items())[:4]) + (",…}" if len(v) > 4 else "}")
    if isinstance(v, list):
        return f"[{len(v)}]"
    return str(v)


def generic_body(msg: dict[str, Any]) -> str:
    """key=value for the payload fields (envelope omitted), nested values abbreviated."""
    return " ".join(f"{k}={_scalar(v)}" for k, v in msg.items() if k not in ENVELOPE)


def _stats_body(msg: dict[str, Any]) -> str:
    pub = msg.get("publish", {})
    cams = " ".join(
        f"{cid}:{c.get('processed_fps', 0):.1f}fps"
        for cid, c in (msg.get("cameras") or {}).items()
        if isinstance(c, dict)
    )
    dropped = sum((pub.get("dropped") or {}).values())
    return (
        f"up={msg.get('uptime_s', 0):.0f}s {cams} queue={pub.get('queue_depth', '?')} dropped={dropped} "
        f"connected={pub.get('connected', '?')}"
    ).replace("  ", " ")


register_formatter("stats", _stats_body)
register_formatter("status", lambda m: f"{m.get('state')}" + (f" ({m['reason']})" if m.get("reason") else ""))
register_formatter(
    "camera_status",
    lambda m: f"{m.get('state')} since {m.get('since')}" + (f" ({m['reason']})" if m.get("reason") else ""),
)


def _seq_tag(msg: dict[str, Any]) -> str:
    """`#812` for a numbered message; nothing for status messages, which are outside the sequence."""
    seq = msg.get("seq", "?")
    return "" if seq is None else f"#{seq}"


def format_line(topic: str, payload: bytes, *, retained: bool = False, color: bool = False) -> str:
    """One human line: time, device, topic suffix, schema#seq, flags and a short body."""
    now = datetime.now().strftime("%H:%M:%S.%f")[:-3]
    try:
        msg = json.loads(payload)
    except ValueError:
        msg = None
    if not isinstance(msg, dict):
        text = payload[:80].decode("utf-8", "replace")
        return f"{_paint(now, 'dim', color)} {topic} (not JSON, {len(payload)} bytes) {text!r}"
    parts = topic.split("/", 2)
    device, suffix = (parts[1], parts[2]) if len(parts) == 3 else ("?", topic)
    schema = str(msg.get("schema", "?"))
    name = schema.split("/")[1] if schema.count("/") == 2 else schema
    body = _FORMATTERS.get(name, generic_body)(msg)
    flags = "".join([" [buffered]" if msg.get("buffered") else "", " [retained]" if retained else ""])
    state_color = {"online": "green", "offline": "red", "stalled": "yellow"}.get(str(msg.get("state")), "")
    if state_color:
        body = _paint(body, state_color, color)
    line = (
        f"{_paint(now, 'dim', color)} {device} {_paint(suffix, 'cyan', color)} {name}{_seq_tag(msg)}"
        f"{_paint(flags, 'yellow', color)} {body}"
    )
    return line if len(line) <= MAX_LINE or color else line[: MAX_LINE - 1] + "…"


def json_line(topic: str, payload: bytes, *, retained: bool = False) -> str:
    """Raw mode: {"topic", "retained", "payload"} with the payload parsed when it is JSON."""
    try:
        body: Any = json.loads(payload)
    except ValueError:
        body = payload.decode("utf-8", "replace")
    return json.dumps({"topic": topic, "retained": retained, "payload": body}, separators=(",", ":"))


def tail(
    cfg: MqttConfig,
    device_id: str | None = None,
    *,
    raw_json: bool = False,
    color: bool | None = None,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
    max_messages: int | None = None,
    timeout_s: float | None = None,
) -> int:
    """Print messages under `<prefix>/#` (or one device) until `stop`, `max_messages` or `timeout_s`.

    Returns how many messages were printed. Raises ConfigError for bad credentials/TLS config (one line).
    """
    out = out or sys.stdout
    color = out.isatty() if color is None else color
    stop = stop or threading.Event()
    topic_filter = f"{cfg.prefix}/{device_id}/#" if device_id else f"{cfg.prefix}/#"
    inbox: queue.Queue[tuple[str, bytes, bool]] = queue.Queue(maxsize=10_000)
    client = transport.make_client(
        cfg,
        transport.unique_client_id(device_id or "all", "tail"),
        resolve_credentials(cfg),
        tls_context(cfg.tls) if cfg.tls.enabled else None,
    )

    def on_connect(c: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.error("tail: broker %s:%d refused the connection: %s", cfg.host, cfg.effective_port, rc)
            return
        c.subscribe(topic_filter, qos=1)

    def on_message(c: Any, userdata: Any, m: Any) -> None:
        with contextlib.suppress(queue.Full):  # a slow terminal: drop rather than grow without bound
            inbox.put_nowait((m.topic, bytes(m.payload), bool(m.retain)))

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_connect_fail = lambda c, u: log.error(
        "tail: cannot connect to %s:%d: %s", cfg.host, cfg.effective_port, client.last_error or "connection failed"
    )
    transport.start(client, cfg)
    return _print_loop(inbox, out, stop, raw_json, color, max_messages, timeout_s, client)


def _print_loop(
    inbox: queue.Queue[tuple[str, bytes, bool]],
    out: TextIO,
    stop: threading.Event,
    raw_json: bool,
    color: bool,
    max_messages: int | None,
    timeout_s: float | None,
    client: Any,
) -> int:
    printed = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while not stop.is_set() and (max_messages is None or printed < max_messages):
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                topic, payload, retained = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            line = (
                json_line(topic, payload, retained=retained)
                if raw_json
                else format_line(topic, payload, retained=retained, color=color)
            )
            try:
                out.write(line + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):  # `| head` closed the pipe
                break
            printed += 1
    finally:
        client.disconnect()
        client.loop_stop()
        client.release_sockets()
    return printed


def run(
    cfg: MqttConfig,
    *,
    device_id: str | None = None,
    raw_json: bool = False,
    count: int | None = None,
    timeout_s: float | None = None,
    out: TextIO | None = None,
) -> int:
    """CLI entry for `edge-agent tail`: print until Ctrl-C, `count` messages or `timeout_s`; returns exit code 0."""
    with contextlib.suppress(KeyboardInterrupt):
        tail(cfg, device_id, raw_json=raw_json, out=out, max_messages=count, timeout_s=timeout_s)
    return 0
