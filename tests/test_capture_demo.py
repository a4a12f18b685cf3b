"""The synthetic demo source: deterministic, labelled synthetic, and showing a real face that detectors find."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest

from edge_agent.capture import CameraConfig, CameraWorker, create_source
from edge_agent.capture.config import DemoSourceConfig
from edge_agent.capture.demo import FACE_IMAGE, DemoSource, Placement
from tests.test_e2e import models_dir  # noqa: F401


def demo(**kw: object) -> DemoSource:
    src = create_source(DemoSourceConfig(**kw))  # type: ignore[arg-type]
    assert isinstance(src, DemoSource)
    src.open()
    return src


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def staying_frames(src: DemoSource, step: int = 15) -> list[tuple[int, Placement]]:
    """Frames where exactly one face is wholly inside the picture."""
    out = []
    for k in range(0, src.frames_per_cycle, step):
        ps = src.placements(k)
        if len(ps) == 1 and ps[0].x >= 0 and ps[0].x + ps[0].size <= src.cfg.width:
            out.append((k, ps[0]))
    return out


def test_same_seed_gives_identical_frames_and_another_seed_does_not() -> None:
    a, b, c = demo(seed=3), demo(seed=3), demo(seed=4)
    for k in (0, 37, 90, 500):
        np.testing.assert_array_equal(a.render(k), b.render(k))
    assert not np.array_equal(a.render(90), c.render(90))


def test_frames_are_640x480_bgr_and_marked_synthetic(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="edge_agent.capture"):
        src = demo()
    frame = src.render(0)
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    assert (frame[455:475, 8:120] > 240).all(axis=2).sum() > 50  # the white "SYNTHETIC DEMO" caption
    assert any("SYNTHETIC" in r.getMessage() for r in caplog.records)


def test_a_face_enters_stays_and_leaves_so_tracks_begin_and_end() -> None:
    src = demo(fps=10, cycle_s=12)
    present = [bool(src.placements(k)) for k in range(src.frames_per_cycle)]
    assert not present[0] and not present[-1]  # the cycle starts and ends with an empty scene
    changes = sum(1 for a, b in itertools.pairwise(present) if a != b)
    assert changes == 2  # one visit per cycle
    assert sum(present) >= 0.6 * len(present)
    visible = [src.placements(k)[0] for k in range(src.frames_per_cycle) if src.placements(k)]
    assert visible[0].x < 0  # walks in across the left edge
    assert visible[-1].x + visible[-1].size > src.cfg.width  # and out across the right edge
    assert len(staying_frames(src, step=1)) >= 3 * src.cfg.fps  # stays a few seconds wholly in view


def test_several_faces_are_on_screen_together_when_asked() -> None:
    src = demo(faces=3, seed=1)
    assert max(len(src.placements(k)) for k in range(src.frames_per_cycle)) == 3


def test_non_looping_demo_ends_after_one_cycle() -> None:
    src = demo(loop=False, fps=20, cycle_s=4)
    src.index = src.frames_per_cycle - 2
    assert src.grab() and src.retrieve() is not None
    assert not src.grab() and src.eof


def test_demo_camera_runs_through_the_worker_and_finishes() -> None:
    cfg = CameraConfig.model_validate(
        {
            "id": "demo",
            "max_fps": 0,
            "source": {"type": "demo", "width": 64, "height": 64, "fps": 400, "cycle_s": 1, "loop": False},
        }
    )
    with CameraWorker(cfg) as w:
        frames = 0
        while not w.finished:
            frames += w.latest(1.0) is not None
        st = w.stats()
    assert st["captured"] == 400 and st["reason"] == "eof"
    assert frames == st["delivered"] and st["delivered"] + st["dropped"] == 400


def test_face_image_ships_with_the_package() -> None:
    import cv2

    img = cv2.imread(str(FACE_IMAGE))
    assert img is not None and img.shape == (160, 160, 3)


def test_lbp_face_cascade_finds_the_face_where_it_was_placed() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    from skimage.feature import Cascade

    cascade = Cascade(skimage_data.lbp_frontal_face_cascade_filename())
    src = demo()
    checked = 0
    for k, p in staying_frames(src, step=20)[::3]:
        rgb = src.render(k)[:, :, ::-1]
        side = int(p.size)
        found = cascade.detect_multi_scale(
            img=rgb, scale_factor=1.2, step_ratio=1, min_size=(side // 3, side // 3), max_size=(side, side)
        )
        boxes = [(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in found]
        assert max((iou(b, p.face_box()) for b in boxes), default=0.0) > 0.4, (k, boxes, p.face_box())
        checked += 1
    assert checked >= 2


@pytest.mark.shared
def test_yunet_finds_the_face_where_it_was_placed(shared_dir: Path) -> None:
    import cv2

    model = shared_dir / "models" / "yunet" / "face_detection_yunet_2026may.onnx"
    if not model.is_file():
        pytest.skip("YuNet model not present in ../shared")
    src = demo()
    yunet = cv2.FaceDetectorYN.create(str(model), "", (src.cfg.width, src.cfg.height))
    for k, p in staying_frames(src, step=20):
        _, faces = yunet.detect(src.render(k))
        assert faces is not None and len(faces) == 1
        x, y, w, h = (float(v) for v in faces[0][:4])
        assert iou((x, y, x + w, y + h), p.face_box()) > 0.5


def test_blazeface_finds_the_face_where_it_was_placed(detector_models: Path) -> None:
    from edge_agent.detect.base import create_detector
    from edge_agent.detect.config import DetectorConfig

    detector = create_detector(DetectorConfig(models_dir=detector_models))
    try:
        src = demo()
        for k, p in staying_frames(src, step=20):
            dets = detector.detect(src.render(k))
            assert len(dets) == 1
            b = dets[0].box
            assert iou((b.x1, b.y1, b.x2, b.y2), p.face_box()) > 0.4
    finally:
        detector.close()


def test_the_presenter_clip_and_its_licence_ship_with_the_package() -> None:
    from edge_agent.capture.demo import PRESENTER_VIDEO, load_presenter

    frames = load_presenter()
    assert len(frames) == 120 and frames[0].shape == (192, 192, 3)
    licence = PRESENTER_VIDEO.with_suffix(".LICENSE").read_text()
    assert licence.startswith("MIT License") and "1Z" in licence
    assert PRESENTER_VIDEO.stat().st_size < 300_000


def test_one_demo_cycle_shows_a_visit_with_attention_audience_and_a_summary(models_dir: Path) -> None:  # noqa: F811
    """The Quickstart's demo, offline: the presenter's visit begins and ends, she looks, the audience and the
    summary are published, and the packaged model calls her an adult woman (her clip is of a woman in her 20s)."""
    from edge_agent.config import AgentConfig
    from edge_agent.daemon.analytics_adapter import AnalyticsAdapter
    from edge_agent.daemon.stills import Analyzer
    from edge_agent.records import Frame

    cfg = AgentConfig()
    src = demo()
    src.open()
    with Analyzer(cfg) as analyzer:
        analytics = AnalyticsAdapter("demo", cfg.tracking, cfg.analytics, analyzer.meta, analyzer.heads)
        msgs = []
        for k in range(src.frames_per_cycle):
            ts = 1_000_000.0 + k / src.cfg.fps
            msgs += analytics.update(analyzer.analyze(src.render(k)), Frame("demo", k, ts, ts, src.render(k)))
        msgs += analytics.flush("shutdown")
    topics = {m.topic_suffix.rsplit("/", 1)[-1] for m in msgs}
    assert {"tracks", "audience", "summary"} <= topics
    (end,) = [m.payload for m in msgs if m.payload.get("event") == "end"]
    assert end["attention_s"] > 3.0 and end["glances"] >= 1 and end["dwell_s"] > 5.0, end
    assert end["minor"] is False and end["attributes"]["gender"]["label"] == "female", end
    assert end["attributes"]["age_years"] >= 18, end
