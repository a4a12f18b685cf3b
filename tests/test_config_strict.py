"""Strict config: no bool for a number, no string for a bool or an int; hosts without control characters; a BOM is
named; `check-config` lists every problem and checks paths the way `run` uses them (real files, real CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_config, parse_config, validate_config

EXE = [sys.executable, "-m", "edge_agent"]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[tracking]\nmax_missed_s = true", "tracking.max_missed_s = true: expected a number"),
        ('[attributes]\nrace = "false"', 'attributes.race = "false": expected true or false'),
        ("[attributes]\nrace = 0", "attributes.race = 0: expected true or false"),
        ('[mqtt]\nport = "1883"', 'mqtt.port = "1883": expected an integer'),
        ("[mqtt]\nkeepalive_s = 30.5", "mqtt.keepalive_s = 30.5: expected an integer"),
        ("[agent]\nstats_interval_s = false", "agent.stats_interval_s = false: expected a number"),
    ],
)
def test_loose_types_are_refused_naming_key_value_and_type(toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(toml, "config.toml")
    assert str(err.value) == f"config.toml: {expected}"


def test_an_integer_for_a_number_and_a_string_for_a_path_are_still_fine(tmp_path: Path) -> None:
    cfg = parse_config(f'[mqtt]\nreconnect_min_s = 2\n[agent]\nstate_dir = "{tmp_path}"\n')
    assert cfg.mqtt.reconnect_min_s == 2.0 and str(cfg.agent.state_dir) == str(tmp_path)
    # Python callers (reload, tests) may pass Path objects; they validate the same way
    assert validate_config({"agent": {"state_dir": tmp_path}}).agent.state_dir is not None


@pytest.mark.parametrize(
    ("host", "shown"),
    [('"local\\u0000host"', "\\x00"), ('"broker\\nexample"', "\\n"), ('"a\\u007fb"', "\\x7f")],
)
def test_a_host_with_a_control_character_is_refused(host: str, shown: str) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.host") as err:
        parse_config(f"[mqtt]\nhost = {host}\n", "config.toml")
    assert "control character" in str(err.value) and shown in str(err.value)
    assert "\n" not in str(err.value)  # the error itself stays one line


def test_a_host_with_spaces_is_refused() -> None:
    with pytest.raises(ConfigError, match="no spaces"):
        parse_config('[mqtt]\nhost = "broker example"\n')


@pytest.mark.parametrize(
    ("bom", "name"),
    [(b"\xef\xbb\xbf", "UTF-8"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"), (b"\xff\xfe\x00\x00", "UTF-32")],
)
def test_a_byte_order_mark_is_named_in_the_error(tmp_path: Path, bom: bytes, name: str) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(bom + b"[agent]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{name} byte-order mark (BOM)" in str(err.value)


def test_every_validation_problem_is_kept_for_check_config() -> None:
    with pytest.raises(ConfigError) as err:
        text = '[mqtt]\nhost = "a\\nb"\n[tracking]\nmax_missed_s = true\n[attributes]\nrace = "false"\n'
        parse_config(text, "c.toml")
    assert "(and 2 more problems)" in str(err.value)
    assert len(err.value.problems) == 3
    assert {p.split(" = ")[0] for p in err.value.problems} == {
        "c.toml: mqtt.host",
        "c.toml: tracking.max_missed_s",
        "c.toml: attributes.race",
    }


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, "check-config", str(path)], check=False, capture_output=True, text=True, timeout=60)


def test_check_config_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    state_file = tmp_path / "state-is-a-file"
    state_file.write_text("")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[agent]\nstate_dir = "{state_file}"\n'
        f'[attributes]\nmodel = "{tmp_path / "missing.tflite"}"\n'
        '[[cameras]]\nid = "c0"\n[cameras.source]\ntype = "folder"\n'
        f'path = "{tmp_path / "no-such-folder"}"\n'
    )
    res = check_config(path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr
    assert any("agent.state_dir" in ln and "not a directory" in ln for ln in lines)
    assert any("attributes.model" in ln and "does not exist" in ln for ln in lines)
    assert any("cameras[0].source.path" in ln and "does not exist" in ln for ln in lines)
    assert lines[-1] == "edge-agent: error: 3 problems found", res.stderr


def test_check_config_and_run_agree_on_a_state_dir_that_is_a_file(tmp_path: Path) -> None:
    state_file = tmp_path / "state"
    state_file.write_text("")
    path = tmp_path / "config.toml"
    path.write_text(f'[agent]\nstate_dir = "{state_file}"\n[[cameras]]\nid = "c0"\n[cameras.source]\ntype = "demo"\n')
    checked = check_config(path)
    ran = subprocess.run(
        [*EXE, "run", "--config", str(path), "--duration", "1"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 2 and "agent.state_dir" in checked.stderr
    assert ran.returncode == 2 and "agent.state_dir" in ran.stderr and "Traceback" not in ran.stderr


def test_check_config_lists_validation_problems_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[mqtt]\nhost = "a\\u0000b"\nport = "1883"\n[attributes]\nrace = 0\n')
    res = check_config(path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 4 and lines[-1] == "edge-agent: error: 3 problems found", res.stderr


def test_check_config_passes_a_good_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[agent]\nstate_dir = "{tmp_path / "new" / "state"}"\n')
    res = check_config(path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("config ok")


def test_a_fallback_host_with_a_control_character_is_refused() -> None:
    with pytest.raises(ConfigError, match="control character"):
        validate_config({"mqtt": {"hosts": ["mq-a:1883", "mq\x00b:1883"]}}, "config.toml")
