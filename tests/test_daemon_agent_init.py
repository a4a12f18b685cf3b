"""`Agent(...)` itself, in process: what it refuses, what it keeps from the command line, what it prints by default,
and the `info` message after a live reconfigure (mutation survivors of `Agent.__init__` and `apply_config`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import AgentConfig, ConfigError, config_hash, load_config, parse_config
from edge_agent.daemon.agent import Agent
from edge_agent.daemon.sinks import Outgoing
from edge_agent.detect.base import FaceDetector
from tests.test_daemon_agent import MODEL, agent_with, analyse, config, detector  # noqa: F401 - module fixture
from tests.test_daemon_agent_reload import config_file, config_text  # noqa: F401 - fixture
from tests.test_e2e import models_dir  # noqa: F401 - session fixture: the detector models

NO_CAMERA = "cameras: no enabled camera; add a [[cameras]] table or pass --source"


def test_an_agent_without_any_camera_is_refused_with_the_fix_in_one_line() -> None:
    cfg = parse_config(f'[attributes]\nmodel = "{MODEL}"\n')
    assert not cfg.cameras
    with pytest.raises(ConfigError) as err:
        Agent(cfg)
    assert str(err.value) == NO_CAMERA


def test_an_agent_whose_every_camera_is_disabled_is_refused_too() -> None:
    cfg = parse_config(
        f'[attributes]\nmodel = "{MODEL}"\n'
        '[[cameras]]\nid = "door"\nenabled = false\n[cameras.source]\ntype = "demo"\n'
        '[[cameras]]\nid = "lobby"\nenabled = false\n[cameras.source]\ntype = "demo"\n'
    )
    with pytest.raises(ConfigError) as err:
        Agent(cfg)
    assert str(err.value) == NO_CAMERA
    one_on = cfg.model_copy(update={"cameras": [cfg.cameras[0].model_copy(update={"enabled": True}), cfg.cameras[1]]})
    assert Agent(one_on).cfg is one_on  # one enabled camera is enough


def test_track_events_are_printed_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    event = Outgoing("cameras/cam0/tracks", {"event": "end", "track_id": "t1"}, "edge-agent/tracks/1", "cam0")
    Agent(config()).sink.send(event)  # the default: nothing on stdout (stdout is for --print and --json only)
    assert capsys.readouterr().out == ""
    Agent(config(), print_events=True).sink.send(event)
    assert capsys.readouterr().out.strip() == '{"camera_id":"cam0","event":"end","track_id":"t1"}'


def test_the_config_path_and_source_given_at_start_are_what_reload_uses(config_file: Path) -> None:  # noqa: F811
    agent = Agent(load_config(config_file), config_path=config_file, source_override="/dev/video7")
    config_file.write_text(config_text(tracking="min_face_px = 5000"))
    result = agent.reload()  # the file it was started with, re-read
    assert result["applied"] == ["tracking.min_face_px"]
    # the command line's source is kept over the file's demo source: a source change would need a restart
    assert result["restart_required"] == ["cameras"]
    assert agent.cfg.tracking.min_face_px == 5000


def test_a_live_reconfigure_republishes_info_with_the_model(detector: FaceDetector) -> None:  # noqa: F811
    agent, pub = agent_with(config(), detector)
    assert agent.meta is not None
    agent.apply_config(config(extra="min_face_px = 5000"), ("tracking.min_face_px",))
    (info,) = pub.on("info")
    assert info["attributes"] == ["age", "gender"] and info["config_sha256"] == config_hash(agent.cfg)
    assert info["models"]["attributes"] == {
        "name": agent.meta.name,
        "version": agent.meta.version,
        "sha256": agent.meta.sha256,
    }


def test_a_live_reconfigure_keeps_a_folder_camera_a_stills_camera(detector: FaceDetector, tmp_path: Path) -> None:  # noqa: F811
    """apply_config rebuilds each camera's analytics: a folder of photos stays stills (each frame its own visit)."""
    photos = tmp_path / "photos"
    photos.mkdir()

    def folder_config(heads: str) -> AgentConfig:
        return parse_config(
            f'[agent]\nwatchdog_stall_s = 5\n[attributes]\nmodel = "{MODEL}"\n{heads}\n'
            "[tracking]\nmin_age_years = 0\nupdate_interval_s = 0.2\n"
            f'[[cameras]]\nid = "cam0"\n[cameras.source]\ntype = "folder"\npath = "{photos}"\n'
        )

    agent, pub = agent_with(folder_config("age = true\ngender = true"), detector)
    agent.apply_config(folder_config("age = false\ngender = true"), ("attributes.age",))
    analyse(agent, 3)  # three frames, each a photo of its own after the reconfigure
    ends = [p for p in pub.on("cameras/cam0/tracks") if p.get("event") == "end"]
    assert [e["reason"] for e in ends] == ["still", "still", "still"]
    assert len({e["track_id"] for e in ends}) == 3
