"""`edge-agent bench` library: frames with real faces, the daemon's per-frame path timed; benchmarks/targets judges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import targets
from edge_agent import bench
from edge_agent.detect.config import DetectorConfig
from tests.test_e2e import models_dir  # noqa: F401 - session fixture: pulls the detector models (skips only offline)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged int8 model, or a tiny untrained one with the same contract built with TensorFlow."""
    if bench.PACKAGED_MODEL.is_file() and bench.PACKAGED_MODEL.with_suffix(".json").is_file():
        return bench.PACKAGED_MODEL
    pytest.importorskip("tensorflow")
    from benchmarks.testmodel import build_test_models

    return build_test_models(tmp_path_factory.mktemp("model"))[0]


def test_bench_frames_are_640x480_with_the_requested_face_counts() -> None:
    frames = bench.make_frames(95, (1, 3))
    assert len(frames) == 95
    assert all(img.shape == (480, 640, 3) and img.dtype == np.uint8 for img, _ in frames)
    assert [k for _, k in frames[:30]] == [1] * 30 and [k for _, k in frames[30:60]] == [3] * 30
    assert not np.array_equal(frames[0][0], frames[1][0]), "faces move between frames"


def test_the_agents_detector_finds_the_faces_pasted_into_bench_frames(models_dir: Path) -> None:  # noqa: F811
    from edge_agent.detect.base import create_detector

    with create_detector(DetectorConfig(models_dir=models_dir)) as det:
        for img, k in bench.make_frames(90, (1, 2, 3))[::15]:
            assert len(det.detect(img)) == k


def test_run_bench_reports_every_stage_fps_rss_cpu_and_targets(model: Path) -> None:
    result = bench.run_bench(frames=40, faces=(1, 2), paced_frames=15, paced_fps=30.0, model_path=model)
    assert result["frames"] == 40
    stages = result["stages"]
    assert set(stages) >= {"detect", "classify_face", "pose", "track_analytics", "publish_submit", "total"}
    assert stages["detect"]["n"] == 40 and stages["detect"]["p50"] > 0
    assert stages["total"]["p95"] >= stages["total"]["p50"] >= stages["detect"]["p50"]
    assert result["fps"] > 0 and result["peak_rss_mb"] > 20
    assert 0 < result["paced"]["cpu_share_pct"] < 200 and result["paced"]["frames"] == 15
    assert result["faces_found"] > 0
    assert stages["classify_face"]["n"] > 0 and stages["classify_face"]["p50"] > 0  # every found face classified
    assert result["setup"]["attribute_model"] == str(model)
    assert "targets" not in result  # judging is the benchmarks' business (benchmarks/targets.py)
    text = bench.summary(result)
    assert "detect" in text and "peak RSS" in text and "|" not in text
    judged = targets.check_targets(result)
    assert len(judged) == len(targets.TARGETS) and all(t["verdict"] in ("pass", "miss", "n/a") for t in judged)
    report = targets.format_bench(result)
    assert "| detect |" in report and "| target | limit | measured | verdict |" in report


def test_targets_are_checked_not_asserted() -> None:
    t = targets.Target("fps", "fps", 250.0, higher_is_better=True)
    assert (t.check(300.0), t.check(100.0), t.check(None), t.check(float("nan"))) == ("pass", "miss", "n/a", "n/a")
    assert targets.Target("x", "x", 1.5).check(1.5) == "pass"
    assert targets.lookup({"a": {"b": 2}}, "a.b") == 2 and targets.lookup({}, "a.b") is None
