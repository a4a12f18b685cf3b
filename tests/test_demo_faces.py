"""benchmarks.demo_faces: what a model says about the demo's own faces, through the real detector and model."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import demo_faces


def test_every_demo_face_is_found_and_measured_through_the_device_path(detector_models: Path) -> None:
    res = demo_faces.measure(None, models_dir=detector_models)
    faces = res["faces"]
    assert res["model"].startswith("edge-agent-attributes ")
    assert faces["presenter (120 frames)"]["found"] == 120  # every frame of the clip has her face
    for name, row in faces.items():
        assert row["found"] == row["frames"], name
        assert 0.0 <= row["p_female"] <= 1.0 and 0 <= row["female_frames"] <= row["found"]
        assert 0 < row["years"] < 100 and row["age_group"] in ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49",
                                                               "50-59", "60-69", "70+")  # fmt: skip
    by = faces["astronaut photo 512x512"]["p_female_by_margin"]
    assert list(by) == list(demo_faces.MARGINS)
    assert len({round(v, 4) for v in by.values()}) > 1  # the margin really changes the crop the model sees
    # One still is a one-frame visit: what it publishes is the agent's own threshold on that frame's p(female).
    from edge_agent.track.config import TrackerConfig

    gate = TrackerConfig().min_confidence.for_head("gender")
    for name in ("astronaut photo 512x512", "astronaut demo crop 160x160"):
        p = faces[name]["p_female"]
        expected = (
            "female" if p >= gate else "male" if 1 - p >= gate else f"unknown (low_confidence, p {max(p, 1 - p):.2f})"
        )
        assert faces[name]["published"]["gender"] == expected, name
    # The presenter's 120 frames as one visit: every head decided or held back with its reason and p.
    visit = faces["presenter (120 frames)"]["published"]
    assert set(visit) == {"gender", "age"}, visit  # an adult: never gated as a minor
    assert visit["gender"] in ("female", "male") or visit["gender"].startswith("unknown (low_confidence, p ")
    table = demo_faces.render(res)
    assert "| presenter (120 frames) | 120 of 120 |" in table and "+0.150" in table


def test_a_missing_model_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_faces.main(["--model", str(tmp_path / "nope.tflite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not found" in err
