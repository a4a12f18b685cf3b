"""Typed records from the documented messages; both validators agree; the client imports nothing heavy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.client import CommandResult, Info, ParseError, Stats, Status, parse
from edge_agent.client.validation import validate as fast_validate
from edge_agent.publish.schemas import SchemaError
from edge_agent.publish.schemas import validate as slow_validate

REPO = Path(__file__).resolve().parents[1]


def doc_examples() -> list[dict[str, object]]:
    text = (REPO / "docs" / "mqtt.md").read_text(encoding="utf-8")
    found = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, flags=re.S)]
    return [m for m in found if isinstance(m, dict) and "schema" in m]


def topic_for(msg: dict[str, object]) -> str:
    name = str(msg["schema"]).split("/")[1]
    suffix = {"camera_status": f"cameras/{msg['camera_id']}/status", "cmd_result": f"cmd/{msg.get('command')}/result"}
    return f"edge-agent/{msg['device_id']}/{suffix.get(name, name)}"


def test_documented_messages_become_typed_records() -> None:
    records = [parse(topic_for(m), json.dumps(m).encode()) for m in doc_examples()]
    kinds = {type(r) for r in records}
    assert {Status, Info, Stats, CommandResult} <= kinds
    stats = next(r for r in records if isinstance(r, Stats))
    assert stats.meta.buffered and stats.queue_depth == 0 and stats.meta.epoch is not None
    will = next(r for r in records if isinstance(r, Status) and r.state == "offline")
    assert will.is_last_will and will.meta.seq is None
    with pytest.raises(AttributeError):
        stats.queue_depth = 5  # type: ignore[misc]  # frozen


def test_a_schema_violation_is_a_one_line_parse_error() -> None:
    msg = next(m for m in doc_examples() if m["schema"] == "edge-agent/status/1")
    with pytest.raises(ParseError) as err:
        parse(topic_for(msg), json.dumps(dict(msg, state="sleeping")).encode())
    assert "\n" not in str(err.value) and "state" in str(err.value)


@pytest.mark.parametrize("mutate", [lambda m: m, lambda m: dict(m, seq=-1), lambda m: dict(m, surprise=1),
                                    lambda m: {k: v for k, v in m.items() if k != "epoch"}])  # fmt: skip
def test_the_fast_validator_agrees_with_jsonschema(mutate: object) -> None:
    for msg in doc_examples():
        data = json.dumps(mutate(msg)).encode()  # type: ignore[operator]
        verdicts = []
        for validate in (fast_validate, slow_validate):
            try:
                validate(data)
                verdicts.append(True)
            except SchemaError:
                verdicts.append(False)
        assert verdicts[0] == verdicts[1], (msg["schema"], verdicts)


def test_importing_the_client_loads_no_opencv_litert_numpy_or_tensorflow() -> None:
    code = (
        "import sys, edge_agent.client\n"
        "heavy = [m for m in ('cv2', 'numpy', 'ai_edge_litert', 'tflite_runtime', 'tensorflow') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
