"""The first hour: privacy by default, config discovery, -v/-c anywhere, honest exit codes and messages.

Commands run as real subprocesses (or through click's runner where only the CLI layer is under test), with a
HOME and state directory of their own so the machine's files cannot leak in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge_agent.config import discover_config
from edge_agent.config.loader import SYSTEM_CONFIG as SYSTEM_CONFIG_PATH
from edge_agent.modelmeta import load_metadata
from tests.fixtures.media import astronaut_bgr, free_port
from tests.test_e2e import agent_env, models_dir  # noqa: F401

EXE = [sys.executable, "-m", "edge_agent"]


@pytest.fixture
def clean_env(tmp_path: Path, models_dir: Path) -> dict[str, str]:  # noqa: F811
    """No config anywhere (unless the machine has /etc/edge-agent/config.toml: then these tests cannot run)."""
    if SYSTEM_CONFIG_PATH.exists():
        pytest.skip(f"{SYSTEM_CONFIG_PATH} exists on this machine; built-in defaults cannot be tested here")
    env = agent_env(models_dir, HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("EDGE_AGENT_CONFIG", None)
    return env


def _cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_with_no_config_file_race_appears_in_no_output_of_any_command(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """`run` gets a file with only `[mqtt] port = 1` (and no [attributes]): the built-in default broker,
    localhost:1883, may be someone else's on a shared machine; the attribute defaults are what is under test."""
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr())
    no_broker = tmp_path / "no-broker.toml"
    no_broker.write_text("[mqtt]\nport = 1\n")
    outputs = {
        "check-config": _cli(["check-config"], clean_env, tmp_path),
        "classify": _cli(["classify", str(photo)], clean_env, tmp_path),
        "models list": _cli(["models", "list"], clean_env, tmp_path),
        "annotate": _cli(["annotate", str(photo), "--out", str(tmp_path / "ann")], clean_env, tmp_path),
        "run": _cli(
            ["run", "-c", str(no_broker), "--source", "demo", "--duration", "15", "--print"], clean_env, tmp_path
        ),
    }
    for name, res in outputs.items():
        assert res.returncode == 0, (name, res.stderr[-2000:])
        for raw in (res.stdout, res.stderr):
            text = raw.replace(str(tmp_path), "TMP")  # the test's own directory name mentions the word
            assert "race" not in text.lower(), (name, text[-2000:])
    for name in ("classify", "annotate"):
        assert "config: built-in defaults" in outputs[name].stderr, name
    assert "attributes   age, gender" in outputs["check-config"].stdout
    assert "file         built-in defaults" in outputs["check-config"].stdout
    events = [json.loads(line) for line in outputs["run"].stdout.splitlines()]
    assert any(e.get("event") == "end" for e in events)  # the demo produced visits, none of them with race


def test_config_discovery_order_is_flag_then_variable_then_system_file_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag, env_file, system = tmp_path / "flag.toml", tmp_path / "env.toml", tmp_path / "system.toml"
    monkeypatch.delenv("EDGE_AGENT_CONFIG", raising=False)
    assert discover_config(None, system) is None  # nothing anywhere: built-in defaults
    system.write_text("")
    assert discover_config(None, system) == system
    monkeypatch.setenv("EDGE_AGENT_CONFIG", str(env_file))
    assert discover_config(None, system) == env_file
    assert discover_config(flag, system) == flag


@pytest.mark.parametrize("where", ["before", "after"])
def test_dash_c_and_dash_v_work_before_or_after_the_subcommand(
    tmp_path: Path, clean_env: dict[str, str], where: str
) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text('[agent]\ndevice_id = "from-the-flag"\n')
    env_cfg = tmp_path / "env.toml"
    env_cfg.write_text('[agent]\ndevice_id = "from-the-variable"\n')
    clean_env["EDGE_AGENT_CONFIG"] = str(env_cfg)
    args = ["-v", "-c", str(cfg), "check-config"] if where == "before" else ["check-config", "-v", "-c", str(cfg)]
    res = _cli(args, clean_env, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "device_id    from-the-flag" in res.stdout  # -c wins over $EDGE_AGENT_CONFIG
    assert f"file         {cfg} (command line)" in res.stdout
    assert "DEBUG" in res.stderr and "config search: -c" in res.stderr  # -v took effect


def test_the_start_up_log_names_the_config_file_from_the_variable(tmp_path: Path, clean_env: dict[str, str]) -> None:
    cfg = tmp_path / "env.toml"
    cfg.write_text("[attributes]\nage = false\ngender = false\n")
    clean_env["EDGE_AGENT_CONFIG"] = str(cfg)
    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut_bgr())
    res = _cli(["classify", str(photo)], clean_env, tmp_path)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "config: " in ln]
    assert len(lines) == 1 and lines[0].endswith(f"config: {cfg} ($EDGE_AGENT_CONFIG)"), res.stderr


def test_tail_without_a_broker_exits_1_saying_the_connection_was_refused(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    cfg = tmp_path / "c.toml"
    port = free_port()
    cfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n')
    for extra in ([], ["--audience"]):
        res = _cli(["tail", "-c", str(cfg), "--timeout", "2", *extra], clean_env, tmp_path)
        assert res.returncode == 1, res.stderr
        (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("edge-agent: error:")]
        assert f"connection refused by 127.0.0.1:{port}" in line and "Traceback" not in res.stderr


def test_tail_names_a_host_that_does_not_resolve(tmp_path: Path, clean_env: dict[str, str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[mqtt]\nhost = "no-such-broker.invalid"\n')
    res = _cli(["tail", "-c", str(cfg), "--timeout", "2"], clean_env, tmp_path)
    assert res.returncode == 1 and "cannot resolve host 'no-such-broker.invalid'" in res.stderr, res.stderr


def test_tail_with_a_broker_listens_and_exits_0(tmp_path: Path, clean_env: dict[str, str], broker: object) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n')  # type: ignore[attr-defined]
    res = _cli(["tail", "-c", str(cfg), "--timeout", "1"], clean_env, tmp_path)
    assert res.returncode == 0, res.stderr


def test_models_list_names_the_attribute_model_its_version_and_hash(tmp_path: Path, clean_env: dict[str, str]) -> None:
    from edge_agent.classify import PACKAGED_MODEL

    meta = load_metadata(PACKAGED_MODEL)
    res = _cli(["models", "list"], clean_env, tmp_path)
    assert res.returncode == 0, res.stderr
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("attributes")]
    assert meta.name in line and meta.version in line and meta.sha256 in line and "(packaged)" in line
    assert "no attribute model configured" not in res.stdout


def test_a_stream_that_refuses_says_refused_not_timed_out() -> None:
    from edge_agent.capture.base import SourceError, create_source
    from edge_agent.capture.config import StreamSourceConfig

    port = free_port()
    with pytest.raises(SourceError) as err:
        create_source(StreamSourceConfig(url=f"rtsp://127.0.0.1:{port}/cam", open_timeout_s=5)).open()
    assert f"connection refused by 127.0.0.1:{port}" in str(err.value) and "within" not in str(err.value)
