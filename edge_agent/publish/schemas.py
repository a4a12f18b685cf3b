"""JSON Schema validation of published messages against edge_agent/schemas/*.json (needs the `dev` extra).

A message's `schema` id `edge-agent/<name>/<version>` selects `<name>.json`. Each schema's `$id` is its schema
id (e.g. `edge-agent/stats/1`); payload schemas reference the envelope as `../envelope/1`. The device install does
not need jsonschema: only tests and `tail --validate` import it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from edge_agent.publish.envelope import SCHEMA_ID_RE, schema_file_name

SCHEMA_DIR = ("edge_agent", "schemas")


class SchemaError(ValueError):
    """A message does not validate, or names a schema we do not have."""


def load_all() -> dict[str, dict[str, Any]]:
    """File name → schema document, for every JSON file shipped in edge_agent/schemas."""
    out: dict[str, dict[str, Any]] = {}
    for entry in resources.files(SCHEMA_DIR[0]).joinpath(SCHEMA_DIR[1]).iterdir():
        if entry.name.endswith(".json"):
            out[entry.name] = json.loads(entry.read_text(encoding="utf-8"))
    return out


@lru_cache(maxsize=1)
def _validators() -> dict[str, Any]:
    try:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
    except ImportError as exc:  # pragma: no cover - device installs
        raise SchemaError(f"schema validation needs jsonschema (pip install 'edge-agent[dev]'): {exc}") from None
    docs = load_all()
    pairs = [(name, Resource.from_contents(doc)) for name, doc in docs.items()]
    pairs += [(str(doc["$id"]), Resource.from_contents(doc)) for doc in docs.values() if "$id" in doc]
    registry = Registry().with_resources(pairs)
    return {name: Draft202012Validator(doc, registry=registry) for name, doc in docs.items()}


def validate(message: dict[str, Any] | bytes | str) -> dict[str, Any]:
    """Validate one message against the schema its `schema` field names; returns the parsed message.

    Raises SchemaError with a one-line reason (path and message of the first error).
    """
    doc = json.loads(message) if isinstance(message, bytes | str) else message
    if not isinstance(doc, dict):
        raise SchemaError("message is not a JSON object")
    sid = doc.get("schema")
    validator = _validators().get(schema_file_name(str(sid))) if SCHEMA_ID_RE.match(str(sid)) else None
    if validator is None:
        raise SchemaError(f"unknown schema id {sid!r}")
    # An error inside the envelope also makes `unevaluatedProperties` reject every envelope key at the root;
    # that echo is never the cause, so report the specific error first.
    errors = sorted(
        validator.iter_errors(doc), key=lambda e: (e.validator == "unevaluatedProperties", list(e.absolute_path))
    )
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        raise SchemaError(f"{sid}: {where}: {err.message}")
    return doc
