"""`annotate` keeps time and follows the extension: read back with OpenCV, frame rate and count equal the source's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.config import AgentConfig
from edge_agent.daemon.stills import Analyzer, StillsAnalytics
from edge_agent.records import Frame
from tests.fixtures.media import astronaut_bgr, cat_bgr, moving_face_frames, write_clip
from tests.test_e2e import agent_env, models_dir  # noqa: F401

EXE = [sys.executable, "-m", "edge_agent"]


def _annotate(*args: str, models: Path) -> Any:
    return CliRunner().invoke(main, ["annotate", *args], env={"EDGE_AGENT_MODELS_DIR": str(models)})


@pytest.mark.parametrize("suffix, fps", [(".mp4", 30.0), (".avi", 12.0)])
def test_video_output_has_the_frame_rate_and_frame_count_of_the_source(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    suffix: str,
    fps: float,
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", moving_face_frames(36), fps=fps)
    out = tmp_path / f"out{suffix}"
    result = _annotate(str(clip), "--out", str(out), models=models_dir)
    assert result.exit_code == 0, result.stderr
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(fps, abs=0.01)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 36
    assert f"at {fps:g} fps" in result.stderr


def test_a_gif_is_a_gif_with_one_frame_per_source_frame(tmp_path: Path, models_dir: Path) -> None:  # noqa: F811
    clip = write_clip(tmp_path / "clip.mp4", moving_face_frames(20), fps=20.0)
    out = tmp_path / "demo.gif"
    result = _annotate(str(clip), "--out", str(out), models=models_dir)
    assert result.exit_code == 0, result.stderr
    assert out.is_file() and out.read_bytes()[:6] in (b"GIF89a", b"GIF87a")  # a file, not a directory
    ok, anim = cv2.imreadanimation(str(out))
    assert ok and len(anim.frames) == 20
    assert set(anim.durations) == {50}  # 1/20 s per frame, the source's own pace


def test_an_unknown_extension_is_a_one_line_usage_error(tmp_path: Path, models_dir: Path) -> None:  # noqa: F811
    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut_bgr())
    result = _annotate(str(photo), "--out", str(tmp_path / "out.webm"), models=models_dir)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("edge-agent: error: annotate: --out") and "'.webm'" in result.stderr
    assert not (tmp_path / "out.webm").exists()


def test_durations_drawn_come_from_frame_timestamps_not_the_machine(tmp_path: Path, models_dir: Path) -> None:  # noqa: F811
    """A 30 fps clip of 60 frames lasts 2 s: the visit's dwell at the last frame is about 2 s, however fast we run."""
    from edge_agent.daemon.annotate import AnnotateOptions, _Frames
    from edge_agent.imageio import SkipCounter

    clip = write_clip(tmp_path / "clip.mp4", moving_face_frames(60), fps=30.0)
    frames = _Frames(AgentConfig(), str(clip), AnnotateOptions(), SkipCounter("t"))
    try:
        ts = [item.ts for item in frames]
    finally:
        frames.close()
    assert frames.fps == pytest.approx(30.0) and len(ts) == 60
    assert np.allclose(np.diff(ts), 1 / 30.0) and ts[-1] - ts[0] == pytest.approx(59 / 30.0)


@pytest.mark.slow
def test_a_folder_is_drawn_image_by_image_and_a_bad_image_is_skipped_with_its_name(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_face.jpg"), astronaut_bgr())
    cv2.imwrite(str(folder / "b_cat.jpg"), cat_bgr())
    (folder / "c_bad.jpg").write_text("not an image")
    out = tmp_path / "annotated"
    res = subprocess.run(
        [*EXE, "annotate", str(folder), "--out", str(out)],
        env=agent_env(models_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["0000_a_face.jpg", "0001_b_cat.jpg"]
    named = [ln for ln in res.stderr.splitlines() if "c_bad.jpg" in ln]
    assert len(named) == 1 and "not_an_image" in named[0], res.stderr  # one line, with its name
    assert "1 image(s) skipped (not_an_image 1)" in res.stderr and "Traceback" not in res.stderr


def test_stills_analytics_gives_each_image_its_own_visits(models_dir: Path) -> None:  # noqa: F811
    """Two photos in a row: each one's drawn visits are its own faces, and each ends with its image."""
    cfg = AgentConfig()
    with Analyzer(cfg) as analyzer:
        stills = StillsAnalytics("t", cfg.tracking, cfg.analytics, analyzer.meta, analyzer.heads)
        seen: list[tuple[int, list[str]]] = []
        for i, image in enumerate([astronaut_bgr(), cat_bgr(), astronaut_bgr()[:, ::-1].copy()]):
            faces = analyzer.analyze(image)
            msgs = stills.update(faces, Frame("t", i, 1000.0 + i, 1000.0 + i, image))
            ends = [m.payload for m in msgs if m.payload.get("event") == "end"]
            assert all(e["reason"] == "still" for e in ends) and len(ends) == len(faces)
            seen.append((len(faces), [v.track_id for v in stills.views]))
    assert [n for n, _ in seen] == [1, 0, 1] and [len(ids) for _, ids in seen] == [1, 0, 1]
    assert seen[0][1] != seen[2][1]  # the same person in a later photo is a new visit, not a continued one
