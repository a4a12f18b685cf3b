"""The CLI: exit codes, one-line errors, classify/annotate on real images with real models, models, tail, bench."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from edge_agent import __version__
from edge_agent.cli import main
from edge_agent.daemon.tailcmd import render_audience
from tests.test_e2e import NO_ATTRIBUTES, attribute_model_path, attributes_toml, models_dir  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env)


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def test_check_config_summarises_the_example_config() -> None:
    result = invoke("check-config", str(REPO / "config.toml"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "config ok"
    assert re.search(r"^config_hash  [0-9a-f]{64}$", result.stdout, re.MULTILINE)
    assert "camera       cam0: demo (synthetic)" in result.stdout


def test_check_config_missing_file_is_exit_2_one_line(tmp_path: Path) -> None:
    result = invoke("check-config", str(tmp_path / "absent.toml"))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"edge-agent: error: config file not found: {tmp_path / 'absent.toml'}"


def test_unknown_option_is_a_usage_error_exit_2() -> None:
    assert invoke("run", "--no-such-option").exit_code == 2


@pytest.fixture
def stills(tmp_path: Path) -> dict[str, Path]:
    import skimage.data

    out = {
        "astronaut": tmp_path / "astronaut.png",
        "cat": tmp_path / "cat.jpg",
        "text": tmp_path / "notes.jpg",
        "empty": tmp_path / "empty.png",
    }
    cv2.imwrite(str(out["astronaut"]), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out["cat"]), cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR))
    out["text"].write_text("not an image")
    out["empty"].write_bytes(b"")
    return out


def _cli_config(tmp_path: Path, with_attributes: bool) -> Path:
    """Age and gender from the attribute model when it is built, else detection only."""
    model = attribute_model_path()
    cfg = tmp_path / "cli.toml"
    cfg.write_text(attributes_toml(model) if with_attributes and model is not None else NO_ATTRIBUTES)
    return cfg


def test_classify_prints_one_json_line_per_image_and_finds_the_astronauts_face(
    tmp_path: Path,
    stills: dict[str, Path],
    models_dir: Path,  # noqa: F811
) -> None:
    with_attrs = attribute_model_path() is not None
    args = ["-c", str(_cli_config(tmp_path, with_attrs))]
    result = invoke(
        "classify",
        *args,
        *(str(stills[k]) for k in ("astronaut", "cat", "text", "empty")),
        env={"EDGE_AGENT_MODELS_DIR": str(models_dir)},
    )
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["file"]).name for r in records] == ["astronaut.png", "cat.jpg", "notes.jpg", "empty.png"]
    (face,) = records[0]["faces"]
    x1, y1, x2, y2 = face["box"]
    assert x1 < 230 < x2 and y1 < 130 < y2, face  # her face is around (225, 130) in the 512x512 photo
    if with_attrs:  # gated like the daemon: a face judged a minor carries the flag and no attributes at all
        assert face["minor"] is True or {"age", "gender"} <= set(face["attributes"]), face
        assert "attributes" not in face or not face["minor"]
    assert "race" not in records[0]["faces"][0].get("attributes", {})
    assert records[1]["faces"] == [] and "--face-crop" in records[1]["hint"]
    assert records[2]["error"].startswith("not_an_image") and records[3]["error"].startswith("empty_file")


def test_classify_exits_1_when_no_image_is_usable(tmp_path: Path, stills: dict[str, Path], models_dir: Path) -> None:  # noqa: F811
    result = invoke(
        "classify",
        "-c",
        str(_cli_config(tmp_path, False)),
        str(stills["text"]),
        env={"EDGE_AGENT_MODELS_DIR": str(models_dir)},
    )
    assert result.exit_code == 1 and "no usable image" in result.stderr


def test_annotate_writes_a_video_of_the_demo_and_images_for_stills(
    tmp_path: Path,
    stills: dict[str, Path],
    models_dir: Path,  # noqa: F811
) -> None:
    env = {"EDGE_AGENT_MODELS_DIR": str(models_dir)}
    cfg = str(_cli_config(tmp_path, True))
    video = tmp_path / "out" / "demo.mp4"
    result = invoke("annotate", "demo", "--out", str(video), "--max-frames", "12", "-c", cfg, env=env)
    assert result.exit_code == 0, result.stderr
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()
    result = invoke("annotate", str(stills["astronaut"]), "--out", str(tmp_path / "stills"), "-c", cfg, env=env)
    assert result.exit_code == 0, result.stderr
    (out,) = sorted((tmp_path / "stills").glob("*.jpg"))
    drawn = cv2.imread(str(out))
    original = cv2.imread(str(stills["astronaut"]))
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).max() > 100  # boxes drawn


def test_models_verify_fails_on_an_empty_dir_and_passes_on_the_pulled_one(tmp_path: Path, models_dir: Path) -> None:  # noqa: F811
    bad = invoke("models", "verify", "--dir", str(tmp_path))
    assert bad.exit_code == 1 and "edge-agent models pull" in bad.stderr and "missing" in bad.stdout
    good = invoke("models", "verify", "--dir", str(models_dir))
    assert good.exit_code == 0, good.stderr
    listing = invoke("models", "list", "--dir", str(models_dir))
    assert listing.exit_code == 0 and "face_detection_short_range" in listing.stdout


def test_render_audience_table_lists_each_person_and_the_dominant_group() -> None:
    latest = {
        "dev1/cam0": {
            "count": 2,
            "looking_count": 1,
            "minors": 0,
            "dominant": {"gender": "female"},
            "present": [
                {
                    "track_id": "abc123",
                    "looking": True,
                    "dwell_s": 3.2,
                    "attention_s": 2.0,
                    "attributes": {"gender": {"label": "female", "p": 0.9}},
                },
                {"track_id": "def456", "looking": False, "dwell_s": 1.0, "attention_s": 0.0, "minor": True},
            ],
        }
    }
    lines = render_audience(latest)
    assert "dev1/cam0" in lines[1] and "gender=female" in lines[1]
    assert lines[2].startswith("  * abc123") and "gender=female" in lines[2]
    assert lines[3].startswith("    def456") and "minor (count only)" in lines[3]


@pytest.mark.parametrize("mode", ["--audience", "--json"])
def test_tail_shows_a_message_from_the_broker(tmp_path: Path, broker: Any, mode: str) -> None:
    cfg = tmp_path / "tail.toml"
    cfg.write_text(f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "tail", mode, "--count", "1", "--timeout", "20", "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    payload = json.dumps(
        {
            "count": 1,
            "looking_count": 1,
            "minors": 0,
            "dominant": {"age": "30-39"},
            "present": [{"track_id": "t1", "looking": True, "dwell_s": 1.5, "attention_s": 1.0}],
        }
    )
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:  # until the subscriber is up and got it
            client.publish("edge-agent/devX/cameras/cam9/audience", payload, qos=1).wait_for_publish(5)
            time.sleep(0.5)
        out, err = proc.communicate(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    if mode == "--audience":
        assert "devX/cam9" in out and "age=30-39" in out and "t1" in out
    else:
        line = json.loads(out.splitlines()[0])
        assert line["topic"] == "edge-agent/devX/cameras/cam9/audience" and line["payload"]["count"] == 1


def test_bench_command_prints_what_run_bench_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent import bench

    calls: dict[str, Any] = {}

    def fake_run_bench(cfg: Any, frames: int, faces: Any, threads: int) -> dict[str, Any]:
        calls.update(frames=frames, faces=list(faces), threads=threads)
        return {"fps": 123.0}

    monkeypatch.setattr(bench, "run_bench", fake_run_bench)  # the edge: run_bench is tested in test_bench*
    result = invoke("bench", "--frames", "50", "--faces", "1,3", "--threads", "2", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"fps": 123.0} and calls == {"frames": 50, "faces": [1, 3], "threads": 2}
    assert invoke("bench", "--faces", "one").exit_code == 2
