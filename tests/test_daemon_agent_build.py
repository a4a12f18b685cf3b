"""`Agent._build` and teardown in process: the state directory, what gets built, closed and named, and the
remote-control log lines.

The agent here is the real composition root: `_build()` is what `run()` calls first (real models, a real demo
camera, a real publisher talking to a real mosquitto, real integrations) and `_teardown()` what it calls last.
Only the edges are faked: a closer made to fail after it has closed, a spy around the publisher's close.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from edge_agent.config import AgentConfig, ConfigError
from edge_agent.daemon import messages
from edge_agent.daemon.agent import STOP_BUDGET_S, Agent
from edge_agent.detect.base import FaceDetector
from tests.fixtures.broker import Broker, Collector, free_port
from tests.test_daemon_agent import agent_with, config, detector  # noqa: F401 - module fixture
from tests.test_e2e import models_dir  # noqa: F401 - session fixture: the detector models
from tests.test_integrations_metrics import scrape

DEVICE = "dev-build"
AGENT_LOG = "edge_agent.daemon.agent"
NO_HEADS = "age = false\ngender = false\nrace = false"
EVERY_FRAME = "[detector.schedule]\nmode = 'every_frame'\n"


def build_config(
    models_dir: Path,  # noqa: F811
    state: Path,
    mqtt_port: int,
    *,
    heads: str = "age = true\ngender = true",
    extra: str = "",
) -> AgentConfig:
    """One demo camera, the detector models from the test cache, the broker on `mqtt_port`."""
    return config(
        heads,
        agent=f'watchdog_stall_s = 5\ndevice_id = "{DEVICE}"\nstate_dir = "{state}"',
        extra=f'\n[detector]\nmodels_dir = "{models_dir}"\n{extra}\n[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n',
    )


@contextmanager
def built(cfg: AgentConfig, **kw: object) -> Iterator[Agent]:
    """The agent as `run()` has it after `_build()`; torn down on exit as `run()` does."""
    agent = Agent(cfg, **kw)  # type: ignore[arg-type]
    try:
        agent._build()
        yield agent
    finally:
        agent._teardown()


def close_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == AGENT_LOG and r.getMessage().startswith("closing ")]


def then_fail(close: Callable[[], None]) -> Callable[[], None]:
    """A closer that does its job and then fails (a fake at the edge: an interpreter or socket refusing to close)."""

    def run() -> None:
        close()
        raise RuntimeError("refused")

    return run


# ----- the state directory -----------------------------------------------------------------------------------------
def test_build_creates_the_state_dir_with_its_parents_and_mode_0700(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
) -> None:
    state = tmp_path / "var" / "lib" / "edge-agent"
    old = os.umask(0o022)  # the usual umask: it would leave 0o755 for a default mkdir
    try:
        with built(build_config(models_dir, state, broker.port, heads=NO_HEADS, extra=EVERY_FRAME)):
            assert state.is_dir()
            assert state.stat().st_mode & 0o777 == 0o700
    finally:
        os.umask(old)


def test_build_accepts_an_existing_state_dir(tmp_path: Path, models_dir: Path, broker: Broker) -> None:  # noqa: F811
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "keep").write_text("x")
    with built(build_config(models_dir, state, broker.port, heads=NO_HEADS, extra=EVERY_FRAME)) as agent:
        assert agent.publisher is not None
    assert (state / "keep").read_text() == "x"


def test_an_uncreatable_state_dir_is_a_one_line_config_error(tmp_path: Path, models_dir: Path) -> None:  # noqa: F811
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    state = blocker / "state"
    agent = Agent(build_config(models_dir, state, free_port(), heads=NO_HEADS, extra=EVERY_FRAME))
    with pytest.raises(ConfigError) as err:
        agent.run(threading.Event())
    assert str(err.value) == f"agent.state_dir = '{state}': cannot create it (Not a directory)"
    assert agent.publisher is None  # nothing after the state dir was built


# ----- teardown: what is closed, and how a failing closer is named ------------------------------------------------
def test_each_failing_closer_is_named_in_the_log_in_reverse_build_order(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    cfg = build_config(models_dir, tmp_path / "state", broker.port, extra=f'[metrics]\nlisten = "127.0.0.1:{port}"')
    with caplog.at_level(logging.ERROR, logger=AGENT_LOG), built(cfg) as agent:
        assert agent.region is not None  # guided detection (the default) builds the region search
        agent._closers[:] = [(name, then_fail(close)) for name, close in agent._closers]
    assert close_failures(caplog) == [
        "closing camera cam0 failed",
        "closing integrations failed",
        "closing publisher failed",
        "closing classifier failed",
        "closing region search failed",
        "closing detector failed",
    ]
    assert all(
        r.exc_info is not None and "refused" in str(r.exc_info[1]) for r in caplog.records if r.name == AGENT_LOG
    )


def test_teardown_closes_classifier_region_search_and_publisher_with_half_the_stop_budget(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    collector_factory: Callable[..., Collector],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sub = collector_factory(broker, f"edge-agent/{DEVICE}/#")
    budgets: list[float] = []
    with (
        caplog.at_level(logging.ERROR, logger=AGENT_LOG),
        built(build_config(models_dir, tmp_path / "state", broker.port)) as agent,
    ):
        clf, region, pub = agent.classifier, agent.region, agent.publisher
        assert clf is not None and region is not None and pub is not None
        assert clf.model.interp is not None
        real_close = pub.close

        def spy(timeout_s: float = 3.0) -> None:
            budgets.append(timeout_s)
            real_close(timeout_s)

        monkeypatch.setattr(pub, "close", spy)
        assert sub.wait_for(lambda ms: any(m.topic.endswith("/info") for m in ms)), "no info message"
        info = sub.on("info")[-1].json()
        assert agent.meta is not None
        assert info["models"]["attributes"] == {
            "name": agent.meta.name,
            "version": agent.meta.version,
            "sha256": agent.meta.sha256,
        }
    assert close_failures(caplog) == []
    assert budgets == [STOP_BUDGET_S / 2]
    assert clf.model.interp is None  # the classifier's interpreter was released
    with pytest.raises(RuntimeError, match="used after close"):
        region.search(np.zeros((480, 640, 3), np.uint8), [])
    status_topic = f"edge-agent/{DEVICE}/status"  # the device's own retained status (not a camera's)
    assert sub.wait_for(lambda ms: any(m.topic == status_topic and m.json()["state"] == "offline" for m in ms))
    assert [m.json()["state"] for m in sub.messages if m.topic == status_topic][-1] == "offline"  # clean shutdown


def test_without_heads_or_region_search_nothing_is_built_for_them_and_teardown_is_clean(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = build_config(models_dir, tmp_path / "state", broker.port, heads=NO_HEADS, extra=EVERY_FRAME)
    with caplog.at_level(logging.ERROR, logger=AGENT_LOG), built(cfg) as agent:
        assert agent.classifier is None and agent.region is None
        assert agent.meta is not None  # the metadata is still read for `info`
    assert close_failures(caplog) == []


# ----- integrations and the sink --------------------------------------------------------------------------------
def test_integrations_get_the_device_id_the_publisher_and_the_timings(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
) -> None:
    port = free_port()
    cfg = build_config(
        models_dir, tmp_path / "state", free_port(), heads=NO_HEADS, extra=f'[metrics]\nlisten = "127.0.0.1:{port}"'
    )
    with built(cfg) as agent:
        assert agent.meta is not None
        samples = scrape(port)
        build_info = [dict(labels) for (name, labels), v in samples.items() if name == "edge_agent_build_info"]
        assert build_info == [
            {
                "device_id": DEVICE,
                "version": messages.VERSION,
                "attribute_model": agent.meta.name,
                "attribute_model_version": agent.meta.version,
            }
        ]
        assert samples[("edge_agent_mqtt_connected", ())] == 0.0  # read live from the publisher (no broker there)
        agent.timings.detect.add_ms(3.0)  # the latency windows feed the endpoint's histogram
        assert scrape(port)[("edge_agent_stage_latency_seconds_count", (("stage", "detect"),))] == 1.0


def test_print_events_puts_track_events_on_stdout(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    broker: Broker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = build_config(models_dir, tmp_path / "state", broker.port, heads=NO_HEADS, extra=EVERY_FRAME)
    out = ""
    with built(cfg, print_events=True) as agent:
        runner = agent.runners[0]
        agent.sink.send(messages.camera_status(agent.camera_report(runner), "demo"))  # not a track event
        deadline = time.monotonic() + 10.0
        while '"event"' not in out and time.monotonic() < deadline:  # the demo face walks in within seconds
            runner.poll(0.2, paused=False)
            out += capsys.readouterr().out
        runner.flush("shutdown")
    out += capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert lines, f"no track event on stdout after {runner.processed_total} frames"
    assert all(doc["camera_id"] == "cam0" and doc["event"] in ("new", "update", "end") for doc in lines)
    assert lines[-1]["event"] == "end" and lines[-1]["reason"] == "shutdown"


# ----- remote controls ------------------------------------------------------------------------------------------
def test_pause_and_resume_log_their_lines(
    detector: FaceDetector,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent, _ = agent_with(config(), detector)
    with caplog.at_level(logging.INFO, logger=AGENT_LOG):
        agent.pause()
        agent.resume()
    assert [r.getMessage() for r in caplog.records if r.name == AGENT_LOG] == [
        "analysis paused by remote command",
        "analysis resumed by remote command",
    ]


def test_status_reports_the_uptime_since_start(detector: FaceDetector) -> None:  # noqa: F811
    agent, _ = agent_with(config(), detector)
    assert 0.0 <= agent.status()["uptime_s"] < 5.0
    agent.started_mono -= 30.0  # as if started 30 s ago
    assert 30.0 <= agent.status()["uptime_s"] < 35.0
