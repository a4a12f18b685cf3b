"""The two face-size thresholds have distinct keys; an old config using the detector's old key is told the new one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.config import ConfigError, parse_config


def test_the_detector_and_tracking_face_size_keys_are_distinct() -> None:
    cfg = parse_config("[detector]\nmin_detection_px = 12\n[tracking]\nmin_face_px = 48\n")
    assert cfg.detector.min_detection_px == 12 and cfg.tracking.min_face_px == 48


def test_the_old_detector_key_is_an_error_naming_the_new_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("[detector]\nmin_face_px = 12\n")
    assert "detector.min_detection_px" in str(err.value) and "\n" not in str(err.value)


def test_the_cli_exits_2_with_one_line_for_the_old_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[detector]\nmin_face_px = 12\n[[cameras]]\nid = "cam0"\n')
    res = subprocess.run(
        [sys.executable, "-m", "edge_agent", "run", "--config", str(config), "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert "detector.min_detection_px" in res.stderr and "Traceback" not in res.stderr
