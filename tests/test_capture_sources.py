"""Sources on real files: a folder full of bad media, video files (whole, looping, truncated, not video), devices."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.capture import CameraConfig, CameraWorker, SourceError, create_source, iter_frames
from edge_agent.capture.config import (
    FileSourceConfig,
    FolderSourceConfig,
    StreamSourceConfig,
    V4L2SourceConfig,
)
from tests.fixtures.media import astronaut_bgr, cat_bgr, drain, moving_face_frames, wait_for, write_clip

FAST_WATCHDOG = {"stall_timeout_s": 2.0, "backoff_min_s": 0.05, "backoff_max_s": 0.2}


def camera(source: dict, **kw: object) -> CameraConfig:
    return CameraConfig.model_validate({"id": "t", "source": source, "max_fps": 0, "watchdog": FAST_WATCHDOG, **kw})


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


@pytest.fixture
def bad_media_folder(tmp_path: Path) -> Path:
    """Real photos mixed with every kind of bad image file; 5 of the files are usable."""
    d = tmp_path / "images"
    d.mkdir()
    photo = astronaut_bgr()
    good = _jpeg(photo)
    cv2.imwrite(str(d / "000_face.jpg"), photo)
    noise = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    (d / "001_corrupt.jpg").write_bytes(good[:20] + noise)  # JPEG header, then garbage
    (d / "002_empty.jpg").write_bytes(b"")
    (d / "003_text.jpg").write_text("this is a text file, not a picture\n")
    cv2.imwrite(str(d / "004_grey.png"), cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(d / "005_bgra.png"), np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)]))
    cv2.imwrite(str(d / "006_tiny.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(d / "007_huge.jpg"), np.full((7000, 7000), 100, np.uint8))  # 49 Mpx: under the bomb limit
    cv2.imwrite(str(d / "008_cat.png"), cat_bgr())
    (d / "notes.txt").write_text("ignored: not an image extension")
    (d / "sub.jpg").mkdir()  # a directory with an image-like name is ignored too
    return d


def test_folder_skips_and_counts_bad_files_and_normalises_the_rest(bad_media_folder: Path) -> None:
    cfg = camera({"type": "folder", "path": str(bad_media_folder)})
    with CameraWorker(cfg) as w:
        frames = drain(w)
        stats = w.stats()
    assert len(frames) == 5  # face, grey, bgra, huge, cat: the loop went on past every bad file
    for f in frames:
        assert f.image.dtype == np.uint8 and f.image.ndim == 3 and f.image.shape[2] == 3
        assert max(f.image.shape[:2]) <= cfg.limits.max_side
    assert frames[0].image.shape == (512, 512, 3)
    assert frames[3].image.shape == (1920, 1920, 3)  # 7000x7000 downscaled
    assert stats["skipped"] == {"not_an_image": 2, "empty_file": 1, "too_small": 1}
    assert stats["normalised"] == {"grey": 2, "downscaled": 1}
    assert stats["dropped"] == 0 and stats["status"] == "offline" and stats["reason"] == "eof"
    assert stats["captured"] == 9 == stats["decoded"] + sum(stats["skipped"].values())


def test_iter_frames_yields_every_usable_image_in_name_order(bad_media_folder: Path) -> None:
    skipped: Counter[str] = Counter()
    frames = list(iter_frames(FolderSourceConfig(path=bad_media_folder), skipped=skipped))
    assert [f.shape for f in frames][:3] == [(512, 512, 3)] * 3
    assert frames[4].shape == (300, 451, 3)  # the cat comes last
    assert skipped == Counter({"not_an_image": 2, "empty_file": 1, "too_small": 1})


def test_truncated_jpeg_is_either_decoded_or_skipped_and_the_loop_continues(tmp_path: Path) -> None:
    data = _jpeg(astronaut_bgr())
    (tmp_path / "a_half.jpg").write_bytes(data[: len(data) // 2])
    cv2.imwrite(str(tmp_path / "b_cat.jpg"), cat_bgr())
    skipped: Counter[str] = Counter()
    frames = list(iter_frames(FolderSourceConfig(path=tmp_path), skipped=skipped))
    assert len(frames) + sum(skipped.values()) == 2
    assert frames[-1].shape == (300, 451, 3)


def test_folder_that_vanishes_while_open_skips_vanished_files(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), astronaut_bgr())
    src = create_source(FolderSourceConfig(path=tmp_path))
    src.open()
    assert src.grab() and src.retrieve() is not None
    (tmp_path / "1.jpg").unlink()
    assert src.grab()
    with pytest.raises(Exception, match="vanished"):
        src.retrieve()
    assert src.grab() and src.retrieve() is not None
    assert not src.grab() and src.eof


def test_reopened_folder_resumes_after_the_last_image(tmp_path: Path) -> None:
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), cv2.resize(astronaut_bgr(), (40 + 10 * i, 40 + 10 * i)))
    src = create_source(FolderSourceConfig(path=tmp_path))
    src.open()
    assert [src.read().shape[0] for _ in range(2)] == [40, 50]  # type: ignore[union-attr]
    src.close()
    src.open()  # as the watchdog does after a stall
    assert [src.read().shape[0] for _ in range(2)] == [60, 70]  # type: ignore[union-attr]
    assert src.read() is None and src.eof


def test_video_file_plays_every_frame_in_order_then_ends(face_clip: Path) -> None:
    cfg = camera({"type": "file", "path": str(face_clip), "realtime": False})
    statuses = []
    with CameraWorker(cfg, on_status=lambda cid, st: statuses.append(st.state)) as w:
        frames = drain(w)
        assert w.finished and w.status.state == "offline" and w.status.reason == "eof"
        assert w.latest(0.1) is None  # a finished camera returns at once
    assert [f.index for f in frames] == list(range(40))
    assert all(f.image.shape == (240, 320, 3) and f.camera_id == "t" for f in frames)
    assert all(a.mono <= b.mono and a.ts <= b.ts for a, b in itertools.pairwise(frames))
    assert statuses == ["online", "offline"]


def test_looping_video_file_keeps_delivering_past_its_end(face_clip: Path) -> None:
    cfg = camera({"type": "file", "path": str(face_clip), "realtime": False, "loop": True})
    with CameraWorker(cfg) as w:
        frames = [f for f in (w.latest(2.0) for _ in range(100)) if f is not None]
        assert not w.finished and w.status.state == "online"
    assert len(frames) == 100
    assert frames[-1].index == 99  # indexes keep counting across the loop


def test_realtime_file_counts_frames_the_slow_consumer_missed(face_clip: Path) -> None:
    cfg = camera({"type": "file", "path": str(face_clip), "realtime": True})
    with CameraWorker(cfg) as w:
        frames = []
        while not w.finished:
            f = w.latest(0.5)
            if f is not None:
                frames.append(f)
                w._stop.wait(0.15)  # a consumer slower than the clip's 20 fps
        st = w.stats()
    assert st["captured"] == 40 and st["dropped"] > 0
    assert st["decoded"] == st["delivered"] + st["dropped_stale"] + int(st["pending"])
    assert st["delivered"] == len(frames) < 40


def test_mp4_without_its_index_gives_a_clear_open_error(face_clip: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    data = face_clip.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])  # OpenCV writes the moov atom last, so this loses it
    src = create_source(FileSourceConfig(path=cut))
    with pytest.raises(SourceError) as err:
        src.open()
    assert str(err.value) == f"video file {cut}: cannot decode (not a video, truncated, or an unsupported codec)"


def test_truncated_avi_delivers_the_frames_before_the_cut_then_ends(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "a.avi", moving_face_frames(40), fps=20.0, fourcc="MJPG")
    data = clip.read_bytes()
    clip.write_bytes(data[: int(len(data) * 0.6)])
    with CameraWorker(camera({"type": "file", "path": str(clip), "realtime": False})) as w:
        frames = drain(w)
        assert w.status.reason == "eof"
    assert 10 <= len(frames) < 40


@pytest.mark.shared
def test_truncated_faststart_mp4_delivers_frames_then_ends(face_video: Path, tmp_path: Path) -> None:
    cut = tmp_path / "face_cut.mp4"
    data = face_video.read_bytes()
    cut.write_bytes(data[: len(data) // 3])  # face.mp4 has its index first: the cut loses frames, not the index
    with CameraWorker(camera({"type": "file", "path": str(cut), "realtime": False})) as w:
        frames = drain(w, timeout=60)
        assert w.status.reason == "eof"
    assert 30 <= len(frames) < 383
    assert frames[0].image.shape == (480, 854, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", r"video file is empty \(0 bytes\)"), (b"definitely not a video " * 100, "cannot decode")],
)
def test_files_that_are_not_video_give_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "x.mp4"
    p.write_bytes(content)
    with pytest.raises(SourceError, match=message) as err:
        create_source(FileSourceConfig(path=p)).open()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (V4L2SourceConfig(device="/dev/video99"), "camera /dev/video99: no such device"),
        (V4L2SourceConfig(device=97), "camera /dev/video97: no such device"),
        (V4L2SourceConfig(device="/dev/null"), "camera /dev/null: cannot open (busy, or not a capture device)"),
        (FileSourceConfig(path=Path("/nonexistent/clip.mp4")), "video file not found: /nonexistent/clip.mp4"),
        (FolderSourceConfig(path=Path("/nonexistent/dir")), "image folder not found: /nonexistent/dir"),
    ],
)
def test_missing_devices_and_paths_give_one_line_errors(cfg: object, message: str) -> None:
    with pytest.raises(SourceError) as err:
        create_source(cfg).open()  # type: ignore[arg-type]
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_folder_skips_files_over_the_size_limit_without_decoding_them(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a_big.png"), astronaut_bgr())  # about 500 kB
    cv2.imwrite(str(tmp_path / "b_small.jpg"), cv2.resize(astronaut_bgr(), (64, 64)))
    skipped: Counter[str] = Counter()
    frames = list(iter_frames(FolderSourceConfig(path=tmp_path, max_file_mb=0.1), skipped=skipped))
    assert [f.shape for f in frames] == [(64, 64, 3)]
    assert skipped == Counter({"file_too_large": 1})


def test_folder_without_images_is_an_open_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(SourceError, match="no images"):
        create_source(FolderSourceConfig(path=tmp_path)).open()


def test_stream_with_nothing_listening_fails_within_its_open_timeout() -> None:
    from tests.fixtures.media import free_port

    url = f"http://user:pw@127.0.0.1:{free_port()}/stream.mjpg"
    with pytest.raises(SourceError) as err:
        create_source(StreamSourceConfig(url=url, open_timeout_s=1.0)).open()
    assert "connection refused" in str(err.value) and ":pw@" not in str(err.value)  # says what happened


def test_unopenable_camera_logs_one_clear_error_then_keeps_retrying(caplog: pytest.LogCaptureFixture) -> None:
    cfg = camera({"type": "v4l2", "device": "/dev/video99"})
    with caplog.at_level("WARNING", logger="edge_agent.capture"), CameraWorker(cfg) as w:
        wait_for(lambda: w.stats()["open_failures"] >= 3, 10, "three open attempts")
        assert w.status.state == "stalled"
        assert w.status.reason.startswith("open failed: camera /dev/video99: no such device")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "/dev/video99" in errors[0].getMessage() and "retrying" in errors[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)  # no tracebacks


def test_plain_read_returns_none_for_a_bad_file_and_goes_on(bad_media_folder: Path) -> None:
    src = create_source(FolderSourceConfig(path=bad_media_folder))
    src.open()
    results = []
    while not src.eof:
        results.append(src.read())
    src.close()
    assert len(results) == 10  # nine files, then the read that finds the end
    assert sum(r is not None for r in results) == 6  # 1x1 comes back raw: read() does not normalise
