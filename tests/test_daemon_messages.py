"""Device-level payloads are pure functions of config, metadata and frozen status records, and match their schemas."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge_agent.capture.status import CaptureStatus
from edge_agent.config import config_hash, parse_config
from edge_agent.daemon import messages, reload
from edge_agent.daemon.messages import CameraReport
from edge_agent.modelmeta import load_metadata
from edge_agent.publish.schemas import validate

MODEL = Path(__file__).resolve().parents[1] / "edge_agent" / "models" / "attributes_int8.tflite"
T = 1_800_000_000.25
CFG = parse_config(
    '[attributes]\nage = true\ngender = false\n[[cameras]]\nid = "door"\n[cameras.source]\ntype = "demo"\n'
    '[[cameras]]\nid = "off"\nenabled = false\n'
)


def envelope(msg: messages.Outgoing) -> dict[str, object]:
    """The publisher's envelope around a payload, so the schema check covers the whole message."""
    return {
        "schema": msg.schema,
        "msg_id": "00000000-0000-4000-8000-000000000000",
        "seq": 1,
        "epoch": 1,
        "ts": "2027-01-15T08:00:00.250Z",
        "device_id": "dev",
        "camera_id": msg.camera_id,
        **msg.payload,
    }


def test_info_names_software_models_config_hash_enabled_cameras_and_heads() -> None:
    meta = load_metadata(MODEL)
    msg = messages.info(CFG, meta, T)
    p = msg.payload
    assert msg.topic_suffix == "info" and msg.retain and msg.camera_id is None
    assert p["software"]["name"] == "edge-agent" and p["software"]["version"] == messages.VERSION
    assert p["models"]["attributes"] == {"name": meta.name, "version": meta.version, "sha256": meta.sha256}
    assert p["models"]["detector"]["name"] and len(p["models"]["detector"]["sha256"]) == 64
    assert p["config_sha256"] == config_hash(CFG)
    assert p["cameras"] == [{"camera_id": "door", "source": "demo"}]  # the disabled camera is not listed
    assert p["attributes"] == ["age"]
    assert p["started_at"] == "2027-01-15T08:00:00.250Z"
    validate(envelope(msg))


def test_info_without_attribute_metadata_lists_only_the_detector() -> None:
    assert set(messages.info(CFG, None, T).payload["models"]) == {"detector"}


def test_camera_status_says_state_since_source_kind_and_nothing_else_by_default() -> None:
    status = CaptureStatus("stalled", T, "no frame for 10 s")
    msg = messages.camera_status(CameraReport("door", status), "demo")
    assert msg.topic_suffix == "cameras/door/status" and msg.retain and msg.camera_id == "door"
    assert msg.payload == {
        "state": "stalled",
        "since": "2027-01-15T08:00:00.250Z",
        "reason": "no frame for 10 s",
        "source": "demo",
        "paused": False,
        "healthy": True,
    }
    validate(envelope(msg))


def test_an_empty_reason_is_null() -> None:
    msg = messages.camera_status(CameraReport("door", CaptureStatus("online", T)), None)
    assert msg.payload["reason"] is None and "source" not in msg.payload


def test_an_unhealthy_camera_names_the_error_and_pause_wraps_the_reason() -> None:
    status = CaptureStatus("online", T)
    bad = CameraReport("door", status, healthy=False, error="TypeError: boom")
    assert messages.camera_status(bad, "demo").payload["reason"] == "every frame fails: TypeError: boom"
    assert messages.camera_status(CameraReport("door", status, healthy=False), "demo").payload["reason"] == (
        "every frame fails"
    )
    paused = CameraReport("door", CaptureStatus("stalled", T, "read failed"), paused=True)
    p = messages.camera_status(paused, "demo").payload
    assert p["paused"] is True and p["reason"] == f"{messages.PAUSED_REASON} (read failed)"
    plain = messages.camera_status(CameraReport("door", status, paused=True), "demo").payload
    assert plain["reason"] == messages.PAUSED_REASON
    validate(envelope(messages.camera_status(bad, "demo")))


def test_stats_message_wraps_the_reporters_payload() -> None:
    msg = messages.stats({"uptime_s": 1.0})
    assert (msg.topic_suffix, msg.schema, msg.camera_id, msg.retain) == ("stats", messages.STATS_SCHEMA, None, False)
    assert msg.payload == {"uptime_s": 1.0}


def test_status_summary_lists_each_camera_with_health_and_processed_frames() -> None:
    cams = [
        CameraReport("door", CaptureStatus("online", T), processed_total=12),
        CameraReport("hall", CaptureStatus("offline", T, "eof"), healthy=False, processed_total=3),
    ]
    out = messages.status_summary(CFG, True, 12.34, cams)
    assert out["paused"] is True and out["uptime_s"] == 12.3 and out["config_hash"] == config_hash(CFG)
    assert out["attributes"] == ["age"]
    assert out["cameras"]["door"] == {
        "state": "online",
        "since": "2027-01-15T08:00:00.250Z",
        "reason": None,
        "healthy": True,
        "processed_total": 12,
    }
    assert out["cameras"]["hall"]["healthy"] is False and out["cameras"]["hall"]["reason"] == "eof"


# ---- reload planning (pure) ---------------------------------------------------------------------------------------


def test_reload_plan_applies_live_keys_and_lists_the_rest_for_a_restart() -> None:
    old = parse_config("[agent]\nstats_interval_s = 30\n[mqtt]\nkeepalive_s = 30\n")
    new = parse_config("[agent]\nstats_interval_s = 5\n[mqtt]\nkeepalive_s = 10\n[attributes]\ngender = false\n")
    plan = reload.plan(old, new)
    assert plan.live == ("agent.stats_interval_s", "attributes.gender")
    assert plan.restart == ("mqtt.keepalive_s",)
    assert plan.config.agent.stats_interval_s == 5 and plan.config.attributes.gender is False
    assert plan.config.mqtt.keepalive_s == 30  # not applied: needs a restart
    assert reload.pipeline_changed(plan.live) and not reload.pipeline_changed(("agent.log_level",))


def test_reload_keeps_the_model_and_threads_which_need_a_restart() -> None:
    old = parse_config("")
    new = parse_config(f'[attributes]\nmodel = "{MODEL}"\nnum_threads = 2\n')
    plan = reload.plan(old, new)
    assert plan.live == () and set(plan.restart) == {"attributes.model", "attributes.num_threads"}
    assert plan.config is old


@pytest.mark.parametrize(
    ("path", "live"),
    [
        ("agent.log_level", True),
        ("agent.watchdog_stall_s", True),
        ("agent.state_dir", False),
        ("tracking.visit_gap_s", True),
        ("analytics.summary.interval_s", True),
        ("attributes.gender", True),
        ("attributes.model", False),
        ("attributes.num_threads", False),
        ("mqtt.host", False),
        ("detector.score_threshold", False),
    ],
)
def test_which_keys_apply_live(path: str, live: bool) -> None:
    assert reload.is_live(path) is live


def test_changed_paths_walks_nested_dicts_and_compares_lists_whole() -> None:
    old = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    new = {"a": {"b": 2, "c": [1, 2]}, "d": 1, "e": 0}
    assert reload.changed_paths(old, new) == ["a.b", "e"]
    assert reload.changed_paths({"x": [1]}, {"x": [1, 2]}) == ["x"]
    assert reload.changed_paths(1, 1) == []


def test_camera_report_defaults_are_healthy_unpaused_and_empty() -> None:
    r = CameraReport("door", CaptureStatus("online", time.time()))
    assert (r.paused, r.healthy, r.error, r.processed_total) == (False, True, None, 0)


def test_merge_live_takes_every_live_part_and_nothing_else() -> None:
    old = parse_config('[agent]\nstate_dir = "/tmp/a"\n[mqtt]\nhost = "a"\n')
    new = parse_config(
        '[agent]\nstats_interval_s = 7\nlog_level = "debug"\nwatchdog_stall_s = 3\nstate_dir = "/tmp/b"\n'
        f'[attributes]\nmodel = "{MODEL}"\nnum_threads = 2\nrace = true\n'
        "[tracking]\nvisit_gap_s = 4\n[analytics.summary]\ninterval_s = 120\n"
        '[mqtt]\nhost = "b"\n'
    )
    merged = reload.merge_live(old, new)
    a = merged.agent
    assert (a.stats_interval_s, a.log_level, a.watchdog_stall_s) == (7, "debug", 3)
    assert str(a.state_dir) == "/tmp/a" and merged.mqtt.host == "a"  # restart-only: kept
    assert merged.attributes.race is True  # a head: live
    assert merged.attributes.model == old.attributes.model and merged.attributes.num_threads == 1  # restart-only
    assert merged.tracking.visit_gap_s == 4 and merged.analytics.summary.interval_s == 120
    plan = reload.plan(old, new)
    assert plan.config == merged
    assert "agent.state_dir" in plan.restart and "mqtt.host" in plan.restart and "attributes.model" in plan.restart
    assert "tracking.visit_gap_s" in plan.live and "analytics.summary.interval_s" in plan.live
