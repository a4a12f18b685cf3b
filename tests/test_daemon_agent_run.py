"""`Agent.run()` in process: the supervising main loop, the pipeline thread, the notify socket, teardown.

`run()` runs for real here (real models, a real camera source, a real publisher, a real AF_UNIX notify socket,
the real signal handlers of `edge-agent run`); what the agent sends is read by a spy around `Sink.send` that
passes every message on. The few fakes are at the capture edge (a feed that wedges or breaks) and a stand-in
publisher for the `stats`/status message shapes, where `_build` is not needed.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest

from edge_agent.capture.status import CaptureSnapshot, CaptureStatus
from edge_agent.config import AgentConfig, parse_config
from edge_agent.daemon import builders, messages
from edge_agent.daemon.agent import Agent
from edge_agent.daemon.signals import Signals
from edge_agent.daemon.sinks import Outgoing, Sink
from edge_agent.detect.base import FaceDetector
from edge_agent.systemd import Notifier
from tests.fixtures.broker import free_port
from tests.fixtures.media import astronaut_bgr
from tests.test_daemon_agent import RecordingPublisher, agent_with, analyse, config, detector  # noqa: F401
from tests.test_daemon_camera import Broken, ListFeed, frames
from tests.test_daemon_health import Datagrams, notify  # noqa: F401 - fixture
from tests.test_e2e import models_dir  # noqa: F401 - session fixture: the detector models

AGENT_LOG = "edge_agent.daemon.agent"
DEVICE = "dev-run"
READY = b"READY=1\nSTATUS=first frame analysed"


def run_config(
    models_dir: Path,  # noqa: F811
    state: Path,
    *,
    agent: str = "watchdog_stall_s = 5",
    source: str = 'type = "demo"\nfps = 10',
) -> AgentConfig:
    """One camera, no attribute heads, the publisher pointed at a port nobody listens on (it queues)."""
    return parse_config(f"""
[agent]
device_id = "{DEVICE}"
state_dir = "{state}"
{agent}
[[cameras]]
id = "cam0"
[cameras.source]
{source}
[detector]
models_dir = "{models_dir}"
[detector.schedule]
mode = "every_frame"
[attributes]
age = false
gender = false
[mqtt]
host = "127.0.0.1"
port = {free_port()}
""")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, Outgoing]]:
    """Every message the agent hands to its sink, with the wall time (passed on to the real sink)."""
    out: list[tuple[float, Outgoing]] = []
    real = Sink.send

    def spy(self: Sink, msg: Outgoing) -> None:
        out.append((time.time(), msg))
        real(self, msg)

    monkeypatch.setattr(Sink, "send", spy)
    return out


def on(sent: list[tuple[float, Outgoing]], suffix: str) -> list[tuple[float, Outgoing]]:
    return [(t, m) for t, m in sent if m.topic_suffix == suffix]


def agent_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == AGENT_LOG]


def record(caplog: pytest.LogCaptureFixture, message: str) -> logging.LogRecord:
    return next(r for r in caplog.records if r.name == AGENT_LOG and r.getMessage() == message)


def wait(pred: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)


def in_background(
    fn: Callable[[], None], stop: threading.Event | None = None
) -> tuple[threading.Thread, list[BaseException]]:
    """The test's controller (the agent itself runs in the main thread, as `edge-agent run` does); it sets
    `stop` when done, also when it fails, so a failing test never leaves run() running."""
    errors: list[BaseException] = []

    def body() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test after run() returns
            errors.append(exc)
        finally:
            if stop is not None:
                stop.set()

    t = threading.Thread(target=body, name="test-controller", daemon=True)
    t.start()
    return t, errors


def find_pipeline(out: list[threading.Thread], stop: threading.Event) -> None:
    """Note the agent's pipeline thread once it has started (gives up when the run has stopped)."""
    wait(lambda: stop.is_set() or any(t.name == "pipeline" for t in threading.enumerate()), 30, "pipeline thread")
    out.extend(t for t in threading.enumerate() if t.name == "pipeline")


# ----- --duration, the run log lines, the pipeline thread, stats timing ---------------------------------------------
def test_a_duration_run_stops_on_time_and_sends_stats_every_interval_but_not_before(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    sent: list[tuple[float, Outgoing]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = run_config(models_dir, tmp_path / "state", agent="watchdog_stall_s = 5\nstats_interval_s = 0.5")
    agent = Agent(cfg, duration_s=2.0)
    pipeline: list[threading.Thread] = []
    stop = threading.Event()
    controller, errors = in_background(lambda: find_pipeline(pipeline, stop))
    with caplog.at_level(logging.INFO, logger=AGENT_LOG):
        assert agent.run(stop) == 0
    controller.join(5)
    assert not errors, errors
    lines = agent_lines(caplog)
    assert lines[0] == f"edge-agent {messages.VERSION} running as device {DEVICE} with 1 camera(s)"
    assert lines[-2:] == ["--duration 2.0 s reached; stopping", "stopped"]
    assert "every camera has ended; stopping" not in lines
    (thread,) = pipeline
    assert thread.daemon is True and not thread.is_alive()

    started = record(caplog, lines[0]).created  # just before the main loop starts
    ended = record(caplog, "--duration 2.0 s reached; stopping").created
    assert ended - started >= 2.0 - (started - agent.started_ts) - 0.05  # not before the duration
    assert ended - agent.started_ts >= 2.0 - 0.05
    stats = on(sent, "stats")
    loop_stats = [t for t, _ in stats if t <= ended]
    assert stats[-1][0] > ended  # the final figures at teardown
    assert 2 <= len(loop_stats) <= 4, [round(t - started, 2) for t in loop_stats]
    assert loop_stats[0] - started >= 0.5 - 0.02  # not before one interval
    assert all(b - a >= 0.5 - 0.02 for a, b in itertools.pairwise(loop_stats))
    payload = stats[0][1].payload
    assert 0.0 < payload["uptime_s"] < 10.0
    assert "queue_bytes" in payload["publish"]  # the publisher's own figures, not the placeholder


# ----- a finite source ends the run -------------------------------------------------------------------------------
def test_a_folder_source_that_ends_stops_the_run(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    sent: list[tuple[float, Outgoing]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.jpg"), astronaut_bgr())
    cfg = run_config(models_dir, tmp_path / "state", source=f'type = "folder"\npath = "{folder}"')
    agent = Agent(cfg)
    t0 = time.monotonic()
    with caplog.at_level(logging.INFO, logger=AGENT_LOG):
        assert agent.run(threading.Event()) == 0
    assert time.monotonic() - t0 < 20
    assert agent_lines(caplog)[-2:] == ["every camera has ended; stopping", "stopped"]
    assert agent.runners[0].processed_total == 3


# ----- READY=1 after the first analysed frame, once ----------------------------------------------------------------
def test_ready_is_sent_once_after_the_first_analysed_frame_with_its_status(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    notify: Datagrams,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = run_config(models_dir, tmp_path / "state")
    notifier = Notifier(env={"NOTIFY_SOCKET": str(notify.sock.getsockname())})
    agent = Agent(cfg, notifier=notifier)
    agent.paused = True  # frames are taken but not analysed until resumed
    stop = threading.Event()
    resumed: list[float] = []

    def control() -> None:
        wait(lambda: agent.runners and agent.runners[0].paused_total >= 3, 30, "paused frames")
        time.sleep(0.6)  # two main-loop ticks with frames taken but none analysed
        resumed.append(time.monotonic())
        agent.commands.request("resume", "test")
        wait(lambda: any(d == READY for _, d in notify.got), 10, "READY=1")
        time.sleep(0.8)  # more ticks, more frames: no second READY
        stop.set()

    controller, errors = in_background(control, stop)
    try:
        with caplog.at_level(logging.INFO, logger=AGENT_LOG):
            assert agent.run(stop) == 0
        controller.join(5)
        wait(lambda: any(d == b"STOPPING=1" for _, d in notify.got), 2, "STOPPING=1")
    finally:
        stop.set()
        notifier.close()
    assert not errors, errors
    got = [d for _, d in notify.got]
    assert got == [READY, b"STOPPING=1"]  # no watchdog configured: no pings
    ready_at = next(t for t, d in notify.got if d == READY)
    assert ready_at > resumed[0]
    assert agent_lines(caplog).count("first frame analysed; ready") == 1


# ----- watchdog pings, and their stopping while a camera is unhealthy ----------------------------------------------
def test_watchdog_pings_stop_while_a_camera_is_unhealthy_and_resume_on_recovery(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    notify: Datagrams,  # noqa: F811
    sent: list[tuple[float, Outgoing]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = run_config(models_dir, tmp_path / "state", agent="watchdog_stall_s = 0.6")
    notifier = Notifier(env={"NOTIFY_SOCKET": str(notify.sock.getsockname()), "WATCHDOG_USEC": "400000"})
    agent = Agent(cfg, notifier=notifier)
    stop = threading.Event()
    marks: dict[str, float] = {}

    def control() -> None:
        wait(lambda: notify.pings_between(0, time.monotonic()) >= 2, 30, "watchdog pings")
        runner = agent.runners[0]
        good = runner.stages
        runner.stages = dataclasses.replace(good, analytics=Broken())
        wait(lambda: "cam0" in agent._unhealthy, 10, "unhealthy camera")
        marks["unhealthy"] = time.monotonic()
        time.sleep(1.0)
        marks["recover"] = time.monotonic()
        runner.stages = good
        wait(lambda: not agent._unhealthy, 10, "recovery")
        marks["healthy"] = time.monotonic()
        wait(lambda: notify.pings_between(marks["healthy"], time.monotonic()) >= 1, 5, "pings after recovery")
        stop.set()

    controller, errors = in_background(control, stop)
    try:
        with caplog.at_level(logging.WARNING, logger=AGENT_LOG):
            assert agent.run(stop) == 0
        controller.join(5)
    finally:
        stop.set()
        notifier.close()
    assert not errors, errors
    got = [d for _, d in notify.got]
    assert got[0] == READY and got[1] == b"WATCHDOG=1"  # armed by READY=1
    assert notify.pings_between(marks["unhealthy"] + 0.05, marks["recover"]) == 0
    assert agent_lines(caplog) == [
        "camera cam0: every frame fails (TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'); "
        "unhealthy, watchdog pings stop",
        "camera cam0: frames are analysed again; healthy",
    ]
    healthy = [m.payload["healthy"] for _, m in on(sent, "cameras/cam0/status") if "healthy" in m.payload]
    assert False in healthy and True in healthy[healthy.index(False) :]  # reported unhealthy, then recovered


def test_watchdog_is_due_exactly_one_interval_after_the_last_ping(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    d = Datagrams(path)
    notifier = Notifier(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
    try:
        agent = Agent(parse_config('[[cameras]]\nid = "cam0"\n'), notifier=notifier)
        agent.ready_sent = True
        agent.heartbeat = 1000.0
        assert agent.watchdog_tick(1000.0) is True
        agent.heartbeat = 1001.0
        assert agent.watchdog_tick(1001.0) is True  # 1.0 s later: due
    finally:
        notifier.close()
        d.close()


# ----- SIGHUP while run() runs: exactly one in-device reload command ------------------------------------------------
def test_sighup_during_run_becomes_one_reload_command_answered_with_its_request_id(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    sent: list[tuple[float, Outgoing]],
) -> None:
    agent = Agent(run_config(models_dir, tmp_path / "state"))  # no --config: the reload fails, with a result
    handlers = Signals().install()
    try:
        agent.reload_requested = handlers.reload

        def control() -> None:
            wait(lambda: agent.runners and agent.runners[0].processed_total > 0, 30, "an analysed frame")
            os.kill(os.getpid(), signal.SIGHUP)
            wait(lambda: on(sent, "cmd/reload/result"), 5, "the reload result")
            time.sleep(0.6)  # more ticks: no second command
            handlers.stop.set()

        controller, errors = in_background(control, handlers.stop)
        assert agent.run(handlers.stop) == 0
        controller.join(5)
    finally:
        handlers.restore()
    assert not errors, errors
    assert handlers.received == ["SIGHUP"]
    results = [m for _, m in sent if m.topic_suffix.startswith("cmd/")]
    assert len(results) == 1
    (result,) = results
    assert result.topic_suffix == "cmd/reload/result" and result.schema == messages.CMD_RESULT_SCHEMA
    assert result.payload["command"] == "reload" and result.payload["request_id"] == "SIGHUP"
    assert result.payload["ok"] is False and "without --config" in result.payload["error"]
    assert agent.commands.stats()["received"] == 1 and agent.commands.stats()["results"] == 1


# ----- the pipeline thread: dead, wedged ---------------------------------------------------------------------------
class FakeWorker:
    """A capture worker at the edge: no frames; `latest` can wedge after the stop, or fail (a driver bug)."""

    def __init__(self, stop: threading.Event, wedge_s: float = 0.0, fail: bool = False) -> None:
        self.stop, self.wedge_s, self.fail = stop, wedge_s, fail

    def start(self) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass

    @property
    def status(self) -> CaptureStatus:
        return CaptureStatus("online", time.time())

    @property
    def finished(self) -> bool:
        return False

    def latest(self, timeout: float | None = None) -> None:
        if self.fail:
            raise RuntimeError("driver gone")
        if self.stop.wait(timeout):
            time.sleep(self.wedge_s)  # a read stuck in the driver past the stop

    def snapshot(self) -> CaptureSnapshot:
        return CaptureSnapshot("online", 0, 0, 0, 0, 0.0)


def run_with_worker(
    monkeypatch: pytest.MonkeyPatch, cfg: AgentConfig, worker: FakeWorker, duration_s: float
) -> tuple[int, float, threading.Thread | None]:
    monkeypatch.setattr(builders, "camera_worker", lambda cam, on_status: worker)
    agent = Agent(cfg, duration_s=duration_s)
    seen: list[threading.Thread] = []
    controller, _ = in_background(lambda: find_pipeline(seen, worker.stop))
    t0 = time.monotonic()
    rc = agent.run(worker.stop)
    elapsed = time.monotonic() - t0
    controller.join(5)
    return rc, elapsed, (seen[0] if seen else None)


@pytest.mark.parametrize(("wedge_s", "late"), [(1.6, False), (2.6, True)])
def test_a_wedged_pipeline_thread_gets_half_the_stop_budget(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    wedge_s: float,
    late: bool,
) -> None:
    worker = FakeWorker(threading.Event(), wedge_s=wedge_s)
    with caplog.at_level(logging.INFO, logger=AGENT_LOG):
        rc, _, thread = run_with_worker(monkeypatch, run_config(models_dir, tmp_path / "state"), worker, 0.3)
    assert rc == 0
    late_line = "pipeline thread did not stop in time (wedged inference?); closing anyway"
    assert (late_line in agent_lines(caplog)) is late
    assert thread is not None
    thread.join(5)  # the wedged read ends on its own (daemon thread)
    assert agent_lines(caplog)[-1] == "stopped"


def test_a_pipeline_thread_that_dies_stops_the_run_with_a_failure_exit(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    died: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))
    worker = FakeWorker(threading.Event(), fail=True)
    with caplog.at_level(logging.INFO, logger=AGENT_LOG):
        rc, elapsed, _ = run_with_worker(monkeypatch, run_config(models_dir, tmp_path / "state"), worker, 30.0)
    assert rc == 1 and elapsed < 10  # a failure exit: systemd's Restart=on-failure restarts the daemon
    assert [str(e) for e in died] == ["driver gone"]
    assert agent_lines(caplog)[-2:] == ["pipeline thread ended unexpectedly; stopping", "stopped; exit status 1"]


# ----- the pipeline loop: poll budget, pause, commands --------------------------------------------------------------
class TimeoutFeed(ListFeed):
    """A list feed that records the wait each poll was given (and waits a little once it is empty)."""

    def __init__(self, n: int) -> None:
        super().__init__(frames(n))
        self.timeouts: list[float | None] = []

    def latest(self, timeout: float | None = None) -> Any:
        self.timeouts.append(timeout)
        if not self.frames:
            time.sleep(0.01)
        return super().latest(timeout)


def process_for(agent: Agent, seconds: float) -> None:
    agent.stop = threading.Event()
    t = threading.Thread(target=agent._process_loop, name="pipeline")
    t.start()
    time.sleep(seconds)
    agent.stop.set()
    t.join(5)
    assert not t.is_alive()


def test_the_pipeline_loop_shares_0_2_s_between_cameras_and_runs_commands(detector: FaceDetector) -> None:  # noqa: F811
    agent, pub = agent_with(config(), detector, n_frames=0)
    feed = TimeoutFeed(0)
    agent.runners[0].feed = feed
    agent.commands.request("status", "s1")
    process_for(agent, 0.2)
    assert feed.timeouts and set(feed.timeouts) == {0.2}
    (result,) = pub.on("cmd/status/result")
    assert result["ok"] is True and result["request_id"] == "s1" and "cam0" in result["result"]["cameras"]

    feeds = [TimeoutFeed(0), TimeoutFeed(0)]
    agent2, _ = agent_with(config(), detector, n_frames=0)
    other, _ = agent_with(config(), detector, n_frames=0)
    agent2.runners.append(other.runners[0])  # two cameras
    for runner, f in zip(agent2.runners, feeds, strict=True):
        runner.feed = f
    process_for(agent2, 0.2)
    assert set(feeds[0].timeouts) == {0.1} and set(feeds[1].timeouts) == {0.1}


def test_a_paused_agent_takes_frames_without_analysing_them(detector: FaceDetector) -> None:  # noqa: F811
    agent, _ = agent_with(config(), detector, n_frames=0)
    agent.runners[0].feed = TimeoutFeed(3)
    agent.paused = True
    process_for(agent, 0.3)
    assert agent.runners[0].paused_total == 3 and agent.runners[0].processed_total == 0


# ----- health: every camera is looked at --------------------------------------------------------------------------
def test_check_health_looks_at_every_camera_after_an_unchanged_one(detector: FaceDetector) -> None:  # noqa: F811
    agent, pub = agent_with(config(), detector)
    other, _ = agent_with(config(), detector)
    bad = other.runners[0]
    bad.camera_id = "cam1"
    bad.send = agent.sink.send
    bad.unhealthy_after_s = 0.05
    agent.runners.append(bad)
    bad.reconfigure(agent.classifier, Broken())
    bad.poll(0.0, paused=False)
    time.sleep(0.1)
    agent._check_health(time.monotonic())  # cam0 unchanged (healthy), cam1 turned unhealthy
    assert agent._unhealthy == {"cam1"}
    assert [p["healthy"] for p in pub.on("cameras/cam1/status")] == [False]


# ----- camera status messages --------------------------------------------------------------------------------------
def status_agent(paused: bool = False) -> tuple[Agent, RecordingPublisher]:
    cfg = parse_config(
        '[[cameras]]\nid = "cam0"\n[cameras.source]\ntype = "demo"\n'
        '[[cameras]]\nid = "cam1"\n[cameras.source]\ntype = "folder"\npath = "/tmp"\n'
    )
    agent = Agent(cfg)
    pub = RecordingPublisher()
    agent.sink = Sink(pub)
    agent.paused = paused
    return agent, pub


@pytest.mark.parametrize("paused", [False, True])
def test_a_status_change_while_a_camera_is_being_added_is_published_for_that_camera(paused: bool) -> None:
    agent, pub = status_agent(paused)
    status = CaptureStatus("stalled", time.time())
    agent._on_camera_status("cam1", status)
    agent._send_camera_status("cam0")  # no status and no runner yet: nothing to say
    expected = messages.camera_status(messages.CameraReport("cam1", status, paused=paused), "folder")
    assert pub.sent == [("cameras/cam1/status", expected.payload, messages.CAMERA_STATUS_SCHEMA, "cam1", True)]
    assert expected.payload["source"] == "folder" and expected.payload["paused"] is paused
    assert expected.payload["state"] == "stalled"


def test_a_status_for_a_camera_not_in_the_config_has_no_source() -> None:
    agent, pub = status_agent()
    agent._send_camera_status("ghost", CaptureStatus("online", time.time()))
    ((topic, payload, *_),) = pub.sent
    assert topic == "cameras/ghost/status" and "source" not in payload


def test_a_runners_status_message_carries_the_given_capture_status(detector: FaceDetector) -> None:  # noqa: F811
    agent, pub = agent_with(config(), detector)
    analyse(agent, 2)
    status = CaptureStatus("stalled", time.time())
    agent._send_camera_status("cam0", status)
    agent._send_camera_status("cam0")  # without one: the feed's own (online)
    assert [(p["state"], p["source"], p["healthy"]) for p in pub.on("cameras/cam0/status")] == [
        ("stalled", "demo", True),
        ("online", "demo", True),
    ]


# ----- stats without or with a failing publisher --------------------------------------------------------------------
class FailingStatsPublisher:
    class warnings:  # the attribute the agent reads
        @staticmethod
        def snapshot() -> dict[str, Any]:
            return {}

    def stats(self) -> dict[str, Any]:
        raise RuntimeError("outbox gone")


def test_stats_fall_back_to_placeholder_publish_figures(
    detector: FaceDetector,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent, _ = agent_with(config(), detector)
    placeholder = {"connected": False, "queue_depth": 0, "dropped": {}}
    with caplog.at_level(logging.INFO, logger=AGENT_LOG):
        assert agent.stats_message().payload["publish"] == placeholder  # no publisher
        assert agent_lines(caplog) == []
        agent.publisher = FailingStatsPublisher()  # type: ignore[assignment]
        assert agent.stats_message().payload["publish"] == placeholder
    assert agent_lines(caplog) == ["publisher stats unavailable"]


# ----- teardown ----------------------------------------------------------------------------------------------------
def test_teardown_flushes_visits_and_sends_final_stats_just_before_the_publisher_closes(
    detector: FaceDetector,  # noqa: F811
    notify: Datagrams,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent, pub = agent_with(config(), detector)
    notifier = Notifier(env={"NOTIFY_SOCKET": str(notify.sock.getsockname())})
    agent.notifier = notifier
    analyse(agent, 8)  # an open visit
    order: list[str] = []

    def closer(name: str, fail: bool = False) -> Callable[[], None]:
        def close() -> None:
            order.append(f"close {name}|{len(pub.sent)}")
            if fail:
                raise RuntimeError("refused")

        return close

    agent._closers[:] = [("detector", closer("detector")), ("publisher", closer("publisher", fail=True))]
    agent._closers.append(("camera cam0", closer("camera cam0")))
    before = len(pub.sent)
    try:
        with caplog.at_level(logging.ERROR, logger=AGENT_LOG):
            agent._teardown()
        wait(lambda: notify.got, 2, "STOPPING=1")
    finally:
        notifier.close()
    assert [d for _, d in notify.got] == [b"STOPPING=1"]
    after = pub.sent[before:]
    ends = [p for t, p, *_ in after if t == "cameras/cam0/tracks" and p.get("event") == "end"]
    assert ends and {e["reason"] for e in ends} == {"shutdown"}
    assert after[-1][0] == "stats" and sum(1 for t, *_ in after if t == "stats") == 1
    n = len(pub.sent)
    assert order == [f"close camera cam0|{before}", f"close publisher|{n}", f"close detector|{n}"]
    assert agent._closers == []
    (rec,) = [r for r in caplog.records if r.name == AGENT_LOG]
    assert rec.getMessage() == "closing publisher failed" and rec.exc_info is not None


def test_teardown_closes_the_notify_socket_the_agent_opened_but_not_one_it_was_given(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))  # nobody listens: the sends fail quietly
    cfg = run_config(models_dir, tmp_path / "state")
    own = Agent(cfg)
    sock = own.notifier._sock
    assert sock is not None and sock.fileno() >= 0
    own._teardown()
    assert sock.fileno() == -1
    given = Notifier()
    try:
        Agent(cfg, notifier=given)._teardown()
        assert given._sock is not None and given._sock.fileno() >= 0  # the caller's to close
    finally:
        given.close()
