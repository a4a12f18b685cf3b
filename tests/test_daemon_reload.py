"""Live reconfigure: `cmd/reload` switches heads off and on and changes tracking while `edge-agent run` keeps going.

A real subprocess, a real mosquitto, the real models: what is published after each reload shows the change.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from edge_agent.publish.schemas import validate
from tests.test_e2e import (  # noqa: F401 - fixtures
    Collector,
    agent_env,
    attribute_model,
    models_dir,
    running,
    start_agent,
    stop_agent,
    write_config,
)

pytestmark = pytest.mark.slow
SMALL_FACE_KEY = "min_face_px"  # tracking: faces narrower than this never contribute attributes


def classified(update: dict[str, Any], head: str) -> bool:
    """The head was computed for this visit: it has a probability (a small face or no sample gives p = None)."""
    return update.get("attributes", {}).get(head, {}).get("p") is not None


def heads(model: Path, age: bool, gender: bool, min_face_px: float = 40) -> str:
    return (
        f'[attributes]\nmodel = "{model}"\nage = {str(age).lower()}\ngender = {str(gender).lower()}\nrace = false\n'
        f"[tracking]\nvisit_gap_s = 1.0\nmin_age_years = 0\n{SMALL_FACE_KEY} = {min_face_px}\nupdate_interval_s = 0.5\n"
    )


def test_reload_switches_heads_and_tracking_live_and_publishes_the_effect(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811
    attribute_model: Path,  # noqa: F811
    running: list[subprocess.Popen[str]],  # noqa: F811
) -> None:
    config, dev = write_config(tmp_path, broker)
    base_text = (
        config.read_text()
        .replace("[tracking]\nvisit_gap_s = 1.0\n", "")
        .replace(
            "min_age_years = 0  # children gating off: every end record carries attributes, whatever the model says\n",
            "",
        )
    )
    config.write_text(base_text + heads(attribute_model, age=True, gender=True))
    base = f"edge-agent/{dev}"
    sub = Collector(broker.host, broker.port, f"{base}/#")
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    seq = iter(range(100))

    def reload(text: str) -> dict[str, Any]:
        config.write_text(base_text + text)
        rid = f"r{next(seq)}"
        sub.client.publish(f"{base}/cmd/reload", f'{{"id": "{rid}"}}'.encode(), qos=1).wait_for_publish(5)
        res = sub.wait_for(
            lambda t, d: t == f"{base}/cmd/reload/result" and d.get("request_id") == rid, 15, "reload result"
        )
        assert res["ok"] is True, res
        return res

    def update_after(ts: str, what: str) -> dict[str, Any]:
        return sub.wait_for(lambda t, d: t.endswith("/tracks") and d.get("event") == "update" and d["t"] > ts, 30, what)

    try:
        sub.wait_for(
            lambda t, d: t.endswith("/tracks") and d.get("event") == "update" and classified(d, "gender"),
            40,
            "an update with a classified gender",
        )

        res = reload(heads(attribute_model, age=True, gender=False, min_face_px=4000))
        assert set(res["result"]["applied"]) == {"attributes.gender", f"tracking.{SMALL_FACE_KEY}"}
        ended = sub.wait_for(lambda t, d: t.endswith("/tracks") and d.get("reason") == "reload", 10, "visit ended")
        assert ended["event"] == "end"
        small = update_after(res["ts"], "an update after gender off and a huge face threshold")
        assert "gender" not in small["attributes"], small
        assert small["attributes"]["age"]["label"] == "unknown", small  # every face is now "too small"
        assert small["attributes"]["age"].get("reason") == "small_face", small

        res = reload(heads(attribute_model, age=False, gender=False))
        none = update_after(res["ts"], "an update with every head off")
        assert "attributes" not in none, none

        res = reload(heads(attribute_model, age=True, gender=True))
        back = sub.wait_for(
            lambda t, d: (
                t.endswith("/tracks")
                and d.get("event") == "update"
                and d["t"] > res["ts"]
                and d.get("attributes", {}).get("gender", {}).get("label", "unknown") != "unknown"
            ),
            30,
            "a labelled gender again after switching the heads back on",
        )
        assert back["attributes"]["age"]["label"] != "unknown"
        stats = sub.wait_for(lambda t, d: t == f"{base}/stats" and d["uptime_s"] > 0, 10, "stats")
        assert stats["cameras"]["cam0"]["errors"] == 0, stats  # no stage ran on a closed or stale interpreter
        code, _took, err = stop_agent(proc)
    finally:
        sub.close()
    assert code == 0, err[-2000:]
    assert "Traceback" not in err
    for topic, doc in sub.docs():
        if "/cmd/" not in topic or topic.endswith("/result"):
            validate(doc)
