"""Remote command parsing and dispatch: id echoed, unknown command and bad JSON become error results."""

from __future__ import annotations

import json
from typing import Any

from edge_agent.commands import CommandQueue, TokenBucket, execute, parse_command
from edge_agent.publish.incoming import Incoming


class FakeAgent:
    """The edge of the unit: records which control was called (the real agent is exercised in test_e2e)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> dict[str, Any]:
        self.calls.append("pause")
        return {"paused": True}

    def resume(self) -> dict[str, Any]:
        self.calls.append("resume")
        return {"paused": False}

    def reload(self) -> dict[str, Any]:
        self.calls.append("reload")
        raise ValueError("config.toml: agent.foo: unknown key")

    def status(self) -> dict[str, Any]:
        self.calls.append("status")
        return {"paused": False}


def test_request_id_is_echoed_and_the_control_is_called() -> None:
    agent = FakeAgent()
    result = execute(parse_command("cmd/pause", b'{"id": "r-1"}'), agent)  # type: ignore[arg-type]
    assert result == {"command": "pause", "request_id": "r-1", "ok": True, "error": None, "result": {"paused": True}}
    assert agent.calls == ["pause"]


def test_empty_payload_is_a_valid_request_without_id() -> None:
    cmd = parse_command("cmd/status", b"")
    assert cmd is not None and cmd.error is None and cmd.request_id is None


def test_unknown_command_is_an_error_result_and_calls_nothing() -> None:
    agent = FakeAgent()
    result = execute(parse_command("cmd/selfdestruct", b'{"id": 7}'), agent)  # type: ignore[arg-type]
    assert result["ok"] is False and result["request_id"] == "7" and "unknown command 'selfdestruct'" in result["error"]
    assert agent.calls == []


def test_bad_json_and_non_object_payloads_are_error_results() -> None:
    for payload in (b"{not json", b"[1,2]", b"\xff\xfe", b'"pause"', b'{"id": {"x": 1}}', b'{"id": true}'):
        result = execute(parse_command("cmd/pause", payload), FakeAgent())  # type: ignore[arg-type]
        assert result["ok"] is False and result["error"], payload


def test_a_failing_control_reports_its_one_line_reason() -> None:
    result = execute(parse_command("cmd/reload", b"{}"), FakeAgent())  # type: ignore[arg-type]
    assert result["ok"] is False and result["error"] == "config.toml: agent.foo: unknown key"


def test_result_topics_and_deeper_topics_are_not_requests() -> None:
    assert parse_command("cmd/pause/result", b"{}") is None
    assert parse_command("cmd", b"{}") is None
    assert parse_command("status", b"{}") is None


def test_oversize_payload_is_refused() -> None:
    cmd = parse_command("cmd/pause", b'{"id": "' + b"x" * 20000 + b'"}')
    assert cmd is not None and cmd.error and "too large" in cmd.error


def test_queue_drains_in_order_and_publishes_each_result_on_its_result_topic() -> None:
    q = CommandQueue()
    q.on_message(Incoming("cmd/pause", b'{"id": 1}', False))
    q.on_message(Incoming("cmd/pause/result", b"{}", False))  # our own result echoed back by the broker: ignored
    q.on_message(Incoming("cmd/nope", b"{}", False))
    q.on_message(Incoming("cmd/resume", b'{"id": 2}', False))
    sent: list[tuple[str, dict[str, Any]]] = []
    agent = FakeAgent()
    assert q.drain(agent, lambda topic, payload: sent.append((topic, payload))) == 3  # type: ignore[arg-type]
    assert [t for t, _ in sent] == ["cmd/pause/result", "cmd/nope/result", "cmd/resume/result"]
    assert [p["ok"] for _, p in sent] == [True, False, True]
    assert agent.calls == ["pause", "resume"]
    json.dumps(sent)  # results are JSON-able


def test_full_queue_drops_the_oldest_and_counts_it() -> None:
    q = CommandQueue(maxsize=2)
    for i in range(5):
        q.on_message(Incoming("cmd/status", json.dumps({"id": i}).encode(), False))
    sent: list[dict[str, Any]] = []
    q.drain(FakeAgent(), lambda _t, p: sent.append(p))  # type: ignore[arg-type]
    assert [p["request_id"] for p in sent] == ["3", "4"] and q.dropped == 3 and q.received == 5


def test_msg_id_is_echoed_when_the_request_has_no_id() -> None:
    cmd = parse_command("cmd/status", b'{"msg_id": "5f1c"}')
    assert cmd is not None and execute(cmd, FakeAgent())["request_id"] == "5f1c"  # type: ignore[arg-type]


def test_retained_and_empty_messages_are_not_commands_and_are_counted() -> None:
    q = CommandQueue()
    q.on_message(Incoming("cmd/pause", b'{"id": "old"}', True))  # a retained request replayed on subscribe
    q.on_message(Incoming("cmd/pause", b"", False))  # how a retained request is cleared
    q.on_message(Incoming("cmd/pause", b"  ", True))
    agent = FakeAgent()
    assert q.drain(agent, lambda _t, _p: None) == 0  # type: ignore[arg-type]
    assert agent.calls == []
    assert q.stats()["ignored"] == {"retained": 2, "empty": 1} and q.stats()["received"] == 3


def test_deeply_nested_json_gets_a_malformed_error_result() -> None:
    cmd = parse_command("cmd/status", b"[" * 5000 + b"]" * 5000)  # within the size limit
    assert cmd is not None and cmd.code == "malformed" and "nested" in (cmd.error or "")
    result = execute(cmd, FakeAgent())  # type: ignore[arg-type]
    assert result["ok"] is False and result["code"] == "malformed"


def test_a_burst_beyond_the_rate_limit_is_counted_and_every_request_is_accounted_for() -> None:
    q = CommandQueue(maxsize=16, bucket=TokenBucket(rate=0.0, burst=20))
    sent: list[dict[str, Any]] = []
    for i in range(300):
        q.on_message(Incoming("cmd/nope", json.dumps({"id": i}).encode(), False))
        if i % 10 == 0:
            q.drain(FakeAgent(), lambda _t, p: sent.append(p))  # type: ignore[arg-type]
    q.drain(FakeAgent(), lambda _t, p: sent.append(p))  # type: ignore[arg-type]
    s = q.stats()
    assert len(sent) == 20 and all(p["code"] == "unknown_command" for p in sent)
    assert s["rate_limited"] == 280
    assert s["received"] == s["results"] + s["rate_limited"] + s["queue_dropped"] + sum(s["ignored"].values())


def test_an_unknown_command_from_inside_the_device_is_an_error_result_not_a_crash() -> None:
    q, agent, sent = CommandQueue(), FakeAgent(), []
    q.request("nonsense", "internal-1")
    q.request("status", "internal-2")
    assert q.drain(agent, lambda topic, payload: sent.append((topic, payload))) == 2  # type: ignore[arg-type]
    (t1, bad), (t2, good) = sent
    assert t1 == "cmd/nonsense/result" and bad["ok"] is False and bad["code"] == "unknown_command"
    assert bad["request_id"] == "internal-1" and bad["error"].startswith("unknown command 'nonsense'; known: ")
    assert t2 == "cmd/status/result" and good["ok"] is True
    assert q.counts["received"] == 2 and q.counts["failed"] == 1 and q.counts["ok"] == 1
