"""Home Assistant discovery against a real broker and a real agent: documented keys, templates, removal.

The key sets below are those documented for MQTT discovery on home-assistant.io (integrations/sensor.mqtt,
integrations/binary_sensor.mqtt, and the shared `device`, `availability` and `origin` maps). Every template is
rendered with Jinja2, as Home Assistant does, on real messages the agent published.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.fixtures.broker import Broker, Collector
from tests.test_e2e import NO_ATTRIBUTES, agent_env, models_dir, running, start_agent, stop_agent, write_config

__all__ = ["models_dir", "running"]
pytestmark = pytest.mark.slow

COMMON_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic", "default_entity_id",
    "device", "device_class", "enabled_by_default", "encoding", "entity_category", "entity_picture",
    "expire_after", "force_update", "icon", "json_attributes_template", "json_attributes_topic", "name",
    "object_id", "origin", "payload_available", "payload_not_available", "platform", "qos", "state_topic",
    "unique_id", "value_template",
}  # fmt: skip
DOCUMENTED = {
    "sensor": COMMON_KEYS
    | {"last_reset_value_template", "options", "state_class", "suggested_display_precision", "unit_of_measurement"},
    "binary_sensor": COMMON_KEYS | {"off_delay", "payload_off", "payload_on"},
}
DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model", "model_id", "name",
    "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
AVAILABILITY_KEYS = {"payload_available", "payload_not_available", "topic", "value_template"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
DEVICE_CLASSES = {"sensor": {None, "duration"}, "binary_sensor": {None, "connectivity"}}
HA_CONFIG = "[integrations.home_assistant]\nenabled = true\n[analytics.summary]\ninterval_s = 2\n"


def render(template: str, payload: bytes) -> str:
    """What Home Assistant would show: the template rendered with `value_json` = the parsed payload."""
    return jinja2.Environment().from_string(template).render(value_json=json.loads(payload)).strip()


def configs(sub: Collector, node: str) -> dict[str, dict[str, Any]]:
    return {
        m.topic: m.json()
        for m in sub.messages
        if m.topic.startswith("homeassistant/") and f"/{node}/" in m.topic and m.payload
    }


def retained_after_subscribe(broker: Broker, topic_filter: str, settle_s: float = 1.5) -> dict[str, bytes]:
    """A fresh subscriber: what the broker still retains under the filter."""
    sub = Collector(broker, topic_filter)
    try:
        time.sleep(settle_s)
        return {m.topic: m.payload for m in sub.messages if m.retain and m.payload}
    finally:
        sub.close()


def test_discovery_configs_use_documented_keys_and_their_templates_read_real_agent_messages(
    tmp_path: Path, broker: Broker, models_dir: Path, running: list[subprocess.Popen[str]]
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES + HA_CONFIG)
    node = f"edge_agent_{dev}"
    sub = Collector(broker, "#")
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    assert sub.wait_for(lambda _m: len(configs(sub, node)) == 6, 40), f"discovery configs: {list(configs(sub, node))}"
    found = configs(sub, node)
    unique_ids = [c["unique_id"] for c in found.values()]
    assert len(set(unique_ids)) == 6
    for topic, cfg in found.items():
        component = topic.split("/")[1]
        assert component in DOCUMENTED, topic
        assert set(cfg) <= DOCUMENTED[component], (topic, set(cfg) - DOCUMENTED[component])
        assert set(cfg["device"]) <= DEVICE_KEYS and cfg["device"]["identifiers"] == [node]
        assert set(cfg["origin"]) <= ORIGIN_KEYS and cfg["origin"]["name"]
        assert cfg.get("device_class") in DEVICE_CLASSES[component]
        assert cfg["state_topic"].startswith(f"edge-agent/{dev}/cameras/cam0/")
        [avail] = cfg["availability"]
        assert set(avail) <= AVAILABILITY_KEYS and avail["topic"] == f"edge-agent/{dev}/status"

    # every state topic is one the agent really publishes, and every template reads its real payload
    def latest(suffix: str) -> bytes:
        assert sub.wait_for(lambda _m: bool(sub.on(suffix)), 40), f"no {suffix} from the agent"
        return sub.on(suffix)[-1].payload

    by_key = {t.split("/")[-2].removeprefix("cam0_"): c for t, c in found.items()}
    audience, summary, camstatus = latest("cam0/audience"), latest("cam0/summary"), latest("cam0/status")
    assert render(by_key["people_present"]["value_template"], audience) == str(json.loads(audience)["count"])
    assert render(by_key["people_looking"]["value_template"], audience) == str(json.loads(audience)["looking_count"])
    s = json.loads(summary)
    assert render(by_key["viewers"]["value_template"], summary) == str(s["viewers"])
    assert render(by_key["passers_by"]["value_template"], summary) == str(s["passers_by"])
    assert float(render(by_key["average_dwell"]["value_template"], summary)) == s["dwell_s"]["average"]
    assert by_key["viewers"]["expire_after"] == 6  # three 2-second intervals
    camera = by_key["camera"]
    assert render(camera["value_template"], camstatus) == camera["payload_on"]  # the demo camera is online
    avail = camera["availability"][0]
    status = [m for m in sub.on("status") if m.topic == f"edge-agent/{dev}/status"][-1].payload
    assert render(avail["value_template"], status) == avail["payload_available"]

    # Home Assistant starting later still finds them: they are retained
    assert set(retained_after_subscribe(broker, f"homeassistant/+/{node}/+/config")) == set(found)
    code, _, err = stop_agent(proc, signal.SIGTERM)
    assert code == 0, err[-2000:]
    offline = retained_after_subscribe(broker, f"edge-agent/{dev}/status")[f"edge-agent/{dev}/status"]
    assert render(avail["value_template"], offline) == avail["payload_not_available"]  # entities go unavailable

    # decommission: an explicit command clears the entities and the device's retained state
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "decommission", "-c", str(config)],
        check=False, capture_output=True, text=True, timeout=60, env=agent_env(models_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "6 Home Assistant config(s)" in done.stdout, done.stdout
    assert retained_after_subscribe(broker, f"homeassistant/+/{node}/+/config") == {}
    assert retained_after_subscribe(broker, f"edge-agent/{dev}/#") == {}


def test_decommission_without_a_broker_fails_in_one_line(tmp_path: Path, broker: Broker, models_dir: Path) -> None:
    config, _ = write_config(tmp_path, broker, HA_CONFIG)
    broker.stop()
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "decommission", "-c", str(config)],
        check=False, capture_output=True, text=True, timeout=60, env=agent_env(models_dir),
    )  # fmt: skip
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "cannot reach the broker" in errors[0] and "Traceback" not in done.stderr, done.stderr
