"""The synthetic detection-frame generator (benchmarks/synth_frames.py): each pasted face is where its box says."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from benchmarks import synth_frames as sf


def _marked_crop(size: int = 200) -> sf.FaceCrop:
    """A grey chip whose 'face' is a white square at fractions (0.25, 0.2)-(0.75, 0.8)."""
    img = np.full((size, size, 3), 100, np.uint8)
    img[int(0.2 * size) : int(0.8 * size), int(0.25 * size) : int(0.75 * size)] = 255
    return sf.FaceCrop(img, (0.25, 0.2, 0.75, 0.8))


@pytest.mark.parametrize("seed", range(6))
def test_each_pasted_face_box_matches_the_pixels_it_covers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    widths = [24.0, 61.5, 150.0]
    frame, boxes = sf.make_frame(rng, [_marked_crop()] * 3, widths, np.zeros((480, 640, 3), np.uint8))
    assert frame.shape == (480, 640, 3) and len(boxes) == 3
    white = frame[..., 0] > 200
    for box, width in zip(boxes, widths, strict=True):
        assert box.width == pytest.approx(width, abs=0.5)
        assert box.x1 >= 0 and box.x2 <= 640 and box.y1 >= 0 and box.y2 <= 480
        inner = white[int(box.y1) + 2 : int(box.y2) - 2, int(box.x1) + 2 : int(box.x2) - 2]
        assert inner.all()  # the face is inside its box...
        ring = white[max(int(box.y1) - 3, 0) : int(box.y2) + 3, max(int(box.x1) - 3, 0) : int(box.x2) + 3].sum()
        assert ring == pytest.approx(white[int(box.y1) : int(box.y2) + 1, int(box.x1) : int(box.x2) + 1].sum(), rel=0.1)
    # ...and nothing white lies outside the boxes (no overlap, no stray paste).
    covered = np.zeros_like(white)
    for b in boxes:
        covered[int(b.y1) - 1 : int(b.y2) + 2, int(b.x1) - 1 : int(b.x2) + 2] = True
    assert not (white & ~covered).any()


def test_faces_that_cannot_fit_raise_placement_error() -> None:
    rng = np.random.default_rng(0)
    bg = np.zeros((480, 640, 3), np.uint8)
    with pytest.raises(sf.PlacementError):
        sf.make_frame(rng, [_marked_crop()], [700.0], bg)
    with pytest.raises(sf.PlacementError):
        sf.make_frame(rng, [_marked_crop()] * 2, [300.0, 300.0], bg, tries=20)


def test_the_astronaut_fallback_needs_no_shared_data_and_has_mirrored_boxes() -> None:
    crops = sf.face_crops(None, 10)
    assert len(crops) == 2
    a, m = crops
    assert a.image.shape == m.image.shape == (200, 200, 3)
    assert a.face_box[0] == pytest.approx(1 - m.face_box[2]) and a.face_box[1] == m.face_box[1]


def test_backgrounds_are_640x480_bgr_and_random_views_vary() -> None:
    photos = sf.load_photos(["coffee", "brick"])
    assert [p.ndim for p in photos] == [3, 3]
    bgs = sf.load_backgrounds(["coffee", "brick"])
    assert all(b.shape == (480, 640, 3) and b.dtype == np.uint8 for b in bgs)
    rng = np.random.default_rng(3)
    views = [sf.random_background(rng, photos) for _ in range(4)]
    assert all(v.shape == (480, 640, 3) for v in views)
    assert len({hashlib.sha256(v.tobytes()).hexdigest() for v in views}) == 4


def test_the_split_rule_puts_a_file_in_test_when_its_sha256_bucket_is_85_or_more() -> None:
    buckets = {}
    for i in range(400):
        data = f"file {i}".encode()
        buckets[int(hashlib.sha256(data).hexdigest()[:8], 16) % 100] = data
    assert all(sf.is_test_split(d) == (b >= 85) for b, d in buckets.items())


def test_utkface_crops_come_only_from_the_test_split(utkface_dir: Path) -> None:
    crops = sf.utkface_test_crops(utkface_dir, 20, seed=0)
    assert len(crops) == 20 and len({c.source for c in crops}) == 20
    for c in crops:
        data = Path(c.source).read_bytes()
        assert sf.is_test_split(data) and int(hashlib.sha256(data).hexdigest()[:8], 16) % 100 >= 85
        assert c.image.shape == (200, 200, 3)
