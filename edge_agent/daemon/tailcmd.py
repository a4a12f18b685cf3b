"""`edge-agent tail`: the publish stage's pretty-printer, and `--audience`, a live table refreshing in place."""

from __future__ import annotations

import json
import logging
import ssl
import sys
import threading
from typing import Any, TextIO

from edge_agent.config import AgentConfig

log = logging.getLogger(__name__)
CLEAR = "\x1b[H\x1b[J"  # cursor home + clear to end of screen


def _labels(person: dict[str, Any]) -> str:
    if person.get("minor"):
        return "minor (count only)"
    attrs = person.get("attributes") or {}
    return " ".join(f"{k}={v.get('label')}" for k, v in attrs.items() if isinstance(v, dict)) or "-"


def render_audience(latest: dict[str, dict[str, Any]], width: int = 100) -> list[str]:
    """Rows of the live table: one header per camera (counts, dominant group), one row per person present."""
    lines = [f"{'camera':28s} {'present':>7s} {'looking':>7s} {'minors':>6s}  dominant among lookers"]
    for key in sorted(latest):
        a = latest[key]
        dom = a.get("dominant") or {}
        dom_text = " ".join(f"{k}={v}" for k, v in dom.items()) or "-"
        lines.append(
            f"{key[:28]:28s} {a.get('count', 0):7d} {a.get('looking_count', 0):7d} {a.get('minors', 0):6d}  {dom_text}"
        )
        for person in a.get("present", []):
            mark = "*" if person.get("looking") else " "
            lines.append(
                f"  {mark} {str(person.get('track_id', ''))[:10]:10s} dwell {person.get('dwell_s', 0):6.1f}s "
                f"attention {person.get('attention_s', 0):6.1f}s  {_labels(person)}"
            )
    if len(lines) == 1:
        lines.append("(no audience message yet)")
    return [line[:width] for line in lines]


class AudienceView:
    """Keeps the newest audience payload per device/camera and redraws the table (in place on a terminal)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.latest: dict[str, dict[str, Any]] = {}
        self.tty = out.isatty()
        self.count = 0

    def on_message(self, topic: str, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return
        parts = topic.split("/")
        if len(parts) < 5 or not isinstance(doc, dict):
            return
        self.latest[f"{parts[1]}/{parts[3]}"] = doc
        self.count += 1
        text = "\n".join(render_audience(self.latest))
        self.out.write((CLEAR if self.tty else "") + text + "\n" + ("" if self.tty else "\n"))
        self.out.flush()


def check_broker(mqtt: Any, timeout_s: float = 5.0) -> None:
    """Connect once and wait for the broker's CONNACK; OSError saying what happened (DNS, refused, timed out,
    or the broker's own refusal such as bad credentials). `tail` must not wait silently on a broker that is not
    there, and then exit 0 as if it had listened."""
    from edge_agent.netdiag import probe_tcp
    from edge_agent.publish.auth import resolve_credentials, tls_context
    from edge_agent.publish.transport import make_client, unique_client_id

    where = f"MQTT broker {mqtt.host}:{mqtt.effective_port}"
    reach = probe_tcp(mqtt.host, mqtt.effective_port, timeout_s)
    if not reach.ok:
        raise OSError(f"{where}: {reach.text}")
    answered = threading.Event()
    result: list[Any] = []

    def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        result.append(rc)
        answered.set()

    ssl_ctx = tls_context(mqtt.tls) if mqtt.tls.enabled else None
    client = make_client(mqtt, unique_client_id("tail-check"), resolve_credentials(mqtt), ssl_ctx)
    client.on_connect = on_connect
    try:
        client.connect(mqtt.host, mqtt.effective_port, keepalive=mqtt.keepalive_s)
        client.loop_start()
        if not answered.wait(timeout_s):
            raise OSError(f"{where}: accepted TCP but sent no MQTT answer within {timeout_s:g}s (not a broker?)")
        rc = result[0]
        if getattr(rc, "is_failure", False):
            raise OSError(f"{where} refused the connection: {rc}")
    except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
        raise OSError(f"{where}: {type(exc).__name__}: {exc}") from None
    finally:
        client.disconnect()
        client.loop_stop()


def _client(cfg: AgentConfig, on_message: Any, topic: str) -> Any:
    from edge_agent.publish.auth import resolve_credentials, tls_context
    from edge_agent.publish.transport import make_client, unique_client_id

    mqtt = cfg.mqtt
    ssl_ctx = tls_context(mqtt.tls) if mqtt.tls.enabled else None
    client = make_client(mqtt, unique_client_id("tail"), resolve_credentials(mqtt), ssl_ctx)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, msg: on_message(msg.topic, bytes(msg.payload))
    client.connect(mqtt.host, mqtt.effective_port, keepalive=mqtt.keepalive_s)
    return client


def run_audience(
    cfg: AgentConfig, device_id: str | None, count: int | None, timeout_s: float | None, out: TextIO | None = None
) -> int:
    """Show the live audience table until Ctrl-C, `count` messages or `timeout_s`; returns the exit code."""
    view = AudienceView(out or sys.stdout)
    topic = f"{cfg.mqtt.prefix}/{device_id or '+'}/cameras/+/audience"
    done = threading.Event()

    def on_message(t: str, p: bytes) -> None:
        view.on_message(t, p)
        if count is not None and view.count >= count:
            done.set()

    try:
        client = _client(cfg, on_message, topic)
    except OSError as exc:
        raise OSError(f"cannot connect to {cfg.mqtt.host}:{cfg.mqtt.effective_port}: {exc.strerror or exc}") from None
    client.loop_start()
    try:
        done.wait(timeout_s)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


def run_tail(
    cfg: AgentConfig,
    *,
    device_id: str | None,
    audience: bool,
    raw_json: bool,
    count: int | None,
    timeout_s: float | None,
) -> int:
    """`edge-agent tail`: audience table, or the publish stage's one-line-per-message printer.

    Raises OSError (exit 1) when no broker answers, so a script can tell "nothing published" from "not listening".
    """
    check_broker(cfg.mqtt)
    log.info("tail: connected to %s:%d, listening", cfg.mqtt.host, cfg.mqtt.effective_port)
    if audience:
        return run_audience(cfg, device_id, count, timeout_s)
    from edge_agent.publish import tail

    return int(tail.run(cfg.mqtt, device_id=device_id, raw_json=raw_json, count=count, timeout_s=timeout_s) or 0)
