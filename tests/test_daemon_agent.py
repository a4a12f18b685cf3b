"""The composition root's decisions, in process: live reconfigure, health and the watchdog, stats and status.

The agent is not `run()` here: its runners are built from real stages (real models, real analytics) over a frame
feed that hands out real face photos, and what it publishes goes to a recording publisher (the edge).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import AgentConfig, parse_config
from edge_agent.daemon import builders
from edge_agent.daemon.agent import Agent
from edge_agent.daemon.camera import CameraRunner, CameraStages
from edge_agent.daemon.sinks import Sink
from edge_agent.detect.base import FaceDetector
from edge_agent.detect.config import DetectorConfig
from edge_agent.publish.schemas import validate
from tests.test_daemon_camera import Broken, ListFeed, frames
from tests.test_e2e import models_dir  # noqa: F401 - session fixture: the detector models

MODEL = Path(__file__).resolve().parents[1] / "edge_agent" / "models" / "attributes_int8.tflite"


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str, str | None, bool]] = []

    def submit(
        self,
        topic_suffix: str,
        payload: dict[str, Any],
        *,
        schema: str,
        camera_id: str | None = None,
        retain: bool = False,
    ) -> str:
        self.sent.append((topic_suffix, payload, schema, camera_id, retain))
        return "id"

    def on(self, suffix: str) -> list[dict[str, Any]]:
        return [p for t, p, *_ in self.sent if t == suffix]


@pytest.fixture(scope="module")
def detector(models_dir: Path) -> Iterator[FaceDetector]:  # noqa: F811
    det = builders.detector(DetectorConfig(models_dir=models_dir))
    yield det
    det.close()


def config(
    heads: str = "age = true\ngender = true", extra: str = "", agent: str = "watchdog_stall_s = 5"
) -> AgentConfig:
    return parse_config(
        f'[agent]\n{agent}\n[attributes]\nmodel = "{MODEL}"\n{heads}\n'
        f"[tracking]\nmin_age_years = 0\nupdate_interval_s = 0.2\n{extra}\n"
        '[[cameras]]\nid = "cam0"\n[cameras.source]\ntype = "demo"\n'
    )


def agent_with(cfg: AgentConfig, detector: FaceDetector, n_frames: int = 40) -> tuple[Agent, RecordingPublisher]:
    agent = Agent(cfg)
    pub = RecordingPublisher()
    agent.sink = Sink(pub)
    agent.classifier, agent.meta = builders.classifier(cfg.attributes)
    heads = cfg.attributes.enabled()
    analytics = builders.camera_analytics("cam0", cfg.tracking, cfg.analytics, agent.meta, heads)
    stages = CameraStages(detector, agent.classifier, analytics, builders.pose_fn())
    runner = CameraRunner("cam0", ListFeed(frames(n_frames)), stages, agent.timings, agent.sink.send, 5.0)
    agent.runners.append(runner)
    return agent, pub


def analyse(agent: Agent, n: int) -> None:
    for _ in range(n):
        agent.runners[0].poll(0.0, paused=False)


def test_apply_config_switches_heads_off_and_on_and_swaps_classifier_and_analytics(detector: FaceDetector) -> None:
    agent, pub = agent_with(config(), detector)
    runner = agent.runners[0]
    analyse(agent, 6)
    first_clf, first_analytics = agent.classifier, runner.stages.analytics
    assert first_clf is not None

    off = config("age = false\ngender = false")
    agent.apply_config(off, ("attributes.age", "attributes.gender"))
    assert agent.classifier is None and runner.stages.classifier is None
    assert first_clf.model.interp is None  # the old interpreter was closed
    assert runner.stages.analytics is not first_analytics
    assert [e["reason"] for e in pub.on("cameras/cam0/tracks") if e.get("event") == "end"] == ["reload"]
    analyse(agent, 6)
    assert runner.errors.counts == {}  # nothing ran on the closed interpreter

    agent.apply_config(config(), ("attributes.age", "attributes.gender"))
    assert agent.classifier is not None and runner.stages.classifier is agent.classifier
    analyse(agent, 6)
    updates = [p for p in pub.on("cameras/cam0/tracks") if p.get("event") == "update"]
    assert updates and "gender" in updates[-1]["attributes"]
    info = pub.on("info")
    assert [i["attributes"] for i in info] == [[], ["age", "gender"]]  # re-published after each change


def test_a_head_switched_off_keeps_the_interpreter_and_reads_fewer_heads(detector: FaceDetector) -> None:
    agent, _ = agent_with(config(), detector)
    clf = agent.classifier
    agent.apply_config(config("age = true\ngender = false"), ("attributes.gender",))
    assert agent.classifier is clf and clf is not None and clf.enabled == ("age",)
    assert agent.runners[0].stages.classifier is clf


def test_a_tracking_change_rebuilds_analytics_with_the_new_setting(detector: FaceDetector) -> None:
    agent, pub = agent_with(config(), detector)
    agent.apply_config(config(extra="min_face_px = 5000"), ("tracking.min_face_px",))
    analyse(agent, 8)
    updates = [p for p in pub.on("cameras/cam0/tracks") if p.get("event") == "update"]
    assert updates and updates[-1]["attributes"]["age"]["reason"] == "small_face"


def test_apply_config_sets_log_level_and_health_limit(detector: FaceDetector) -> None:
    agent, _ = agent_with(config(), detector)
    cfg = config(agent='watchdog_stall_s = 2\nlog_level = "debug"')
    try:
        agent.apply_config(cfg, ("agent.log_level", "agent.watchdog_stall_s"))
        assert logging.getLogger("edge_agent").getEffectiveLevel() == logging.DEBUG
        assert agent.runners[0].unhealthy_after_s == 2.0
    finally:
        agent.apply_config(config(), ("agent.log_level",))


def test_an_unhealthy_camera_is_reported_once_and_stops_the_watchdog(detector: FaceDetector) -> None:
    agent, pub = agent_with(config(), detector)
    agent.ready_sent = True
    runner = agent.runners[0]
    runner.unhealthy_after_s = 0.05
    now = time.monotonic()
    agent.heartbeat = now
    assert agent.making_progress(now)
    runner.reconfigure(agent.classifier, Broken())
    analyse(agent, 1)
    time.sleep(0.1)
    analyse(agent, 1)
    now = time.monotonic()
    agent.heartbeat = now
    agent._check_health(now)
    agent._check_health(now)  # no change: no second message
    statuses = pub.on("cameras/cam0/status")
    assert [s["healthy"] for s in statuses] == [False]
    assert "TypeError" in statuses[0]["reason"]
    assert not agent.making_progress(now)
    stats = agent.stats_message().payload["cameras"]["cam0"]
    assert stats["errors"] == 2 and stats["healthy"] is False
    runner.reconfigure(None, builders.camera_analytics("cam0", agent.cfg.tracking, agent.cfg.analytics, None, ()))
    analyse(agent, 1)
    agent._check_health(time.monotonic())
    assert [s["healthy"] for s in pub.on("cameras/cam0/status")] == [False, True]
    assert agent.making_progress(time.monotonic())


def test_stats_message_reports_each_camera_and_validates(detector: FaceDetector) -> None:
    agent, _ = agent_with(config(), detector)
    analyse(agent, 5)
    first = agent.stats_message()
    cam = first.payload["cameras"]["cam0"]
    assert cam["frames_processed"] == 5 and cam["processed_fps"] > 0 and cam["errors"] == 0
    assert first.payload["inference_ms"]["detector"]["count"] == 5
    second = agent.stats_message()  # nothing analysed since: the interval rate is 0, the totals stay
    assert (
        second.payload["cameras"]["cam0"]["processed_fps"] == 0
        and second.payload["cameras"]["cam0"]["frames_processed"] == 5
    )
    env = {"msg_id": "00000000-0000-4000-8000-000000000000", "seq": 1, "epoch": 1, "ts": "2027-01-15T08:00:00.250Z"}
    validate({"schema": first.schema, **env, "device_id": "d", "camera_id": None, **first.payload})


def test_status_and_pause_resume_reflect_in_camera_status(detector: FaceDetector) -> None:
    agent, pub = agent_with(config(), detector)
    analyse(agent, 6)
    assert agent.pause() == {"paused": True}
    assert agent.status()["paused"] is True and agent.status()["cameras"]["cam0"]["processed_total"] == 6
    assert pub.on("cameras/cam0/status")[-1]["paused"] is True
    assert [e["reason"] for e in pub.on("cameras/cam0/tracks") if e.get("event") == "end"] == ["paused"]
    assert agent.resume() == {"paused": False}
    assert pub.on("cameras/cam0/status")[-1]["paused"] is False
