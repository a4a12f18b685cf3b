"""`Agent._add_camera` and the command subscription in process: what a built agent's cameras publish.

The agent is the real composition root as `run()` has it after `_build()` (real models, real demo and folder
cameras, a real publisher talking to a real mosquitto); the pipeline thread is the agent's own `_process_loop`.
Everything is checked where a user sees it: on a real MQTT subscriber, in `agent.workers`, and in how long
teardown takes. The only fake is at the edge: a camera driver whose read hangs (to see the 1 s close budget).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import pytest

from edge_agent.capture.demo import DemoSource
from edge_agent.capture.status import CaptureStatus
from edge_agent.config import AgentConfig, parse_config
from edge_agent.daemon.agent import Agent
from tests.fixtures.broker import Broker, Collector, Received
from tests.fixtures.media import astronaut_bgr
from tests.test_daemon_agent import MODEL
from tests.test_daemon_agent_build import DEVICE, NO_HEADS, built
from tests.test_e2e import models_dir  # noqa: F401 - session fixture: the detector models

BASE = f"edge-agent/{DEVICE}"
DEMO = '[[cameras]]\nid = "{id}"\n[cameras.source]\ntype = "demo"\n'


def cameras_config(
    models_dir: Path,  # noqa: F811
    state: Path,
    mqtt_port: int,
    cameras: str,
    *,
    heads: str = "age = true\ngender = true",
) -> AgentConfig:
    """The given [[cameras]] tables, the detector models from the test cache, the broker on `mqtt_port`."""
    return parse_config(
        f'[agent]\nwatchdog_stall_s = 5\ndevice_id = "{DEVICE}"\nstate_dir = "{state}"\n'
        f'[attributes]\nmodel = "{MODEL}"\n{heads}\n'
        "[tracking]\nmin_age_years = 0\nupdate_interval_s = 0.2\n"
        f'[detector]\nmodels_dir = "{models_dir}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n{cameras}'
    )


@contextmanager
def analysing(agent: Agent) -> Iterator[None]:
    """The agent's own pipeline thread (as `run()` starts it), stopped and joined on exit."""
    thread = threading.Thread(target=agent._process_loop, name="test-pipeline", daemon=True)
    thread.start()
    try:
        yield
    finally:
        agent.stop.set()
        thread.join(5.0)
        assert not thread.is_alive()


def payloads(sub: Collector, suffix: str) -> list[dict[str, Any]]:
    return [m.json() for m in sub.on(suffix)]


def camera_threads(camera_id: str) -> list[threading.Thread]:
    """The capture worker's live threads for one camera (named by CameraWorker.start)."""
    names = (f"capture-{camera_id}", f"watchdog-{camera_id}")
    return [t for t in threading.enumerate() if t.name in names]


def has_stats(ms: list[Received]) -> bool:
    return any(m.topic == f"{BASE}/stats" for m in ms)


def statuses(messages: list[Received], camera_id: str) -> list[tuple[str, str | None]]:
    return [
        (m.json()["state"], m.json()["reason"]) for m in messages if m.topic == f"{BASE}/cameras/{camera_id}/status"
    ]


# ----- detection, classification, pose and the sink -----------------------------------------------------------
def test_a_built_demo_camera_publishes_tracks_with_attributes_and_pose_and_an_audience(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    collector_factory: Callable[..., Collector],
) -> None:
    sub = collector_factory(broker, f"{BASE}/#")

    def classified(ms: list[Received]) -> bool:
        return any(
            m.topic == f"{BASE}/cameras/cam0/tracks"
            and m.json().get("attributes", {}).get("gender", {}).get("label") in ("female", "male")
            for m in ms
        )

    cfg = cameras_config(models_dir, tmp_path / "state", broker.port, DEMO.format(id="cam0"))
    with built(cfg) as agent, analysing(agent):
        assert sub.wait_for(classified, timeout=20.0), f"no classified track after {agent.runners[0].processed_total}"
    updates = [p for p in payloads(sub, "tracks") if p["event"] == "update" and "attributes" in p]
    assert updates and all(p["camera_id"] == "cam0" for p in updates)
    last = updates[-1]
    assert set(last["attributes"]) >= {"age", "gender"}
    assert last["attributes"]["gender"]["label"] in ("female", "male", "unknown")
    assert any(p["attributes"]["gender"]["label"] != "unknown" for p in updates)  # the classifier really ran
    poses = [p["pose"] for p in updates if p["pose"] is not None]  # the pose stage ran on the detections
    assert poses and all(set(pose) == {"yaw", "pitch", "roll"} for pose in poses)
    assert all(isinstance(v, float) for pose in poses for v in pose.values())
    audience = payloads(sub, "audience")
    assert audience and audience[0]["camera_id"] == "cam0"


# ----- workers, camera status and teardown ---------------------------------------------------------------------
def test_each_camera_has_its_running_worker_publishes_its_status_and_is_closed_at_teardown(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    collector_factory: Callable[..., Collector],
) -> None:
    sub = collector_factory(broker, f"{BASE}/#")
    cfg = cameras_config(
        models_dir, tmp_path / "state", broker.port, DEMO.format(id="door") + DEMO.format(id="lobby"), heads=NO_HEADS
    )
    with built(cfg) as agent:
        assert sorted(agent.workers) == ["door", "lobby"]
        for runner in agent.runners:
            assert agent.workers[runner.camera_id] is runner.feed
        assert sub.wait_for(lambda ms: all(("online", None) in statuses(ms, c) for c in ("door", "lobby")))
        workers = dict(agent.workers)
        assert all(w.status.state == "online" and not w.finished for w in workers.values())
        online = [p for p in payloads(sub, "status") if p.get("camera_id") == "door"]
        assert online[0]["state"] == "online" and online[0]["source"] == "demo"
    assert all(w.finished for w in workers.values())
    assert camera_threads("door") == [] and camera_threads("lobby") == []  # stopped, within the budget
    assert sub.wait_for(lambda ms: all(statuses(ms, c)[-1:] == [("offline", "closed")] for c in ("door", "lobby")))
    assert sub.wait_for(has_stats)
    stats = payloads(sub, "stats")[-1]  # the final figures, sent at teardown
    for cam in ("door", "lobby"):  # guided detection (the default schedule): its own counters
        assert "full_scans_by_reason" in stats["cameras"][cam]["detection"]
        assert "region_misses" in stats["cameras"][cam]["detection"]


def test_the_status_a_capture_thread_reports_is_the_one_published(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    collector_factory: Callable[..., Collector],
) -> None:
    """A change reported by the capture thread is published as reported, not re-read from the worker (which may
    have moved on by then: a stall that cleared at once must still show as a stall, then online)."""
    sub = collector_factory(broker, f"{BASE}/#")
    cfg = cameras_config(models_dir, tmp_path / "state", broker.port, DEMO.format(id="door"), heads=NO_HEADS)
    with built(cfg) as agent:
        assert sub.wait_for(lambda ms: ("online", None) in statuses(ms, "door"))
        worker = agent.workers["door"]
        assert worker.status.state == "online"
        agent._on_camera_status("door", CaptureStatus("stalled", time.time(), "no frame for 10s"))
        assert sub.wait_for(lambda ms: ("stalled", "no frame for 10s") in statuses(ms, "door"))
    msg = next(p for p in payloads(sub, "status") if p.get("reason") == "no frame for 10s")
    assert msg["camera_id"] == "door" and msg["state"] == "stalled" and msg["source"] == "demo"


# ----- remote commands -----------------------------------------------------------------------------------------
def test_a_command_published_on_cmd_gets_its_result(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    collector_factory: Callable[..., Collector],
) -> None:
    sub = collector_factory(broker, f"{BASE}/#")
    cfg = cameras_config(models_dir, tmp_path / "state", broker.port, DEMO.format(id="door"), heads=NO_HEADS)
    sent: list[str] = []

    def answered(ms: list[Received]) -> bool:
        return any(m.topic == f"{BASE}/cmd/status/result" for m in ms)

    with built(cfg) as agent, analysing(agent):
        deadline = time.monotonic() + 10.0
        while not answered(sub.messages) and time.monotonic() < deadline:  # until the agent's SUBSCRIBE is in
            sent.append(f"r-{len(sent)}")
            sub.client.publish(f"{BASE}/cmd/status", json.dumps({"id": sent[-1]}), qos=1)
            sub.wait_for(answered, timeout=0.5)
        assert answered(sub.messages), f"no result for {sent}"
    result = payloads(sub, "cmd/status/result")[0]
    assert result["ok"] is True and result["error"] is None and result["request_id"] in sent
    assert result["result"]["paused"] is False and list(result["result"]["cameras"]) == ["door"]


# ----- a folder of photos --------------------------------------------------------------------------------------
def test_a_folder_camera_is_stills_each_photo_a_visit_of_its_own(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    collector_factory: Callable[..., Collector],
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):  # the same photo twice: a sequence would track one face across them
        cv2.imwrite(str(folder / f"shot_{i}.jpg"), astronaut_bgr())
    cameras = f'[[cameras]]\nid = "photos"\nmax_fps = 0\n[cameras.source]\ntype = "folder"\npath = "{folder}"\n'
    sub = collector_factory(broker, f"{BASE}/#")
    cfg = cameras_config(models_dir, tmp_path / "state", broker.port, cameras)

    def ended(ms: list[Received]) -> bool:
        return sum(m.topic.endswith("/tracks") and m.json()["event"] == "end" for m in ms) >= 2

    with built(cfg) as agent, analysing(agent):
        assert sub.wait_for(ended, timeout=15.0), payloads(sub, "tracks")
        assert sub.wait_for(lambda ms: ("offline", "eof") in statuses(ms, "photos"))
    assert sub.wait_for(has_stats)
    ends = [p for p in payloads(sub, "tracks") if p["event"] == "end"]
    assert [e["reason"] for e in ends] == ["still", "still"]
    assert len({e["track_id"] for e in ends}) == 2 and all(e["camera_id"] == "photos" for e in ends)
    for e in ends:  # the one face of each photo, detected and classified (whatever the model makes of her)
        gender = e["attributes"]["gender"]  # classified: a probability, published or held back as low confidence
        assert e["samples"] == 1 and gender.get("p") is not None and gender.get("reason") in (None, "low_confidence"), e
        assert e["attributes"]["age_years"] > 0
    stats = payloads(sub, "stats")[-1]["cameras"]["photos"]["detection"]
    assert stats["full_scans"] == 2 and "full_scans_by_reason" not in stats  # a full scan per photo, no schedule


# ----- the close budget ----------------------------------------------------------------------------------------
def test_a_camera_stuck_in_a_read_is_given_one_second_at_teardown(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inside, release = threading.Event(), threading.Event()
    real_grab = DemoSource.grab

    def grab(self: DemoSource) -> bool:  # a driver that hangs in a read once asked to (the edge)
        if stuck.is_set():
            inside.set()
            release.wait(5.0)
        return real_grab(self)

    stuck = threading.Event()
    monkeypatch.setattr(DemoSource, "grab", grab)
    took: dict[str, float] = {}

    def timed(name: str, close: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            t0 = time.monotonic()
            try:
                close()
            finally:
                took[name] = time.monotonic() - t0

        return run

    cfg = cameras_config(models_dir, tmp_path / "state", broker.port, DEMO.format(id="door"), heads=NO_HEADS)
    threads: list[threading.Thread] = []
    try:
        with built(cfg) as agent:
            threads = camera_threads("door")
            stuck.set()
            assert inside.wait(5.0)
            agent._closers[:] = [(name, timed(name, close)) for name, close in agent._closers]
        assert 0.9 <= took["camera door"] < 1.8, took  # the read is left to time out on its own
        assert [t.name for t in camera_threads("door")] == ["capture-door"]
    finally:
        release.set()
        for t in threads:
            t.join(5.0)
