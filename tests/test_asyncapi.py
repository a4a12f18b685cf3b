"""docs/asyncapi.yaml: regenerated from the JSON Schemas without a diff, valid AsyncAPI 3.0, and usable.

The official AsyncAPI 3.0 JSON Schema comes from the npm package @asyncapi/specs, which .ci/run installs into
~/.cache/edge-agent-ci (override with $EDGE_AGENT_ASYNCAPI_SPECS, the package's `schemas` folder). Without it the
validation test skips, except under CI, where a missing validator is a failure.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from edge_agent.client import asyncapi
from edge_agent.client.topics import TOPICS
from edge_agent.publish import envelope

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "asyncapi.yaml"
SPECS = Path(
    os.environ.get(
        "EDGE_AGENT_ASYNCAPI_SPECS",
        Path.home() / ".cache" / "edge-agent-ci" / "node_modules" / "@asyncapi" / "specs" / "schemas",
    )
)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(DOC.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def official_schema() -> dict[str, Any]:
    path = SPECS / "3.0.0.json"
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: .ci/run must install the npm package @asyncapi/specs")
        pytest.skip(f"{path} is missing (npm install --prefix ~/.cache/edge-agent-ci @asyncapi/specs@6)")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_committed_document_matches_a_fresh_render_of_the_schemas() -> None:
    assert DOC.read_text(encoding="utf-8") == asyncapi.render(), (
        "docs/asyncapi.yaml is stale: run `python -m edge_agent.client.asyncapi`"
    )


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(asyncapi.render().replace("edge-agent MQTT API", "old title"))
    assert asyncapi.main(["--check", "--out", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert asyncapi.main(["--out", str(stale)]) == 0
    assert asyncapi.main(["--check", "--out", str(stale)]) == 0


def test_document_is_valid_asyncapi_3(doc: dict[str, Any], official_schema: dict[str, Any]) -> None:
    errors = [f"{e.json_path}: {e.message[:200]}" for e in Draft7Validator(official_schema).iter_errors(doc)]
    assert errors == []


def test_official_schema_rejects_a_broken_document(doc: dict[str, Any], official_schema: dict[str, Any]) -> None:
    broken = dict(doc, channels={"status": {"address": 5}})  # proves the validator is really checking
    assert list(Draft7Validator(official_schema).iter_errors(broken))


def test_every_schema_file_and_topic_is_described(doc: dict[str, Any]) -> None:
    stems = {p.stem for p in (REPO / "edge_agent" / "schemas").glob("*.json")}
    assert set(doc["components"]["schemas"]) == stems
    assert set(doc["channels"]) == {t.name for t in TOPICS}
    for spec in TOPICS:
        channel = doc["channels"][spec.name]
        assert channel["address"] == "{prefix}/{device_id}/" + spec.suffix
        op = doc["operations"][("send_" if spec.direction == "agent_publishes" else "receive_") + spec.name]
        assert op["bindings"]["mqtt"]["retain"] is spec.retained


def test_a_schema_without_a_topic_is_refused() -> None:
    schemas = asyncapi.load_schemas()
    schemas["orphan"] = {"$id": "edge-agent/orphan/1", "type": "object"}
    with pytest.raises(asyncapi.UnmappedSchemaError, match="orphan"):
        asyncapi.build(schemas)


def _payload_validator(doc: dict[str, Any], message: str) -> Draft202012Validator:
    """A validator for one message's payload, resolving its $refs as pointers into the whole document."""
    root = "urn:asyncapi"
    registry: Registry = Registry().with_resource(root, Resource(contents=doc, specification=DRAFT202012))
    ref = doc["components"]["messages"][message]["payload"]["$ref"]
    return Draft202012Validator({"$ref": f"{root}{ref}/schema"}, registry=registry)


def _doc_examples() -> list[dict[str, Any]]:
    """The JSON payload examples of docs/mqtt.md: real messages, written by hand but schema-checked elsewhere."""
    text = (REPO / "docs" / "mqtt.md").read_text(encoding="utf-8")
    found = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)]
    return [m for m in found if isinstance(m, dict) and "schema" in m]


def test_real_messages_validate_against_the_documents_payloads(doc: dict[str, Any]) -> None:
    messages = _doc_examples()
    assert len(messages) >= 4
    for msg in messages:
        name = envelope.schema_file_name(msg["schema"])[: -len(".json")]
        errors = [e.message for e in _payload_validator(doc, name).iter_errors(msg)]
        assert errors == [], (msg["schema"], errors)


def test_document_payloads_reject_what_the_schemas_reject(doc: dict[str, Any]) -> None:
    msg = next(m for m in _doc_examples() if m["schema"] == "edge-agent/status/1")
    validator = _payload_validator(doc, "status")
    assert not list(validator.iter_errors(msg))
    assert list(validator.iter_errors(dict(msg, state="sleeping")))
    assert list(validator.iter_errors({k: v for k, v in msg.items() if k != "msg_id"}))  # envelope ref resolved
