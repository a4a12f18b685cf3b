"""Bad input against the real `edge-agent run` subprocess: config errors exit 2 naming the key, model errors exit 1,
an unopenable camera is retried while the agent keeps running."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.test_e2e import EXE, NO_ATTRIBUTES, Collector, agent_env, models_dir, running, write_config  # noqa: F401

pytestmark = pytest.mark.slow
SIDECAR = {
    "name": "not-a-model",
    "version": "0",
    "quantization": "int8",
    "input": {"size": 96, "color": "RGB", "normalization": {"mean": 127.5, "std": 127.5}},
    "crop": {"margin": 0.2},
    "heads": {"gender": {"labels": ["male", "female"]}},
}


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        check=False, args=[*EXE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("edge-agent: error: ")]
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("[agent]\nstats_intervall_s = 5\n", "agent.stats_intervall_s: unknown key"),
        ('[outbox]\nmax_messages = "lots"\n', 'outbox.max_messages = "lots": expected an integer'),
        ('[mqtt]\nusername = "sign1"\n', "mqtt.username = 'sign1' needs a password"),
        ('[mqtt]\npassword = "hunter2"\n', "mqtt.password: secrets are never read from the config file"),
    ],
    ids=["unknown-key", "wrong-type", "missing-secret", "secret-in-file"],
)
def test_invalid_config_exits_2_naming_the_key(tmp_path: Path, extra: str, expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[cameras]]\nid = "cam0"\n{extra}')
    proc = _run(["run", "--config", str(config)], agent_env(tmp_path), tmp_path)
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert expected in line and "hunter2" not in proc.stderr


def test_source_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    proc = _run(["run", "--source", str(tmp_path / "nope.mp4")], agent_env(tmp_path), tmp_path)
    assert proc.returncode == 2 and "no such file or folder" in _one_error_line(proc.stderr)


def test_no_camera_configured_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[agent]\nstats_interval_s = 5\n")
    proc = _run(["run", "--config", str(config)], agent_env(tmp_path), tmp_path)
    assert proc.returncode == 2 and "no enabled camera" in _one_error_line(proc.stderr)


def test_missing_detector_models_are_a_clear_startup_error_exit_1(tmp_path: Path, broker: Any) -> None:
    config, _ = write_config(tmp_path, broker, NO_ATTRIBUTES)
    empty = tmp_path / "no-models"
    empty.mkdir()
    proc = _run(["run", "--config", str(config)], agent_env(empty), tmp_path)
    assert proc.returncode == 1
    assert "edge-agent models pull" in _one_error_line(proc.stderr)


@pytest.mark.parametrize(
    "content, expected",
    [(None, "not found"), (b"this is not a model", "not a TFLite model")],
    ids=["missing", "not-tflite"],
)
def test_bad_attribute_model_is_a_clear_startup_error_exit_1(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811 - the fixture imported from test_e2e
    content: bytes | None,
    expected: str,
) -> None:
    model = tmp_path / "attributes.tflite"
    if content is not None:
        from edge_agent.modelmeta import write_metadata

        model.write_bytes(content)
        write_metadata(model, SIDECAR)  # a valid sidecar for these bytes: the runtime itself must reject them
    config, _ = write_config(tmp_path, broker, f'[attributes]\nmodel = "{model}"\n')
    proc = _run(["run", "--config", str(config)], agent_env(models_dir), tmp_path)
    assert proc.returncode == 1
    assert expected in _one_error_line(proc.stderr)


def test_unopenable_camera_is_reported_and_retried_while_the_agent_runs(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    sub = Collector(broker.host, broker.port, f"edge-agent/{dev}/cameras/+/status")
    try:
        proc = _run(
            ["run", "--config", str(config), "--source", "/dev/video57", "--duration", "5"],
            agent_env(models_dir),
            tmp_path,
        )
        status = sub.wait_for(
            lambda t, d: d.get("state") in ("stalled", "offline") and "open" in (d.get("reason") or ""),
            5,
            "camera status naming the open failure",
        )
    finally:
        sub.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "/dev/video57" in status["reason"]
    errors = [
        ln for ln in proc.stderr.splitlines() if "/dev/video57" in ln and ("cannot open" in ln or "no such" in ln)
    ]
    assert len(errors) >= 2, proc.stderr[-3000:]  # the first failure and at least one retry
    assert "Traceback" not in proc.stderr


def test_bad_images_in_a_folder_are_skipped_and_counted_and_the_run_finishes(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811 - the fixture imported from test_e2e
) -> None:
    import cv2
    import numpy as np
    import skimage.data

    folder = tmp_path / "images"
    folder.mkdir()
    face = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    for i in range(4):
        cv2.imwrite(str(folder / f"a{i}_face.jpg"), face)
    (folder / "b_zero.jpg").write_bytes(b"")
    (folder / "c_text.jpg").write_text("not an image")
    (folder / "d_truncated.jpg").write_bytes((folder / "a0_face.jpg").read_bytes()[:500])
    cv2.imwrite(str(folder / "e_grey.png"), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "f_bgra.png"), cv2.cvtColor(face, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "g_tiny.png"), np.zeros((1, 1, 3), np.uint8))
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    sub = Collector(broker.host, broker.port, f"edge-agent/{dev}/stats")
    try:
        proc = _run(["run", "--config", str(config), "--source", str(folder)], agent_env(models_dir), tmp_path)
        stats = sub.wait_for(lambda t, d: d["cameras"]["cam0"]["frames_processed"] >= 6, 10, "final stats")
    finally:
        sub.close()
    assert proc.returncode == 0, proc.stderr[-3000:]  # ended by itself at the end of the folder
    cam = stats["cameras"]["cam0"]
    assert cam["frames_processed"] == 6  # 4 faces + grey + BGRA, normalised to BGR
    assert cam["frames_bad"] >= 3  # zero-byte, text, truncated (and the 1x1 image) skipped and counted
    assert "Traceback" not in proc.stderr
