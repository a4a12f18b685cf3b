"""Detection scheduling: cadence, region searches between scans, recovery of a lost track, and (with the real
models) a new face found within the latency bound on a scripted sequence."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.detect.motion import Motion
from edge_agent.detect.schedule import DetectionScheduler
from edge_agent.detect.schedule_config import MotionConfig, ScheduleConfig
from edge_agent.records import Box, TrackHint

FPS = 30.0
STILL = Motion(False, False, np.zeros((12, 16), bool), 40.0, 40.0)


def moving_at(col: int, row: int) -> Motion:
    cells = np.zeros((12, 16), bool)
    cells[row, col] = cells[row, col + 1] = True
    return Motion(True, False, cells, 40.0, 40.0)


def hint(t_seen: float, x: float = 300.0) -> TrackHint:
    return TrackHint("a", Box(x, 100, x + 80, 180), t_seen)


def _plans(s: DetectionScheduler, n: int, motion: Motion | None = STILL, track: bool = True, found: bool = True):
    """n frames at 30 fps with one track that every look finds (`found`), returning the plans."""
    plans, seen = [], 0.0
    for i in range(n):
        t = i / FPS
        p = s.plan(t, motion, [hint(seen)] if track and i > 0 else [])
        if p.full or (p.regions and found):
            seen = t
        if p.regions:
            s.report(p, {"a"} if found else set())
        plans.append(p)
    return plans


def test_full_scans_come_every_k_frames_while_someone_is_tracked() -> None:
    s = DetectionScheduler(ScheduleConfig(full_scan_every=6, max_latency_s=10.0, region_interval_s=0.0))
    plans = _plans(s, 40)
    assert [i for i, p in enumerate(plans) if p.full] == list(range(0, 40, 6))
    assert {p.reason for p in plans[1:] if p.full} == {"cadence"}


def test_full_scans_are_never_further_apart_than_the_latency_bound() -> None:
    s = DetectionScheduler(ScheduleConfig(full_scan_every=1000, max_latency_s=0.3, region_interval_s=0.0))
    full = [i for i, p in enumerate(_plans(s, 90)) if p.full]
    gaps = np.diff(full) / FPS
    assert len(full) >= 9 and gaps.max() <= 0.3 + 1e-9


def test_region_searches_fill_the_frames_between_scans_at_their_interval() -> None:
    s = DetectionScheduler(ScheduleConfig(full_scan_every=10, max_latency_s=10.0, region_interval_s=0.1))
    plans = _plans(s, 30)
    region = [i for i, p in enumerate(plans) if p.regions]
    assert region and all(not plans[i].full and plans[i].regions[0].track_id == "a" for i in region)
    assert all(np.diff(region) >= 3)  # 0.1 s at 30 fps
    assert {p.reason for p in plans if not p.full and not p.regions} == {"between"}


def test_a_track_lost_by_the_region_search_gets_a_full_scan_next() -> None:
    s = DetectionScheduler(ScheduleConfig(full_scan_every=100, max_latency_s=10.0, region_interval_s=0.0))
    plans = _plans(s, 6, found=False)
    # scan, region search (misses), recovery scan, region search (misses), ...
    assert [p.full for p in plans] == [True, False, True, False, True, False]
    assert plans[2].reason == "recovery"


def test_a_still_empty_scene_is_skipped_except_for_the_idle_scan() -> None:
    s = DetectionScheduler(ScheduleConfig(idle_scan_s=2.0, motion_hold_s=0.5))
    plans = _plans(s, int(6 * FPS), track=False)
    full = [i for i, p in enumerate(plans) if p.full]
    assert full == [0, 60, 120]
    assert sum(p.reason == "still" for p in plans) == len(plans) - len(full)


def test_motion_where_no_track_is_triggers_a_scan_at_once_but_not_every_frame() -> None:
    s = DetectionScheduler(ScheduleConfig(full_scan_every=1000, max_latency_s=10.0, motion_scan_interval_s=0.1))
    s.plan(0.0, STILL, [])  # first frame: a full scan
    assert not s.plan(1 / FPS, STILL, []).full
    far = moving_at(0, 0)  # top-left corner, far from the track at x 300-380
    plans = [s.plan(i / FPS, far, [hint(0.0)]) for i in range(2, 12)]
    assert plans[0].full and plans[0].reason == "motion"
    assert sum(p.full for p in plans) == 4  # frames 2, 5, 8, 11: one per 0.1 s
    # Motion right under the tracked face (its body) is the track's own: no scan for it.
    s2 = DetectionScheduler(ScheduleConfig(full_scan_every=1000, max_latency_s=10.0))
    s2.plan(0.0, STILL, [])
    body = moving_at(7, 6)  # cells at x 280-360, y 240-280: below the face box
    assert not any(s2.plan(i / FPS, body, [hint(i / FPS)]).full for i in range(1, 8))


def test_every_frame_mode_scans_every_frame() -> None:
    s = DetectionScheduler(ScheduleConfig(mode="every_frame"))
    assert all(p.full and p.reason == "every_frame" for p in _plans(s, 20))


# ---- with the real models -------------------------------------------------------------------------------------


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


def _walk_in(n: int, enter: int, second_at: int | None = None):
    """Frames: a real face (the astronaut) standing on a real photo; from `enter` on, a second one slides in."""
    import cv2

    from tests.fixtures.media import astronaut_bgr

    data = pytest.importorskip("skimage.data")
    bg = cv2.resize(data.coffee()[:, :, ::-1], (640, 480), interpolation=cv2.INTER_AREA)
    face = cv2.resize(astronaut_bgr()[28:228, 125:325], (150, 150), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        img = bg.copy()
        img[60:210, 40 + (i % 4) : 190 + (i % 4)] = face  # stays, breathing a little
        if i >= enter:
            x = min(440, 300 + 20 * (i - enter))
            img[280:430, x : x + 150] = face[:, ::-1]
        frames.append(np.ascontiguousarray(img))
    return frames


@pytest.mark.parametrize("motion", [True, False], ids=["motion-gate", "cadence-only"])
def test_a_face_that_walks_in_is_found_within_the_latency_bound(detectors, motion: bool) -> None:
    from edge_agent.analytics.pose import estimate_pose
    from edge_agent.detect.guided import GuidedDetector
    from edge_agent.records import Face
    from edge_agent.track.config import TrackerConfig
    from edge_agent.track.events import HeadSpec
    from edge_agent.track.tracker import Tracker

    full, region = detectors
    cfg = ScheduleConfig(motion=MotionConfig(enabled=motion))
    guide = GuidedDetector(cfg, full, region)
    tracker = Tracker(TrackerConfig(), HeadSpec())
    enter = 20
    found_at = None
    for i, img in enumerate(_walk_in(40, enter)):
        t = 100.0 + i / FPS
        look = guide.detect(img, t, tracker.hints(t))
        faces = [Face(d, None, estimate_pose(d.keypoints), d.box.width) for d in look.detections]
        tracker.update(faces, t)
        if i >= enter and found_at is None and any(d.box.center[1] > 280 for d in look.detections):
            found_at = i
    assert found_at is not None
    assert (found_at - enter) / FPS <= cfg.max_latency_s
    st = guide.stats()
    assert st.region_searches > 0 and st.full_scans < 40  # most frames did not pay a full scan
