"""Property tests: malformed TOML and wrong types always give one error line naming the key, and exit 2."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path
from typing import Any, Literal

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from edge_agent.cli import main
from edge_agent.config import AgentConfig

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(tmp_path: Path, text: str | bytes) -> tuple[int, str, str]:
    path = tmp_path / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    result = CliRunner().invoke(main, ["check-config", str(path)], env={"EDGE_AGENT_MQTT_PASSWORD": ""})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def _assert_one_line_config_error(code: int, stderr: str) -> str:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge-agent: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# ---- malformed TOML --------------------------------------------------------------------------------------------------
TOML_PIECES = st.sampled_from(
    [
        "[",
        "]",
        "[[",
        "]]",
        "=",
        '"',
        "'",
        "\n",
        "agent",
        "mqtt",
        "port",
        " ",
        "1",
        "1.5",
        "true",
        "{",
        "}",
        ",",
        ".",
        "#",
        "\\",
        '"""',
        "\t",
        "x",
        "[agent]\n",
        "\x00",
        "é",
    ]
)


@SETTINGS
@given(st.lists(TOML_PIECES, min_size=1, max_size=30).map("".join))
def test_malformed_toml_is_one_line_and_exit_2(tmp_path: Path, text: str) -> None:
    code, _, stderr = _check(tmp_path, text)
    if code == 0:
        return  # happened to be a valid config
    _assert_one_line_config_error(code, stderr)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_never_give_a_traceback(tmp_path: Path, data: bytes) -> None:
    code, _, stderr = _check(tmp_path, data)
    if code != 0:
        _assert_one_line_config_error(code, stderr)


# ---- wrong types -----------------------------------------------------------------------------------------------------
def _leaf_fields(model: type[BaseModel], prefix: str) -> list[tuple[str, str, Any]]:
    """(toml section path, key, annotation) of every scalar field reachable through nested tables."""
    out: list[tuple[str, str, Any]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        args = typing.get_args(ann)
        if typing.get_origin(ann) is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            ann = args[0]  # [[cameras]]: the first table of the array
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(_leaf_fields(ann, f"{prefix}.{name}" if prefix else name))
        elif ann in (int, float, bool, str) or typing.get_origin(ann) is Literal:
            out.append((prefix, name, ann))
    return out


LEAVES = [leaf for leaf in _leaf_fields(AgentConfig, "") if leaf[0]]


def _wrong_values(ann: Any) -> st.SearchStrategy[str]:
    """TOML literals that can never be valid for `ann` (pydantic's lax mode accepts 1 for true, "5" for 5, ...)."""
    always_wrong = st.sampled_from(["[1, 2]", "{ a = 1 }", "[]", "1979-05-27T07:32:00Z"])
    letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8).filter(
        lambda s: s not in ("inf", "nan", "true", "false", "yes", "off", "on", "none", "infinity")
    )
    if ann is str:
        return st.one_of(always_wrong, st.integers().map(str), st.sampled_from(["true", "1.5"]))
    if typing.get_origin(ann) is Literal:
        return st.one_of(always_wrong, letters.map(lambda s: f'"{s}zz"'))
    return st.one_of(always_wrong, letters.map(lambda s: f'"{s}"'))


@SETTINGS
@given(st.data())
def test_wrong_type_names_the_key_path_and_exits_2(tmp_path: Path, data: st.DataObject) -> None:
    section, key, ann = data.draw(st.sampled_from(LEAVES), label="field")
    value = data.draw(_wrong_values(ann), label="value")
    if section.startswith("cameras"):
        text = f"[[cameras]]\n[cameras.{section.split('.', 1)[1]}]\n" if "." in section else "[[cameras]]\n"
        text += f"{key} = {value}\n"
        where = f"cameras[0].{section.split('.', 1)[1] + '.' if '.' in section else ''}{key}"
    else:
        text, where = f"[{section}]\n{key} = {value}\n", f"{section}.{key}"
    code, _, stderr = _check(tmp_path, text)
    line = _assert_one_line_config_error(code, stderr)
    assert where in line, (text, line)


def test_leaf_table_covers_every_section() -> None:
    sections = {s.split(".")[0] for s, _, _ in LEAVES}
    assert {"agent", "cameras", "detector", "tracking", "analytics", "mqtt", "outbox"} <= sections


def test_real_subprocess_reports_a_bad_config_in_one_line_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[mqtt]\nport = "abc"\n')
    proc = subprocess.run(
        check=False,
        args=[sys.executable, "-m", "edge_agent", "check-config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == 'edge-agent: error: bad.toml: mqtt.port = "abc": expected an integer'
