"""`tail`: one readable line per message, a raw JSON mode, against a real broker."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest

from edge_agent.publish.config import MqttConfig, OutboxConfig
from edge_agent.publish.envelope import encode, mark_buffered, new_msg_id
from edge_agent.publish.mqtt import Publisher
from edge_agent.publish.tail import format_line, json_line, register_formatter, run, tail


def msg(schema: str, body: dict, camera_id: str | None = None) -> bytes:
    seq = None if schema == "edge-agent/status/1" else 42  # status is outside the sequence
    return encode(
        body, schema=schema, msg_id=new_msg_id(), seq=seq, epoch=1, ts=time.time(), device_id="d1", camera_id=camera_id
    )


def test_status_line_names_device_topic_schema_seq_and_state() -> None:
    line = format_line(
        "edge-agent/d1/status", msg("edge-agent/status/1", {"state": "offline", "reason": "shutdown"}), retained=True
    )
    assert " d1 status status [retained] offline (shutdown)" in line
    assert "\x1b[" not in line


def test_buffered_messages_are_flagged_and_colour_is_optional() -> None:
    data = mark_buffered(msg("edge-agent/camera_status/1", {"state": "stalled", "since": "x"}, "cam1"))
    plain = format_line("edge-agent/d1/cameras/cam1/status", data)
    assert "cameras/cam1/status camera_status#42 [buffered] stalled since x" in plain
    assert "\x1b[33m" in format_line("edge-agent/d1/cameras/cam1/status", data, color=True)


def test_unknown_schemas_get_a_compact_key_value_body_and_registered_formatters_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edge_agent.publish import tail as tail_mod

    # Other tests (the CLI's tail) register the analytics formatters process-wide; start from an empty registry.
    monkeypatch.setattr(tail_mod, "_FORMATTERS", {})
    data = msg("edge-agent/tracks/1", {"event": "end", "track_id": "t1", "dwell_s": 3.14159, "box": [1, 2, 3, 4]}, "c")
    line = format_line("edge-agent/d1/cameras/c/tracks", data)
    assert "event=end track_id=t1 dwell_s=3.14 box=[4]" in line and "msg_id" not in line
    register_formatter("tracks", lambda m: f"visit {m['track_id']} {m['event']}")
    try:
        assert format_line("edge-agent/d1/cameras/c/tracks", data).endswith("visit t1 end")
    finally:
        from edge_agent.publish import tail as tail_mod

        tail_mod._FORMATTERS.pop("tracks")


def test_non_json_payload_is_shown_not_fatal() -> None:
    assert "(not JSON, 3 bytes)" in format_line("x/y/z", b"\xff\x00a")
    assert json.loads(json_line("x/y/z", b"abc")) == {"topic": "x/y/z", "retained": False, "payload": "abc"}


def test_tail_prints_what_the_agent_publishes(broker, tmp_path: Path) -> None:
    cfg = MqttConfig(
        host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5, protocol=broker.protocol
    )
    pub = Publisher(cfg, OutboxConfig(), "d1", tmp_path)
    pub.start()
    pub.submit(
        "info",
        {"software": {"name": "edge-agent", "version": "0"}, "models": {}, "config_sha256": "0" * 64, "cameras": []},
        schema="edge-agent/info/1",
        retain=True,
    )
    out = io.StringIO()
    stop = threading.Event()
    raw = io.StringIO()
    try:
        time.sleep(0.5)  # retained status and info are in place before tail subscribes
        n = tail(cfg, "d1", out=out, stop=stop, max_messages=2, timeout_s=10)
        assert run(cfg, device_id=None, raw_json=True, out=raw, count=2, timeout_s=10) == 0  # the CLI entry
    finally:
        pub.close(1.0)
    lines = out.getvalue().splitlines()
    assert n == 2 and len(lines) == 2
    assert any(" d1 status status " in ln and "online" in ln for ln in lines)
    assert any(" d1 info info#" in ln for ln in lines)
    docs = [json.loads(ln) for ln in raw.getvalue().splitlines()]
    assert len(docs) == 2 and {d["topic"] for d in docs} == {"edge-agent/d1/status", "edge-agent/d1/info"}
    assert all(d["retained"] for d in docs)
