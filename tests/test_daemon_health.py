"""A camera whose every frame fails: reported unhealthy on the broker, counted as errors, and no watchdog pings.

The agent runs for real (demo camera, real models, real mosquitto, a real AF_UNIX notify socket); the one
stand-in is the broken stage itself, swapped in at the runner's stage seam while the agent runs.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import parse_config
from edge_agent.daemon.agent import Agent
from edge_agent.daemon.sinks import Outgoing
from edge_agent.publish.schemas import validate
from edge_agent.records import Face, Frame, TrackHint
from edge_agent.systemd import Notifier
from tests.test_e2e import models_dir  # noqa: F401 - session fixture: the detector models

pytestmark = pytest.mark.slow


class Broken:
    def hints(self, t: float) -> list[TrackHint]:
        return []

    def update(self, faces: list[Face], frame: Frame, classify: object = None) -> list[Outgoing]:
        raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")

    def flush(self, reason: str) -> list[Outgoing]:
        return []


class Datagrams:
    """Reads the notify socket on a thread; each datagram with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.got: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.append((time.monotonic(), self.sock.recv(4096)))
            except TimeoutError:
                continue

    def pings_between(self, t0: float, t1: float) -> int:
        return sum(1 for t, d in list(self.got) if t0 <= t <= t1 and d == b"WATCHDOG=1")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[Datagrams]:
    d = Datagrams(tmp_path / "notify.sock")
    yield d
    d.close()


def wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


def test_every_frame_failing_makes_the_camera_unhealthy_and_stops_watchdog_pings(
    tmp_path: Path,
    broker: Any,
    collector_factory: Any,
    models_dir: Path,  # noqa: F811
    notify: Datagrams,
) -> None:
    cfg = parse_config(f"""
[agent]
device_id = "health"
state_dir = "{tmp_path / "state"}"
stats_interval_s = 0.5
watchdog_stall_s = 1.0
[[cameras]]
id = "cam0"
[cameras.source]
type = "demo"
fps = 10
[detector]
models_dir = "{models_dir}"
[attributes]
age = false
gender = false
[mqtt]
host = "{broker.host}"
port = {broker.port}
""")
    sub = collector_factory(broker, "edge-agent/health/#")
    notifier = Notifier(env={"NOTIFY_SOCKET": str(notify.sock.getsockname()), "WATCHDOG_USEC": "400000"})
    agent = Agent(cfg, notifier=notifier)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait(lambda: notify.pings_between(0, time.monotonic()) > 0, 30, "first watchdog ping")
        runner = agent.runners[0]
        good = runner.stages
        runner.stages = dataclasses.replace(good, analytics=Broken())  # one attribute store: atomic for the loop
        status_topic = "edge-agent/health/cameras/cam0/status"
        assert sub.wait_for(
            lambda ms: any(m.topic == status_topic and m.json().get("healthy") is False for m in ms), 10
        )
        unhealthy_at = time.monotonic()
        time.sleep(1.5)
        assert notify.pings_between(unhealthy_at + 0.3, time.monotonic()) == 0, "an unhealthy camera must stop pings"
        stats = [m.json() for m in sub.on("stats")]
        last = stats[-1]["cameras"]["cam0"]
        assert last["errors"] > 0 and last["frames_bad"] == 0 and last["healthy"] is False
        runner.stages = good
        assert sub.wait_for(
            lambda ms: [m.json().get("healthy") for m in ms if m.topic == status_topic][-1:] == [True], 10
        ), "recovery is reported"
        recovered_at = time.monotonic()
        wait(lambda: notify.pings_between(recovered_at, time.monotonic()) > 0, 5, "pings after recovery")
    finally:
        stop.set()
        thread.join(10)
        notifier.close()
    assert not thread.is_alive()
    statuses = [m.json() for m in sub.messages if m.topic == status_topic]
    bad = next(s for s in statuses if s.get("healthy") is False)
    assert "every frame fails: TypeError" in bad["reason"]
    for m in sub.messages:
        if "/cmd/" not in m.topic:
            validate(m.json())
