"""Pure parts of capture: frame normalisation, backoff, rate-limited logging, the config models and --source parsing."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import ValidationError

from edge_agent.capture.backoff import Backoff
from edge_agent.capture.config import (
    CameraConfig,
    DemoSourceConfig,
    FileSourceConfig,
    FolderSourceConfig,
    SourceSpecError,
    StreamSourceConfig,
    V4L2SourceConfig,
    describe_source,
    redact_url,
    source_from_string,
)
from edge_agent.capture.frames import normalize_frame
from edge_agent.ratelog import RateLimitedLog
from tests.fixtures.media import astronaut_bgr

# ---- normalize_frame ----------------------------------------------------------------------------------------------


def _assert_bgr(img: np.ndarray | None) -> np.ndarray:
    assert img is not None
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.flags.c_contiguous
    return img


def test_bgr_frame_passes_through_unchanged() -> None:
    photo = astronaut_bgr()
    out = normalize_frame(photo)
    assert out.skip is None and out.fixes == ()
    np.testing.assert_array_equal(_assert_bgr(out.image), photo)


def test_grey_frames_become_bgr_with_equal_channels() -> None:
    grey = astronaut_bgr()[:, :, 1]
    for arr in (grey, grey[:, :, None]):
        out = normalize_frame(arr)
        img = _assert_bgr(out.image)
        assert out.fixes == ("grey",)
        np.testing.assert_array_equal(img[:, :, 0], grey)
        np.testing.assert_array_equal(img[:, :, 2], grey)


def test_bgra_frame_drops_alpha() -> None:
    photo = astronaut_bgr()
    bgra = np.dstack([photo, np.full(photo.shape[:2], 7, np.uint8)])
    out = normalize_frame(bgra)
    assert out.fixes == ("bgra",)
    np.testing.assert_array_equal(_assert_bgr(out.image), photo)


def test_16bit_and_float_frames_are_scaled_to_8bit() -> None:
    photo = astronaut_bgr()
    out16 = normalize_frame(photo.astype(np.uint16) * 257)
    np.testing.assert_array_equal(_assert_bgr(out16.image), photo)
    assert out16.fixes == ("depth",)
    outf = normalize_frame(photo.astype(np.float32) / 255.0)
    assert np.abs(_assert_bgr(outf.image).astype(int) - photo).max() <= 1


@pytest.mark.parametrize(
    ("arr", "reason"),
    [
        (np.zeros((1, 1, 3), np.uint8), "too_small"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((40, 40, 2), np.uint8), "bad_channels"),
        (np.zeros((40, 40, 3, 2), np.uint8), "bad_shape"),
        (np.zeros((40, 40, 3), np.int64), "bad_dtype"),
        (np.zeros((10000, 20), np.uint8), "too_small"),
        (None, "empty"),
        ("not an array", "empty"),
    ],
)
def test_unusable_frames_are_skipped_with_a_reason(arr: object, reason: str) -> None:
    out = normalize_frame(arr, max_side=1920, min_side=32)
    assert out.image is None and out.skip == reason


def test_huge_frame_is_downscaled_to_the_limit_keeping_aspect() -> None:
    huge = np.full((10000, 10000), 128, np.uint8)
    out = normalize_frame(huge, max_side=1920)
    img = _assert_bgr(out.image)
    assert img.shape == (1920, 1920, 3)
    assert out.fixes == ("downscaled", "grey")
    wide = normalize_frame(np.zeros((3000, 6000, 4), np.uint8), max_side=1000)
    assert _assert_bgr(wide.image).shape == (500, 1000, 3)
    assert wide.fixes == ("downscaled", "bgra")


SKIP_REASONS = {"empty", "bad_shape", "too_small", "bad_dtype", "bad_channels"}


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=40),
    ),
    st.integers(min_value=20, max_value=64),
    st.integers(min_value=1, max_value=16),
)
def test_any_array_is_either_a_valid_frame_or_a_named_skip(arr: np.ndarray, max_side: int, min_side: int) -> None:
    out = normalize_frame(arr, max_side=max_side, min_side=min_side)
    if out.image is None:
        assert out.skip in SKIP_REASONS
    else:
        img = _assert_bgr(out.image)
        assert out.skip is None
        assert max(img.shape[:2]) <= max_side and min(img.shape[:2]) >= min_side


def test_non_contiguous_view_is_made_contiguous() -> None:
    rgb_view = astronaut_bgr()[:, :, ::-1]
    out = normalize_frame(rgb_view)
    assert _assert_bgr(out.image).flags.c_contiguous


# ---- backoff and rate-limited log --------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(0.5, 4.0, jitter=0.0)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next_delay() == 0.5


def test_backoff_jitter_stays_within_bounds_and_is_seedable() -> None:
    a = Backoff(1.0, 8.0, jitter=0.2, rng=random.Random(7))
    b = Backoff(1.0, 8.0, jitter=0.2, rng=random.Random(7))
    da = [a.next_delay() for _ in range(20)]
    assert da == [b.next_delay() for _ in range(20)]
    assert 0.8 <= da[0] <= 1.2 and all(d <= 8.0 * 1.2 for d in da)
    assert len({round(d, 6) for d in da[5:]}) > 1  # capped delays still differ, so cameras don't retry in step


def test_backoff_rejects_inverted_bounds() -> None:
    with pytest.raises(ValueError, match="min_s"):
        Backoff(5.0, 1.0)


def test_rate_limited_log_suppresses_repeats_and_reports_how_many(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.ratelog")
    rl = RateLimitedLog(interval_s=0.2)
    with caplog.at_level(logging.INFO, logger="test.ratelog"):
        assert rl.warn("k", logger, "bad %s", 1)
        assert not rl.warn("k", logger, "bad %s", 2)
        assert not rl.warn("k", logger, "bad %s", 3)
        assert rl.warn("other", logger, "other key %s", 1, level=logging.INFO)
        rl._last["k"] -= 1.0  # pretend the interval passed, instead of sleeping
        assert rl.warn("k", logger, "bad %s", 4)
    got = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [
        (logging.WARNING, "bad 1"),
        (logging.INFO, "other key 1"),
        (logging.WARNING, "bad 4 (+2 more like this in the last 0.2s)"),
    ]
    assert rl.snapshot() == {"k": {"count": 4, "logged": 2}, "other": {"count": 1, "logged": 1}}


# ---- config --------------------------------------------------------------------------------------------------------


def test_source_type_selects_the_model() -> None:
    cam = CameraConfig.model_validate({"id": "door", "source": {"type": "folder", "path": "/tmp/x", "fps": 2}})
    assert isinstance(cam.source, FolderSourceConfig) and cam.source.fps == 2
    assert isinstance(CameraConfig().source, DemoSourceConfig)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"source": {"type": "v4l2", "fourcc": "MJPEG"}}, "fourcc"),
        ({"source": {"type": "stream", "url": "ftp://x/y"}}, "url"),
        ({"source": {"type": "file", "pth": "a.mp4"}}, "pth"),
        ({"source": {"type": "webcam"}}, "source"),
        ({"id": "cam/1"}, "id"),
        ({"max_fps": -1}, "max_fps"),
        ({"watchdog": {"backoff_min_s": 10, "backoff_max_s": 1}}, "watchdog"),
        ({"watchdog": {"stall_timeout": 3}}, "stall_timeout"),
    ],
)
def test_invalid_camera_config_names_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ValidationError) as err:
        CameraConfig.model_validate(raw)
    locs = [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]
    assert any(key in loc for loc in locs), locs


def test_source_strings_map_to_sources(tmp_path: Path) -> None:
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x")
    assert isinstance(source_from_string("demo"), DemoSourceConfig)
    assert source_from_string("2") == V4L2SourceConfig(device=2)
    assert source_from_string("/dev/video3") == V4L2SourceConfig(device="/dev/video3")
    assert isinstance(source_from_string("rtsp://cam.local:554/s"), StreamSourceConfig)
    assert source_from_string(str(clip)) == FileSourceConfig(path=clip)
    assert source_from_string(str(tmp_path)) == FolderSourceConfig(path=tmp_path)
    assert source_from_string(f"file://{clip}") == FileSourceConfig(path=clip)


@pytest.mark.parametrize("spec", ["", "   ", "/nonexistent/clip.mp4", "gopher://x/"])
def test_bad_source_strings_give_one_line_errors(spec: str) -> None:
    with pytest.raises(SourceSpecError) as err:
        source_from_string(spec)
    assert "\n" not in str(err.value) and "--source" in str(err.value)


def test_stream_passwords_never_appear_in_descriptions() -> None:
    url = "rtsp://admin:s3cret@10.0.0.5:554/live"
    assert redact_url(url) == "rtsp://admin:***@10.0.0.5:554/live"
    assert "s3cret" not in describe_source(StreamSourceConfig(url=url))
    with pytest.raises(SourceSpecError) as err:
        source_from_string("gopher://admin:s3cret@host/x")
    assert "s3cret" not in str(err.value)
