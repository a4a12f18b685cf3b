"""The two examples in examples/ against a real agent: content switching and the fleet's summaries in SQLite."""

from __future__ import annotations

import importlib.util
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.test_e2e import (
    agent_env,
    attribute_model,
    attributes_toml,
    models_dir,
    running,
    start_agent,
    stop_agent,
    write_config,
)

__all__ = ["attribute_model", "models_dir", "running"]
REPO = Path(__file__).resolve().parents[1]


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_content_rules_pick_the_first_matching_group_and_fall_back_to_the_default() -> None:
    ex = load_example("switch_content")
    assert ex.choose(None) == ex.DEFAULT
    assert ex.choose({"gender": "female"}) == "spring-collection-w.mp4"
    assert ex.choose({"age": "20-29", "gender": "male"}) == "festival-tickets.mp4"  # age rules come first
    assert ex.choose({"age": "0-2"}) == ex.DEFAULT


@pytest.mark.slow
def test_examples_switch_content_and_store_a_fleets_summaries_against_a_real_agent(
    tmp_path: Path, broker: object, models_dir: Path, attribute_model: Path, running: list[subprocess.Popen[str]]
) -> None:
    extra = attributes_toml(attribute_model) + "[analytics.summary]\ninterval_s = 2\n"
    config, dev = write_config(tmp_path, broker, extra)
    host, port = broker.host, str(broker.port)  # type: ignore[attr-defined]
    db = tmp_path / "fleet.sqlite3"
    common = ["--host", host, "--port", port, "--duration", "25"]
    store = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "fleet_to_sqlite.py"), "--db", str(db), *common],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    player = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "switch_content.py"), "--device", dev, "--settle", "0.5", *common],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    running.extend([store, player])
    agent = start_agent(config, agent_env(models_dir))
    running.append(agent)
    out, err = player.communicate(timeout=60)
    assert player.returncode == 0, err[-2000:]
    _, store_err = store.communicate(timeout=60)
    assert store.returncode == 0, store_err[-2000:]
    code, _, agent_err = stop_agent(agent, signal.SIGTERM)
    assert code == 0, agent_err[-2000:]

    ex = load_example("switch_content")
    switches = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert switches, f"the player never chose a clip; stderr: {err[-1000:]}"
    for s in switches:
        assert s["camera"] == "cam0" and s["play"] == ex.choose(s["because"] or None)

    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT device_id, camera_id, viewers, passers_by, msg_id FROM summaries").fetchall()
        losses = con.execute("SELECT * FROM losses").fetchall()
    assert len(rows) >= 3 and {r[:2] for r in rows} == {(dev, "cam0")}
    assert losses == []
    report = subprocess.run(
        [sys.executable, str(REPO / "examples" / "fleet_to_sqlite.py"), "--db", str(db), "--query"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert dev in report.stdout and report.stdout.startswith("device_id\thour\tviewers")
