"""The Prometheus endpoint: scraped over HTTP during a real agent run (real broker, models, subprocess)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.config.model import AgentConfig
from edge_agent.integrations.config import is_loopback, split_listen
from tests.fixtures.broker import free_port, wait_port
from tests.test_e2e import NO_ATTRIBUTES, agent_env, models_dir, running, start_agent, stop_agent, write_config

__all__ = ["models_dir", "running"]  # fixtures used by name below


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and parse it with prometheus_client's own parser: (sample name, labels) → value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_metric(port: int, pred: Any, timeout: float, what: str) -> dict[Any, float]:
    deadline = time.monotonic() + timeout
    last: dict[Any, float] = {}
    while time.monotonic() < deadline:
        try:
            last = scrape(port)
        except OSError:
            last = {}
        if last and pred(last):
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what} not seen within {timeout}s; last scrape had {len(last)} samples")


def test_metrics_are_off_by_default_and_the_documented_example_is_loopback() -> None:
    assert AgentConfig().metrics.listen is None
    assert is_loopback(split_listen("127.0.0.1:9464")[0]) and is_loopback("::1") and not is_loopback("0.0.0.0")
    assert split_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "127.0.0.1", "host:99999", "[zz]:1"):
        with pytest.raises(ValueError):
            split_listen(bad)


@pytest.mark.slow
def test_endpoint_serves_frames_latency_histograms_outbox_and_connection_state_during_a_run(
    tmp_path: Path, broker: Any, models_dir: Path, running: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES + f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    assert wait_port("127.0.0.1", port, 30), "metrics endpoint did not come up"

    first = wait_metric(
        port,
        lambda m: (
            (value(m, "edge_agent_camera_frames_processed_total", camera="cam0") or 0) > 0
            and (value(m, "edge_agent_stage_latency_seconds_count", stage="detect") or 0) > 0
        ),
        40,
        "processed frames and detector latency samples",
    )
    assert value(first, "edge_agent_mqtt_connected") == 1.0
    assert value(first, "edge_agent_camera_up", camera="cam0") == 1.0
    assert value(first, "edge_agent_outbox_queue_depth") is not None
    assert value(first, "edge_agent_stage_latency_seconds_bucket", stage="detect", le="+Inf") == value(
        first, "edge_agent_stage_latency_seconds_count", stage="detect"
    )
    assert (value(first, "process_resident_memory_bytes") or 0) > 10e6
    build = [dict(labels) for (name, labels), v in first.items() if name == "edge_agent_build_info" and v == 1.0]
    assert [(b["device_id"], b["version"]) for b in build] == [(dev, "0.1.0")]

    # counters only grow; the histogram keeps real observations (its count tracks frames analysed)
    later = wait_metric(
        port,
        lambda m: (
            (value(m, "edge_agent_stage_latency_seconds_count", stage="detect") or 0)
            > (value(first, "edge_agent_stage_latency_seconds_count", stage="detect") or 0) + 5
        ),
        20,
        "more detector samples",
    )
    for name in ("edge_agent_camera_frames_captured_total", "edge_agent_camera_frames_processed_total"):
        assert (value(later, name, camera="cam0") or 0) >= (value(first, name, camera="cam0") or 0)

    broker.stop()  # connection state and outbox depth are read live, not from the last stats message
    down = wait_metric(
        port,
        lambda m: value(m, "edge_agent_mqtt_connected") == 0.0 and (value(m, "edge_agent_outbox_queue_depth") or 0) > 0,
        30,
        "disconnected with a growing outbox",
    )
    assert value(down, "edge_agent_mqtt_connected") == 0.0
    code, _, err = stop_agent(proc, signal.SIGTERM)
    assert code == 0, err[-2000:]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.slow
def test_a_port_in_use_is_a_one_line_config_error_at_start_up(
    tmp_path: Path, broker: Any, models_dir: Path, running: list[subprocess.Popen[str]]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config, _ = write_config(tmp_path, broker, NO_ATTRIBUTES + f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
        proc = start_agent(config, agent_env(models_dir))
        running.append(proc)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err[-2000:]
    lines = [ln for ln in err.strip().splitlines() if "error" in ln.lower()]
    assert len(lines) == 1 and "metrics.listen" in lines[0] and "Traceback" not in err, err[-2000:]
