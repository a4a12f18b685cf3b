"""The guided detector with the real models: a still empty scene costs no detection, a face is re-found by region
searches at the full scan's box, and `stats` reports the counts per second."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.daemon.stats import RunnerSnapshot, detection_stats
from edge_agent.detect.guided import GuidedDetector, ScheduleStats
from edge_agent.detect.schedule_config import ScheduleConfig
from edge_agent.records import TrackHint
from tests.fixtures.media import astronaut_bgr

FPS = 30.0


@pytest.fixture(scope="module")
def detectors():
    from edge_agent.detect.blazeface import BlazeFaceDetector
    from edge_agent.detect.config import DetectorConfig
    from edge_agent.detect.region import RegionFinder
    from edge_agent.runtime import ModelLoadError

    try:
        full = BlazeFaceDetector(DetectorConfig())
        region = RegionFinder(DetectorConfig())
    except (ModelLoadError, FileNotFoundError) as exc:
        pytest.skip(f"detector models unavailable: {exc}")
    yield full, region
    full.close()
    region.close()


@pytest.fixture(scope="module")
def room() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.resize(data.coffee()[:, :, ::-1], (640, 480), interpolation=cv2.INTER_AREA)


def test_a_still_empty_scene_is_not_scanned(detectors, room: np.ndarray) -> None:
    full, region = detectors
    guide = GuidedDetector(ScheduleConfig(), full, region)
    rng = np.random.default_rng(0)
    for i in range(90):
        noisy = np.clip(room + rng.normal(0, 2, room.shape), 0, 255).astype(np.uint8)
        assert guide.detect(noisy, i / FPS, []).detections == []
    st = guide.stats()
    assert st.full_scans == 2  # the first frame and one idle scan (every 2 s), nothing else
    assert st.still_frames == 88 and st.region_searches == 0


@pytest.mark.parametrize("width", [140, 70], ids=["near", "far (second-look geometry)"])
def test_region_search_refinds_a_face_with_the_full_scans_box(detectors, room: np.ndarray, width: int) -> None:
    full, region = detectors
    face = cv2.resize(astronaut_bgr()[28:228, 125:325], (round(width * 2.1),) * 2, interpolation=cv2.INTER_AREA)
    img = room.copy()
    img[120 : 120 + face.shape[0], 250 : 250 + face.shape[1]] = face
    found = full.detect(img)
    assert len(found) == 1
    ref = found[0]
    dets, ids = region.search(img, [TrackHint("t", ref.box.translate(0.1 * width, 0.05 * width), 0.0)])
    assert ids == {"t"} and len(dets) == 1
    assert dets[0].box.iou(ref.box) > 0.85  # the same face, and (nearly) the same box the full scan gave


def test_stats_payload_reports_scans_searches_still_frames_and_classifications_per_second() -> None:
    from edge_agent.capture.status import CaptureSnapshot

    def snap(full: int, regions: int, still: int, classified: int) -> RunnerSnapshot:
        det = ScheduleStats(100, full, {"cadence": full}, regions, 1, still, 0, 5, 0)
        return RunnerSnapshot("c", _capture(CaptureSnapshot), 100, 0, 0, 0, 0, classified=classified, detection=det)

    prev, cur = snap(10, 40, 100, 8), snap(13, 60, 160, 16)
    out = detection_stats(cur, prev, 2.0)
    assert out["full_scans_per_s"] == 1.5 and out["region_searches_per_s"] == 10.0
    assert out["still_frames_per_s"] == 30.0 and out["classifications_per_s"] == 4.0
    assert out["full_scans"] == 13 and out["full_scans_by_reason"] == {"cadence": 13}


def _capture(cls):  # a CaptureSnapshot with zeros, whatever its fields are
    import dataclasses

    values = {}
    for f in dataclasses.fields(cls):
        values[f.name] = "online" if f.name == "state" else 0.0 if "fps" in f.name else 0
    return cls(**values)
