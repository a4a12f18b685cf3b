"""CameraWorker behaviour: newest-frame-once semantics, drop counting, the fps cap, reopening, status and shutdown."""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.capture import CameraConfig, CameraWorker, FrameSource
from tests.fixtures.media import astronaut_bgr, drain, moving_face_frames, wait_for, write_clip

FAST_WATCHDOG = {"stall_timeout_s": 2.0, "backoff_min_s": 0.05, "backoff_max_s": 0.3}


def camera(source: dict, max_fps: float = 0, **kw: object) -> CameraConfig:
    return CameraConfig.model_validate(
        {"id": "cam1", "source": source, "max_fps": max_fps, "watchdog": FAST_WATCHDOG, **kw}
    )


def fast_demo(fps: float) -> dict:
    return {"type": "demo", "width": 160, "height": 120, "fps": fps}


class ArraySource(FrameSource):
    """A finite source handing out prepared items: arrays (any shape) or exceptions to raise from grab()."""

    paced = False

    def __init__(self, items: list[object], retrieve_s: float = 0.0) -> None:
        super().__init__(None)
        self.items = items
        self.retrieve_s = retrieve_s
        self.i = -1
        self.opens = 0

    @property
    def description(self) -> str:
        return "array source"

    def open(self) -> None:
        self.opens += 1

    def grab(self) -> bool:
        if self.i + 1 >= len(self.items):
            self.eof = True
            return False
        self.i += 1
        if isinstance(self.items[self.i], Exception):
            raise self.items[self.i]
        return True

    def retrieve(self) -> np.ndarray | None:
        time.sleep(self.retrieve_s)  # a slow decode (a huge image, a slow CPU)
        return self.items[self.i]  # type: ignore[return-value]

    def close(self) -> None:
        pass


def test_slow_consumer_gets_the_newest_frame_and_missed_frames_are_counted() -> None:
    with CameraWorker(camera(fast_demo(200))) as w:
        frames = []
        for _ in range(12):
            captured_before = w.stats()["captured"]
            f = w.latest(2.0)
            assert f is not None
            assert f.index >= captured_before - 2  # not an old frame from a backlog
            frames.append(f)
            time.sleep(0.05)
        st = w.stats()
    idx = [f.index for f in frames]
    assert all(b > a for a, b in itertools.pairwise(idx))
    assert any(b - a > 1 for a, b in itertools.pairwise(idx))
    assert st["dropped_stale"] > 0 and st["dropped"] == st["dropped_stale"]
    assert st["decoded"] == st["delivered"] + st["dropped_stale"] + int(st["pending"])
    assert st["delivered"] == 12


def test_a_frame_is_returned_at_most_once() -> None:
    with CameraWorker(camera(fast_demo(1))) as w:
        first = w.latest(5.0)
        assert first is not None
        assert w.latest(0) is None
        second = w.latest(5.0)
        assert second is not None and second.index == first.index + 1


def test_max_fps_caps_delivery_and_capped_frames_are_never_decoded() -> None:
    with CameraWorker(camera(fast_demo(100), max_fps=10)) as w:
        frames = [w.latest(2.0) for _ in range(10)]
        st = w.stats()
    assert all(f is not None for f in frames)
    gaps = [b.mono - a.mono for a, b in itertools.pairwise(frames)]  # type: ignore[union-attr]
    assert min(gaps) >= 0.1 * 0.7
    assert st["dropped_rate_cap"] > 0
    assert st["decoded"] <= st["delivered"] + 1
    assert st["captured"] == st["decoded"] + st["dropped_rate_cap"]


def test_unpaced_folder_waits_for_the_consumer_and_drops_nothing(tmp_path: Path) -> None:
    for i, img in enumerate(moving_face_frames(15)):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), img)
    with CameraWorker(camera({"type": "folder", "path": str(tmp_path)})) as w:
        frames = []
        while not w.finished:
            f = w.latest(1.0)
            if f is not None:
                frames.append(f)
                time.sleep(0.02)
        st = w.stats()
    assert [f.index for f in frames] == list(range(15))
    assert st["dropped"] == 0 and st["status"] == "offline"


def test_odd_frames_from_a_source_are_normalised_or_skipped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    photo = astronaut_bgr()
    items: list[object] = [
        photo,
        np.dstack([photo, np.zeros(photo.shape[:2], np.uint8)]),  # BGRA
        photo[:, :, 0],  # grey
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((100, 100, 3), np.float64) + 0.5,
        np.zeros((64, 64, 5), np.uint8),
        photo,
    ]
    src = ArraySource(items)
    with (
        caplog.at_level(logging.INFO, logger="edge_agent.capture"),
        CameraWorker(camera({"type": "demo"}), source=src) as w,
    ):
        frames = drain(w)
        st = w.stats()
    assert len(frames) == 5
    assert all(f.image.shape[2] == 3 and f.image.dtype == np.uint8 for f in frames)
    assert st["skipped"] == {"too_small": 1, "bad_channels": 1}
    assert st["normalised"] == {"bgra": 1, "grey": 1, "depth": 1}
    assert any("too_small" in r.getMessage() for r in caplog.records)


def test_a_source_that_raises_is_counted_reopened_and_goes_on() -> None:
    photo = astronaut_bgr()
    src = ArraySource([photo, RuntimeError("driver hiccup"), OSError("usb reset"), photo, photo])
    cfg = camera({"type": "demo"}, watchdog={**FAST_WATCHDOG, "max_read_failures": 2})
    with CameraWorker(cfg, source=src) as w:
        frames = drain(w)
        st = w.stats()
    assert len(frames) == 3
    assert st["read_failures"] == 2 and st["reopens"] == 1 and src.opens == 2


def test_missing_source_at_start_is_retried_until_it_appears(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    seen: list[str] = []
    cfg = camera({"type": "folder", "path": str(folder), "loop": True, "fps": 20})
    with CameraWorker(cfg, on_status=lambda cid, st: seen.append(st.state)) as w:
        wait_for(lambda: w.stats()["open_failures"] >= 2, 10, "open retries")
        assert w.status.state == "stalled" and "image folder not found" in w.status.reason
        assert w.latest(0.2) is None
        folder.mkdir()
        cv2.imwrite(str(folder / "a.jpg"), astronaut_bgr())
        assert w.latest(10.0) is not None
        assert w.status.state == "online"
    assert seen == ["stalled", "online", "offline"]


def test_looping_file_that_vanishes_is_reopened_with_backoff_when_it_returns(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "loop.mp4", moving_face_frames(8), fps=20.0)
    backup = tmp_path / "backup.mp4"
    shutil.copy(clip, backup)
    seen: list[str] = []
    cfg = camera({"type": "file", "path": str(clip), "loop": True})
    with CameraWorker(cfg, on_status=lambda cid, st: seen.append(st.state)) as w:
        assert w.latest(5.0) is not None
        clip.unlink()
        wait_for(lambda: w.status.state == "stalled", 10, "stalled after the file vanished")
        wait_for(lambda: w.stats()["open_failures"] >= 2, 10, "reopen attempts")
        assert "video file not found" in w.status.reason
        shutil.copy(backup, clip)
        wait_for(lambda: w.status.state == "online", 10, "online again")
        before = w.stats()["captured"]
        after = [w.latest(5.0) for _ in range(4)]
        assert all(f is not None for f in after)
        assert after[-1].index >= before + 2  # type: ignore[union-attr]
    assert seen[:3] == ["online", "stalled", "online"]


def test_slowly_paced_source_is_not_declared_stalled_between_its_frames(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.jpg"), astronaut_bgr())
    cfg = camera(
        {"type": "folder", "path": str(tmp_path), "loop": True, "fps": 1},
        watchdog={**FAST_WATCHDOG, "stall_timeout_s": 0.3},
    )
    with CameraWorker(cfg) as w:
        assert w.latest(3.0) is not None
        assert w.latest(3.0) is not None  # 1 s between frames, but the limit is 3 frame intervals
        assert w.status.state == "online" and w.stats()["reopens"] == 0


def test_status_callback_that_raises_does_not_stop_capture(caplog: pytest.LogCaptureFixture) -> None:
    def broken(camera_id: str, status: object) -> None:
        raise ValueError("publisher exploded")

    with (
        caplog.at_level(logging.ERROR, logger="edge_agent.capture"),
        CameraWorker(camera(fast_demo(50)), on_status=broken) as w,
    ):
        frames = [w.latest(2.0) for _ in range(5)]
    assert all(f is not None for f in frames)
    assert any("status callback failed: publisher exploded" in r.getMessage() for r in caplog.records)


def test_close_ends_threads_even_during_a_long_pacing_wait() -> None:
    w = CameraWorker(camera({**fast_demo(0.2)})).start()
    assert w.latest(5.0) is not None  # the first frame comes at once; the next one is 5 s away
    w.close(timeout=2.0)
    assert not any(t.is_alive() for t in w._threads)
    assert w.status.state == "offline" and w.status.reason == "closed"
    assert w.finished and w.latest(1.0) is None


def test_stats_carry_status_and_counters() -> None:
    with CameraWorker(camera(fast_demo(50))) as w:
        assert w.latest(2.0) is not None
        st = w.stats()
    for key in (
        "camera_id",
        "source",
        "status",
        "since",
        "reason",
        "captured",
        "decoded",
        "delivered",
        "dropped",
        "read_failures",
        "open_failures",
        "reopens",
        "skipped",
        "normalised",
        "capture_fps",
        "delivered_fps",
    ):
        assert key in st
    assert st["camera_id"] == "cam1" and "synthetic" in str(st["source"])


def test_looping_and_reopening_do_not_leak_file_descriptors_or_threads(tmp_path: Path) -> None:
    import os
    import threading

    clip = write_clip(tmp_path / "short.mp4", moving_face_frames(4), fps=20.0)
    fds_before, threads_before = len(os.listdir("/proc/self/fd")), threading.active_count()
    cfg = camera({"type": "file", "path": str(clip), "loop": True, "realtime": False})
    with CameraWorker(cfg) as w:
        for _ in range(12):  # three passes to warm up decoder state
            assert w.latest(5.0) is not None
        fds_warm = len(os.listdir("/proc/self/fd"))
        for _ in range(100):  # 25 more reopen cycles
            assert w.latest(5.0) is not None
        fds_after_loops = len(os.listdir("/proc/self/fd"))
    assert fds_after_loops <= fds_warm + 1
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 1
    assert threading.active_count() == threads_before


def test_looping_folder_of_only_bad_files_is_throttled_not_spun(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_text("not a picture")
    cfg = camera({"type": "folder", "path": str(tmp_path), "loop": True})
    with CameraWorker(cfg) as w:
        time.sleep(1.5)
        skipped = w.stats()["skipped"]
        assert w.latest(0) is None
    # About 10 at full speed, then one per 0.1 s pause: far from the thousands an unthrottled loop would skip.
    assert 10 < skipped["not_an_image"] < 40


def test_a_slow_decode_is_not_mistaken_for_a_stalled_source() -> None:
    photo = astronaut_bgr()
    src = ArraySource([photo, photo, photo], retrieve_s=0.8)
    cfg = camera({"type": "demo"}, watchdog={**FAST_WATCHDOG, "stall_timeout_s": 0.2})
    seen: list[str] = []
    with CameraWorker(cfg, source=src, on_status=lambda cid, st: seen.append(st.state)) as w:
        frames = drain(w)
        st = w.stats()
    assert len(frames) == 3 and st["reopens"] == 0 and src.opens == 1
    assert seen == ["online", "offline"]
