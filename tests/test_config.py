"""Config loading: one-line errors naming key, value and fix; secrets never from the file; identity and hash."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge_agent.config import AgentConfig, ConfigError, config_hash, load_config, parse_config, read_secret
from edge_agent.config.identity import default_device_id
from edge_agent.daemon.overrides import check_startup

REPO = Path(__file__).resolve().parents[1]


def _err(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.toml")
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_empty_file_is_a_valid_all_defaults_config() -> None:
    cfg = parse_config("")
    assert isinstance(cfg, AgentConfig)
    assert cfg.agent.stats_interval_s == 30.0


def test_wrong_type_names_key_path_value_and_expectation() -> None:
    assert _err('[agent]\nstats_interval_s = "abc"') == 'config.toml: agent.stats_interval_s = "abc": expected a number'
    assert _err("[attributes]\nnum_threads = 1.5") == "config.toml: attributes.num_threads = 1.5: expected an integer"


def test_unknown_key_is_rejected_and_lists_the_known_keys() -> None:
    msg = _err("[agent]\nstats_intreval_s = 5")
    assert msg.startswith("config.toml: agent.stats_intreval_s: unknown key (expected one of: ")
    assert "stats_interval_s" in msg


def test_unknown_top_level_section_is_rejected() -> None:
    msg = _err("[mqqt]\nhost = 'x'")
    assert msg.startswith("config.toml: mqqt: unknown key") and "mqtt" in msg


def test_nested_list_error_names_the_index() -> None:
    msg = _err("[analytics.summary]\ndwell_buckets_s = [5, 'x']")
    assert "analytics.summary.dwell_buckets_s[1]" in msg and '"x"' in msg


def test_section_given_as_scalar_says_a_table_is_expected() -> None:
    assert _err("agent = 3") == "config.toml: agent = 3: expected a table"


def test_validator_errors_read_as_a_sentence() -> None:
    msg = _err("[tracking]\nvisit_gap_s = 0.2\nmax_missed_s = 1.0")
    assert msg.startswith("config.toml: tracking") and "visit_gap_s (0.2) must be >= max_missed_s" in msg


def test_toml_syntax_error_gives_line_and_column() -> None:
    msg = _err("[agent]\nstats_interval_s = = 3\n")
    assert msg.startswith("config.toml: not valid TOML:") and "line 2" in msg


@pytest.mark.parametrize("section,key", [("mqtt", "password"), ("mqtt.tls", "passphrase"), ("agent", "key_password")])
def test_secret_in_file_is_refused_and_says_where_it_belongs(section: str, key: str) -> None:
    msg = _err(f"[{section}]\n{key} = 'hunter2'")
    assert f"{section}.{key}: secrets are never read from the config file" in msg
    assert "hunter2" not in msg and "$EDGE_AGENT_" in msg and "credential" in msg


def test_missing_file_and_directory_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


def test_example_config_at_repo_root_is_valid() -> None:
    cfg = load_config(REPO / "config.toml")
    assert cfg.cameras, "the example should configure a camera"


def test_username_without_password_secret_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_AGENT_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=r"mqtt\.username = 'sign1' needs a password"):
        check_startup(parse_config("[mqtt]\nusername = 'sign1'\n[mqtt.tls]\nenabled = true\n"))


def test_password_over_plaintext_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_AGENT_MQTT_PASSWORD", "s3cret")
    with pytest.raises(ConfigError, match="allow_plaintext_password") as info:
        check_startup(parse_config("[mqtt]\nusername = 'sign1'\n"))
    assert "s3cret" not in str(info.value)
    check_startup(parse_config("[mqtt]\nusername = 'sign1'\nallow_plaintext_password = true\n"))


def test_password_comes_from_credentials_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_AGENT_MQTT_PASSWORD", raising=False)
    (tmp_path / "mqtt_password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_secret("EDGE_AGENT_MQTT_PASSWORD", "mqtt_password") == "s3cret"
    assert read_secret("EDGE_AGENT_MQTT_PASSWORD", "other_name") is None


def test_environment_password_wins_over_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt_password").write_text("from-file")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("EDGE_AGENT_MQTT_PASSWORD", "from-env")
    assert read_secret("EDGE_AGENT_MQTT_PASSWORD", "mqtt_password") == "from-env"


def test_empty_credential_file_means_no_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_AGENT_MQTT_PASSWORD", raising=False)
    (tmp_path / "mqtt_password").write_text("")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_secret("EDGE_AGENT_MQTT_PASSWORD", "mqtt_password") is None


def test_device_id_is_a_hash_of_machine_id_never_the_raw_id(tmp_path: Path) -> None:
    mid = tmp_path / "machine-id"
    mid.write_text("0123456789abcdef0123456789abcdef\n")
    dev = default_device_id((mid,))
    assert dev.startswith("ea-") and len(dev) == 15 and "0123456789" not in dev
    assert dev == default_device_id((mid,))


def test_device_id_falls_back_to_hostname_without_machine_id(tmp_path: Path) -> None:
    dev = default_device_id((tmp_path / "absent",))
    assert dev and not dev.startswith("ea-")


def test_config_hash_ignores_formatting_but_not_values() -> None:
    a = parse_config("[agent]\nstats_interval_s = 10\nlog_level = 'info'\n")
    b = parse_config("[agent]\n# comment\nlog_level='info'\nstats_interval_s=10.0\n")
    c = parse_config("[agent]\nstats_interval_s = 11\n")
    assert config_hash(a) == config_hash(b) != config_hash(c)


def test_load_config_logs_nothing_secret(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_AGENT_MQTT_PASSWORD", "topsecret-xyz")
    with caplog.at_level(logging.DEBUG):
        cfg = parse_config("[mqtt]\nusername = 'sign1'\nallow_plaintext_password = true\n")
        check_startup(cfg)
    assert "topsecret-xyz" not in caplog.text
    assert "topsecret-xyz" not in cfg.model_dump_json()
