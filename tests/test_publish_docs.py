"""The payload examples in docs/mqtt.md validate against the shipped schemas (the docs cannot drift)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edge_agent.publish.schemas import SchemaError, validate

DOC = Path(__file__).resolve().parents[1] / "docs" / "mqtt.md"
BLOCKS = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL) if DOC.exists() else []


@pytest.mark.parametrize("block", BLOCKS, ids=[json.loads(b)["schema"] + f"#{i}" for i, b in enumerate(BLOCKS)])
def test_documented_example_validates(block: str) -> None:
    validate(block)


def test_docs_have_an_example_for_every_device_level_schema() -> None:
    shown = {json.loads(b)["schema"] for b in BLOCKS}
    assert {
        "edge-agent/status/1",
        "edge-agent/info/1",
        "edge-agent/stats/1",
        "edge-agent/camera_status/1",
        "edge-agent/cmd_result/1",
    } <= shown


def test_a_wrong_example_would_be_caught() -> None:
    doc = json.loads(BLOCKS[0])
    doc["seq"] = 0
    with pytest.raises(SchemaError, match="seq"):
        validate(doc)


def test_status_is_outside_the_sequence_and_everything_else_is_numbered() -> None:
    """The contract: status carries seq null; every other message an integer seq; all carry an epoch."""
    docs = [json.loads(b) for b in BLOCKS]
    status = next(d for d in docs if d["schema"] == "edge-agent/status/1")
    numbered = next(d for d in docs if d["schema"] == "edge-agent/info/1")
    with pytest.raises(SchemaError, match="seq"):
        validate({**status, "seq": 7})
    with pytest.raises(SchemaError, match="seq"):
        validate({**numbered, "seq": None})
    with pytest.raises(SchemaError, match="epoch"):
        validate({k: v for k, v in numbered.items() if k != "epoch"})
