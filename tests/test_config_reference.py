"""docs/config.md is generated from the config models and must match them."""

from __future__ import annotations

from pathlib import Path

from edge_agent.config.model import AgentConfig
from edge_agent.config.reference import render_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_config_reference_is_up_to_date() -> None:
    assert DOC.read_text() == render_markdown(), "regenerate: python -m edge_agent.config.reference > docs/config.md"


def test_every_field_has_a_description() -> None:
    missing: list[str] = []

    def walk(model: type, path: str) -> None:
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not field.description:
                missing.append(f"{path}.{name}")
            from edge_agent.config.reference import _members

            for sub in _members(field.annotation):
                walk(sub, f"{path}.{name}")

    walk(AgentConfig, "")
    assert not missing, missing
