"""`edge-agent run` as a real subprocess against a real mosquitto: commands that must not run (retained, empty), a
burst of 300 bad commands within the log limit with every request accounted for, and signals (SIGHUP reloads,
SIGUSR1 stops cleanly, SIGTERM during start-up is a clean stop)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_e2e import (  # noqa: F401 - fixtures
    NO_ATTRIBUTES,
    Collector,
    agent_env,
    models_dir,
    running,
    start_agent,
    stop_agent,
    write_config,
)

pytestmark = pytest.mark.slow


def publish(broker: Any, topic: str, payloads: list[bytes], *, retain: bool = False) -> None:
    """Publish with a throwaway client, waiting for each PUBACK (QoS 1)."""
    burst(broker, [(topic, p) for p in payloads], retain=retain)


def burst(broker: Any, messages: list[tuple[str, bytes]], *, retain: bool = False) -> None:
    """Publish everything as fast as the client can (QoS 1), then wait for the PUBACKs."""
    sender = Collector(broker.host, broker.port, "unused/#")
    try:
        infos = [sender.client.publish(topic, p, qos=1, retain=retain) for topic, p in messages]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        sender.close()


def latest_stats(sub: Collector, base: str, pred: Any, what: str, timeout: float = 20) -> dict[str, Any]:
    return sub.wait_for(lambda t, d: t == f"{base}/stats" and pred(d), timeout, what)


def test_retained_and_empty_commands_are_not_executed(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811 - fixture imported from test_e2e
    running: list[subprocess.Popen[str]],  # noqa: F811 - fixture imported from test_e2e
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    base = f"edge-agent/{dev}"
    publish(broker, f"{base}/cmd/pause", [b'{"id": "stale"}'], retain=True)  # left on the broker long ago
    sub = Collector(broker.host, broker.port, f"{base}/#")
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    try:
        latest_stats(sub, base, lambda d: d["commands"]["ignored"]["retained"] >= 1, "retained command counted")
        publish(broker, f"{base}/cmd/pause", [b""], retain=True)  # how one clears a retained message
        stats = latest_stats(sub, base, lambda d: d["commands"]["ignored"]["empty"] >= 1, "empty command counted")
        cams = [d for t, d in sub.docs() if t == f"{base}/cameras/cam0/status"]
        code, _, err = stop_agent(proc)
    finally:
        sub.close()
    assert code == 0, err[-2000:]
    assert not [t for t, _ in sub.docs() if t.endswith("/cmd/pause/result")]  # nothing ran, nothing answered
    assert cams and not any(c.get("paused") for c in cams)
    assert stats["commands"]["results"] == 0


def test_a_burst_of_300_bad_commands_stays_within_the_log_limit_and_is_accounted_for(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811 - fixture imported from test_e2e
    running: list[subprocess.Popen[str]],  # noqa: F811 - fixture imported from test_e2e
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    base = f"edge-agent/{dev}"
    sub = Collector(broker.host, broker.port, f"{base}/#")
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    bad = [b"{not json", b"[" * 40 + b"]" * 40, b'{"id": true}', b"[1, 2]", json.dumps({"id": "x" * 20}).encode()]
    try:
        latest_stats(sub, base, lambda d: True, "first stats (the agent has subscribed to cmd/# by then)", 30)
        requests = []
        for i in range(60):  # 300 requests: malformed ones on a real command, unknown commands
            requests += [(f"{base}/cmd/status", b) for b in bad[:4]] + [(f"{base}/cmd/nope{i}", bad[4])]
        burst(broker, requests)
        stats = latest_stats(sub, base, lambda d: d["commands"]["received"] >= 300, "all 300 counted", 30)
        time.sleep(2.0)
        after = latest_stats(sub, base, lambda d: d["uptime_s"] > stats["uptime_s"] + 1, "stats keep coming")
        code, _, err = stop_agent(proc)
    finally:
        sub.close()
    c = after["commands"]
    assert c["received"] == 300
    assert c["received"] == c["results"] + c["rate_limited"] + c["queue_dropped"] + sum(c["ignored"].values())
    assert c["rate_limited"] > 0 and c["results"] >= 20
    results = [d for t, d in sub.docs() if t.endswith("/result")]
    assert len(results) == c["results"] and all(r["ok"] is False and r["code"] for r in results)
    assert any("nested deeper" in (r["error"] or "") for r in results)
    command_lines = [ln for ln in err.splitlines() if "command" in ln and "WARNING" in ln.upper()]
    assert len(command_lines) <= 3, command_lines  # one per minute per kind, not one per request
    assert after["warnings"]["command"]["count"] >= 280 and after["warnings"]["command"]["logged"] <= 3
    assert code == 0 and "Traceback" not in err


def test_sighup_reloads_the_config_like_cmd_reload(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811 - fixture imported from test_e2e
    running: list[subprocess.Popen[str]],  # noqa: F811 - fixture imported from test_e2e
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    base = f"edge-agent/{dev}"
    sub = Collector(broker.host, broker.port, f"{base}/#")
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    try:
        latest_stats(sub, base, lambda d: True, "first stats", 30)
        proc.send_signal(signal.SIGHUP)
        result = sub.wait_for(lambda t, d: t == f"{base}/cmd/reload/result", 15, "reload result")
        later = latest_stats(sub, base, lambda d: d["commands"]["results"] >= 1, "stats after the reload")
        assert proc.poll() is None  # still running
        code, _, err = stop_agent(proc)
    finally:
        sub.close()
    assert result["request_id"] == "SIGHUP" and result["ok"] is True, result
    assert later["commands"]["rate_limited"] == 0
    assert code == 0 and "SIGHUP received; reloading" in err


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGQUIT])
def test_other_fatal_signals_stop_as_cleanly_as_sigterm(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811 - fixture imported from test_e2e
    running: list[subprocess.Popen[str]],  # noqa: F811 - fixture imported from test_e2e
    sig: int,
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    base = f"edge-agent/{dev}"
    sub = Collector(broker.host, broker.port, f"{base}/#")
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    try:
        sub.wait_for(lambda t, d: t == f"{base}/status" and d.get("state") == "online", 30, "online")
        latest_stats(sub, base, lambda d: True, "first stats", 30)
        code, took, err = stop_agent(proc, sig)
        offline = sub.wait_for(lambda t, d: t == f"{base}/status" and d.get("state") == "offline", 10, "offline")
    finally:
        sub.close()
    assert code == 0 and took < 5.0, (code, took, err[-2000:])
    assert offline["reason"] == "shutdown" and offline["seq"] is None
    assert f"{signal.Signals(sig).name} received; stopping" in err


def test_sigterm_during_start_up_is_a_clean_stop(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811 - fixture imported from test_e2e
    running: list[subprocess.Popen[str]],  # noqa: F811 - fixture imported from test_e2e
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    sub = Collector(broker.host, broker.port, f"edge-agent/{dev}/status")
    for delay in (0.3, 1.0):  # during the imports; while models load and the publisher starts
        proc = start_agent(config, agent_env(models_dir))
        running.append(proc)
        time.sleep(delay)
        code, took, err = stop_agent(proc, signal.SIGTERM)
        assert code == 0 and "Traceback" not in err, (delay, code, err[-2000:])
        assert took < 5.0
    time.sleep(0.5)
    states = [d["state"] for _, d in sub.docs()]
    sub.close()
    assert not states or states[-1] == "offline"  # never left retained "online" behind
