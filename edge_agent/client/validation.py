"""Schema validation for the client: jsonschema-rs (Rust, ~5 µs a message) when installed, else jsonschema.

The same files as everywhere (edge_agent/schemas/*.json). jsonschema-rs resolves `$ref`s against absolute
URIs only, so each schema's relative `$id` (`edge-agent/stats/1`) is rebased in memory onto a placeholder
base; `../envelope/1` then resolves to the envelope exactly as it does with jsonschema.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from edge_agent.publish.envelope import SCHEMA_ID_RE, schema_file_name
from edge_agent.publish.schemas import SchemaError, load_all
from edge_agent.publish.schemas import validate as slow_validate

_BASE = "https://schemas.edge-agent.invalid/"


@lru_cache(maxsize=1)
def _fast_validators() -> dict[str, Any] | None:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    docs = {name: dict(doc, **{"$id": _BASE + str(doc["$id"])}) for name, doc in load_all().items()}
    registry = jsonschema_rs.Registry([(doc["$id"], doc) for doc in docs.values()])
    return {name: jsonschema_rs.Draft202012Validator(doc, registry=registry) for name, doc in docs.items()}


def validate(payload: bytes) -> dict[str, Any]:
    """Parse and validate one message; raises SchemaError (or ValueError for non-JSON) with a one-line reason."""
    validators = _fast_validators()
    if validators is None:
        return slow_validate(payload)
    doc = json.loads(payload)
    if not isinstance(doc, dict):
        raise SchemaError("message is not a JSON object")
    sid = str(doc.get("schema"))
    validator = validators.get(schema_file_name(sid)) if SCHEMA_ID_RE.match(sid) else None
    if validator is None:
        raise SchemaError(f"unknown schema id {sid!r}")
    if not validator.is_valid(doc):
        err = next(iter(validator.iter_errors(doc)))
        where = "/".join(str(p) for p in err.instance_path) or "<root>"
        raise SchemaError(f"{sid}: {where}: {err.message}")
    return doc
