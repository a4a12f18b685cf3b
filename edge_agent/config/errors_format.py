"""Turn a pydantic ValidationError into one line: `config.toml: mqtt.port = "abc": expected an integer`."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

_EXPECT = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected an array",
    "tuple_type": "expected an array",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "path_type": "expected a path string",
    "missing": "required key is missing",
}


def render_value(value: Any, limit: int = 60) -> str:
    """A short TOML-like rendering of a bad value for the error line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "{" + ", ".join(str(k) for k in list(value)[:5]) + ("…}" if len(value) > 5 else "}")
        text = "table " + text
    else:
        try:
            text = json.dumps(value, ensure_ascii=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic model classes reachable from a field annotation (list[X], X | None, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            out.extend(_models_in(arg))
    return out


def _walk(model: type[BaseModel], raw: Any, loc: tuple[Any, ...]) -> tuple[list[str], Any, set[str] | None]:
    """Follow `loc` through the raw TOML data: the readable key path, the value there, and the allowed keys."""
    parts: list[str] = []
    node: Any = raw
    models: list[type[BaseModel]] = [model]
    allowed: set[str] | None = set(model.model_fields)
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and isinstance(part, str) and (part in node or last):
            parts.append(part)
            allowed = set().union(*(m.model_fields for m in models)) if models else None
            nxt: list[type[BaseModel]] = []
            for m in models:
                if part in m.model_fields:
                    nxt.extend(_models_in(m.model_fields[part].annotation))
            models = nxt
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]" if parts else f"[{part}]"]
            node = node[part] if 0 <= part < len(node) else None
        elif isinstance(node, dict) and isinstance(part, str):
            # a union/discriminator tag in the loc: keep the member model(s) that this table's `type` selects
            tagged = [
                m for m in models if "type" in m.model_fields and m.model_fields["type"].default == node.get("type")
            ]
            fitting = tagged or [m for m in models if set(node) <= set(m.model_fields)]
            models = fitting or models
        else:
            break
    return parts, node, allowed


def _expected(err: Any, allowed: set[str] | None) -> str:
    etype = err.get("type", "")
    if etype == "extra_forbidden":
        keys = ", ".join(sorted(allowed)) if allowed else "none"
        return f"unknown key (expected one of: {keys})"
    if etype in _EXPECT:
        return _EXPECT[etype]
    msg = str(err.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    if msg.startswith("Input should be "):
        return "expected " + msg[len("Input should be ") :]
    return msg[0].lower() + msg[1:] if msg else "invalid value"


def format_validation_error(source: str, model: type[BaseModel], raw: dict[str, Any], exc: ValidationError) -> str:
    """One line naming the first problem's key path, its value and what is expected (+ how many more)."""
    errors = exc.errors(include_url=False)
    line = format_one(source, model, raw, errors[0])
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return line


def format_all(source: str, model: type[BaseModel], raw: dict[str, Any], exc: ValidationError) -> list[str]:
    """One line per problem, in pydantic's order (for `check-config`, which lists them all)."""
    return [format_one(source, model, raw, err) for err in exc.errors(include_url=False)]


def format_one(source: str, model: type[BaseModel], raw: dict[str, Any], err: Any) -> str:
    """`config.toml: mqtt.port = "abc": expected an integer` for one pydantic error."""
    parts, value, allowed = _walk(model, raw, tuple(err.get("loc", ())))
    expected = _expected(err, allowed)
    if err.get("type") == "union_tag_invalid":
        ctx = err.get("ctx") or {}
        parts = [*parts, str(ctx.get("discriminator", "type")).strip("'")]
        value = ctx.get("tag")
        expected = f"expected one of {ctx.get('expected_tags', '')}"
    path = ".".join(parts) or "(top level)"
    structured = isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value))
    if err.get("type") in ("missing", "extra_forbidden") or (structured and err.get("type") == "value_error"):
        line = f"{source}: {path}: {expected}"
    else:
        line = f"{source}: {path} = {render_value(value if parts else err.get('input'))}: {expected}"
    return line
