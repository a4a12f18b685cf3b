"""`Agent.reload` in process (the `cmd/reload` and SIGHUP path): what it applies, what needs a restart, what it says.

`tests/test_daemon_reload.py` drives the same path through a real `edge-agent run` subprocess; these tests reach
the composition root's own decisions directly (and let mutation testing see them).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge_agent.config import ConfigError, config_hash, load_config
from edge_agent.daemon import messages
from edge_agent.detect.base import FaceDetector
from tests.test_daemon_agent import MODEL, agent_with, analyse, detector  # noqa: F401 - module fixture
from tests.test_e2e import models_dir  # noqa: F401 - session fixture: the detector models


def config_text(tracking: str = "", mqtt_port: int = 1883, log_level: str = "info") -> str:
    return (
        f'[agent]\nwatchdog_stall_s = 5\nlog_level = "{log_level}"\n'
        f"[mqtt]\nport = {mqtt_port}\n"
        f'[attributes]\nmodel = "{MODEL}"\nage = true\ngender = true\n'
        f"[tracking]\nmin_age_years = 0\nupdate_interval_s = 0.2\n{tracking}\n"
        '[[cameras]]\nid = "cam0"\n[cameras.source]\ntype = "demo"\n'
    )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text())
    return path


def test_reload_without_a_config_file_is_an_error(detector: FaceDetector, config_file: Path) -> None:  # noqa: F811
    agent, _ = agent_with(load_config(config_file), detector)
    with pytest.raises(ValueError, match=r"^the agent was started without --config: there is no file to reload$"):
        agent.reload()


def test_reload_applies_live_changes_and_lists_what_needs_a_restart(
    detector: FaceDetector,  # noqa: F811
    config_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent, pub = agent_with(load_config(config_file), detector)
    agent.config_path = config_file
    analyse(agent, 4)
    config_file.write_text(config_text(tracking="min_face_px = 5000", mqtt_port=1999))
    with caplog.at_level(logging.INFO, logger="edge_agent.daemon.agent"):
        result = agent.reload()
    assert result == {
        "applied": ["tracking.min_face_px"],
        "restart_required": ["mqtt.port"],
        "config_hash": config_hash(agent.cfg),
    }
    assert agent.cfg.tracking.min_face_px == 5000 and agent.cfg.mqtt.port == 1883  # the port waits for a restart
    assert "config reloaded: 1 change(s) applied, 1 need a restart" in caplog.messages
    assert len(pub.on("info")) == 1  # applied: info is re-published
    analyse(agent, 8)
    updates = [p for p in pub.on("cameras/cam0/tracks") if p.get("event") == "update"]
    assert updates and updates[-1]["attributes"]["age"]["reason"] == "small_face"  # the new analytics runs


def test_reload_with_nothing_live_changes_nothing_and_publishes_nothing(
    detector: FaceDetector,  # noqa: F811
    config_file: Path,
) -> None:
    agent, pub = agent_with(load_config(config_file), detector)
    agent.config_path = config_file
    before = agent.cfg
    config_file.write_text(config_text(mqtt_port=1999))
    assert agent.reload() == {"applied": [], "restart_required": ["mqtt.port"], "config_hash": config_hash(before)}
    assert agent.cfg is before and pub.on("info") == []


def test_reload_keeps_the_source_given_on_the_command_line(detector: FaceDetector, config_file: Path) -> None:  # noqa: F811
    agent, _ = agent_with(load_config(config_file), detector)
    agent.config_path, agent.source_override = config_file, "/dev/video7"
    config_file.write_text(config_text(log_level="debug"))
    root = logging.getLogger()
    before_level = root.level
    try:
        result = agent.reload()
    finally:  # reload set the root logger's level (logsetup.set_level): put it back, touch no other logger
        root.setLevel(before_level)
    assert result["applied"] == ["agent.log_level"]
    assert result["restart_required"] == ["cameras"]  # the file says demo, the command line a device
    assert agent.cfg.cameras[0].source.type == "demo"  # unchanged: a source change needs a restart


def test_a_broken_config_file_is_an_error_and_the_agent_keeps_its_config(
    detector: FaceDetector,  # noqa: F811
    config_file: Path,
) -> None:
    agent, _ = agent_with(load_config(config_file), detector)
    agent.config_path = config_file
    before = agent.cfg
    config_file.write_text("[tracking]\nmin_face_px = 'big'\n")
    with pytest.raises(ConfigError, match="min_face_px"):
        agent.reload()
    assert agent.cfg is before


def test_command_results_go_out_on_their_topic_with_the_result_schema(
    detector: FaceDetector,  # noqa: F811
    config_file: Path,
) -> None:
    agent, pub = agent_with(load_config(config_file), detector)
    agent._send_result("cmd/result/abc", {"ok": True})
    assert pub.sent == [("cmd/result/abc", {"ok": True}, messages.CMD_RESULT_SCHEMA, None, False)]


def test_pause_and_resume_are_idempotent(detector: FaceDetector, config_file: Path) -> None:  # noqa: F811
    agent, pub = agent_with(load_config(config_file), detector)
    analyse(agent, 4)
    assert agent.pause() == {"paused": True} and agent.paused
    n_status = len(pub.on("cameras/cam0/status"))
    assert n_status == 1
    assert agent.pause() == {"paused": True} and len(pub.on("cameras/cam0/status")) == n_status  # no second flush
    assert agent.resume() == {"paused": False} and not agent.paused
    assert agent.resume() == {"paused": False} and len(pub.on("cameras/cam0/status")) == n_status + 1
    assert agent.status()["paused"] is False
