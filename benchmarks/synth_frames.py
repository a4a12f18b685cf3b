"""Synthetic 640x480 detection frames: real face crops pasted at known sizes and places onto real photographs.

Faces are held-out UTKFace test chips when ../shared/data/utkface is present (split rule of the model toolchain:
int(sha256(bytes)[:8], 16) % 100 >= 85 is test), else the public-domain astronaut photograph from scikit-image.
Backgrounds are face-free scikit-image photographs. Ground truth is the *face* box (BlazeFace convention, measured
on 200 px chips, see docs/detection.md), so "a 40 px face" means a 40 px wide face box, not a 40 px chip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_agent.records import Box

FRAME_W, FRAME_H = 640, 480
# Face-free scikit-image photographs (camera and astronaut contain faces; chelsea is a cat, a fair distractor).
BACKGROUND_NAMES = (
    "coffee", "rocket", "chelsea", "hubble_deep_field", "brick", "grass", "gravel",
    "immunohistochemistry", "coins", "clock", "moon", "retina", "text", "page",
)  # fmt: skip
# Face box inside a UTKFace 200x200 aligned chip as fractions (x1, y1, x2, y2): the mean BlazeFace box over
# 300 held-out chips pasted at 200 px on grey (benchmarks/detect_probe.py chip-box). The chips are tight: the
# face box is ~93% of the chip.
UTKFACE_FACE_BOX = (0.036, 0.058, 0.963, 0.985)
# The astronaut's face in skimage.data.astronaut() (512x512), BlazeFace box at full resolution, and the square
# crop around it that the generator pastes.
ASTRONAUT_CROP = (125, 28, 325, 228)
ASTRONAUT_FACE = (178.0, 81.0, 272.0, 175.0)


@dataclass(frozen=True, slots=True)
class FaceCrop:
    """A face image (BGR uint8) and where its face box lies in it, as fractions (x1, y1, x2, y2)."""

    image: np.ndarray
    face_box: tuple[float, float, float, float] = UTKFACE_FACE_BOX
    source: str = ""  # file it came from, for tracing a miss back to its image


class PlacementError(ValueError):
    """The requested faces do not fit in the frame without overlapping."""


def is_test_split(data: bytes) -> bool:
    """The model toolchain's split rule: a file whose sha256 bucket is >= 85 is in the held-out test split."""
    return int(hashlib.sha256(data).hexdigest()[:8], 16) % 100 >= 85


def utkface_test_crops(utk_dir: Path, count: int, seed: int = 0) -> list[FaceCrop]:
    """Up to `count` held-out UTKFace chips (test split only), in a seeded random order."""
    files = sorted(utk_dir.glob("*.jpg"))
    np.random.default_rng(seed).shuffle(files)
    out: list[FaceCrop] = []
    for path in files:
        data = path.read_bytes()
        if not is_test_split(data):
            continue
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None or image.shape[:2] != (200, 200):
            continue
        out.append(FaceCrop(image, source=str(path)))
        if len(out) >= count:
            break
    return out


def astronaut_crop() -> FaceCrop:
    """The astronaut's face, cropped square from the scikit-image photograph, with its face box."""
    from skimage import data

    x0, y0, x1, y1 = ASTRONAUT_CROP
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[y0:y1, x0:x1].copy()
    w, h = x1 - x0, y1 - y0
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
    return FaceCrop(img, ((fx1 - x0) / w, (fy1 - y0) / h, (fx2 - x0) / w, (fy2 - y0) / h), "skimage.data.astronaut")


def face_crops(utk_dir: Path | None, count: int, seed: int = 0) -> list[FaceCrop]:
    """UTKFace test chips if the directory exists and has some, else the astronaut crop (and its mirror)."""
    if utk_dir is not None and utk_dir.is_dir():
        crops = utkface_test_crops(utk_dir, count, seed)
        if crops:
            return crops
    a = astronaut_crop()
    x1, y1, x2, y2 = a.face_box
    return [a, FaceCrop(a.image[:, ::-1].copy(), (1.0 - x2, y1, 1.0 - x1, y2), a.source + " (mirrored)")]


def _to_bgr(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8) if img.dtype.kind == "f" else img.astype(np.uint8) * 255
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)


def _crop_to_frame(img: np.ndarray, zoom: float = 1.0, fx: float = 0.5, fy: float = 0.5) -> np.ndarray:
    """Cover-resize to 640x480 times zoom (>= 1), then crop at relative position (fx, fy) in [0, 1]."""
    h, w = img.shape[:2]
    s = max(FRAME_W / w, FRAME_H / h) * zoom
    img = cv2.resize(img, (max(FRAME_W, round(w * s)), max(FRAME_H, round(h * s))), interpolation=cv2.INTER_AREA)
    y0 = round((img.shape[0] - FRAME_H) * fy)
    x0 = round((img.shape[1] - FRAME_W) * fx)
    return np.ascontiguousarray(img[y0 : y0 + FRAME_H, x0 : x0 + FRAME_W])


def load_photos(names: Sequence[str] = BACKGROUND_NAMES) -> list[np.ndarray]:
    """The named scikit-image photographs, BGR uint8, at their own sizes."""
    from skimage import data

    return [_to_bgr(getattr(data, name)()) for name in names]


def load_backgrounds(names: Sequence[str] = BACKGROUND_NAMES) -> list[np.ndarray]:
    """The named scikit-image photographs as 640x480 BGR frames (cover-resized and centre-cropped)."""
    return [_crop_to_frame(p) for p in load_photos(names)]


def random_background(rng: np.random.Generator, photos: Sequence[np.ndarray]) -> np.ndarray:
    """A 640x480 view of a random photograph: random zoom 1-2x over cover size, random crop, random mirror."""
    photo = photos[int(rng.integers(len(photos)))]
    frame = _crop_to_frame(photo, float(rng.uniform(1.0, 2.0)), float(rng.random()), float(rng.random()))
    return np.ascontiguousarray(frame[:, ::-1]) if rng.random() < 0.5 else frame


def _feather(h: int, w: int) -> np.ndarray:
    """Alpha (h, w, 1): 1 inside, ramping to 0 over the outer 4% so no hard chip edge is pasted."""

    def ramp(n: int) -> np.ndarray:
        edge = max(1.0, 0.04 * n)
        i = np.arange(n, dtype=np.float32) + 0.5
        return np.clip(np.minimum(i, n - i) / edge, 0.0, 1.0)

    return (ramp(h)[:, None] * ramp(w)[None, :])[..., None]


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def make_frame(
    rng: np.random.Generator,
    faces: Sequence[FaceCrop | np.ndarray],
    widths: Sequence[float],
    background: np.ndarray,
    tries: int = 200,
) -> tuple[np.ndarray, list[Box]]:
    """Paste each face so its face box is `widths[i]` px wide at a random free place; returns (frame, face boxes).

    Face boxes lie wholly inside the frame; chips may be cut at the border. No two pasted chips overlap.
    Raises PlacementError if the faces cannot be placed in `tries` attempts each.
    """
    if len(faces) != len(widths):
        raise ValueError("one width per face")
    frame = background.copy()
    occupied: list[tuple[int, int, int, int]] = []
    boxes: list[Box] = []
    for face, width in zip(faces, widths, strict=True):
        crop = face if isinstance(face, FaceCrop) else FaceCrop(face)
        boxes.append(_paste(rng, frame, crop, float(width), occupied, tries))
    return frame, boxes


def _paste(
    rng: np.random.Generator, frame: np.ndarray, crop: FaceCrop, width: float, occupied: list, tries: int
) -> Box:
    ch, cw = crop.image.shape[:2]
    fx1, fy1, fx2, fy2 = crop.face_box
    scale = width / ((fx2 - fx1) * cw)
    pw, ph = max(1, round(cw * scale)), max(1, round(ch * scale))
    sx, sy = pw / cw, ph / ch  # the scale actually applied after rounding
    face_w, face_h = (fx2 - fx1) * cw * sx, (fy2 - fy1) * ch * sy
    if face_w > FRAME_W or face_h > FRAME_H:
        raise PlacementError(f"a {width:.0f} px face does not fit in {FRAME_W}x{FRAME_H}")
    for _ in range(tries):
        # Integer chip origin so the pasted pixels are exactly where the box says.
        fx = rng.uniform(0, FRAME_W - face_w)
        fy = rng.uniform(0, FRAME_H - face_h)
        ox, oy = round(fx - fx1 * cw * sx), round(fy - fy1 * ch * sy)
        rect = (max(ox, 0), max(oy, 0), min(ox + pw, FRAME_W), min(oy + ph, FRAME_H))
        if not any(_overlaps(rect, r) for r in occupied):
            break
    else:
        raise PlacementError(f"no free place for a {width:.0f} px face after {tries} tries")
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    chip = cv2.resize(crop.image, (pw, ph), interpolation=interp).astype(np.float32)
    alpha = _feather(ph, pw)
    cx0, cy0 = rect[0] - ox, rect[1] - oy
    cx1, cy1 = cx0 + rect[2] - rect[0], cy0 + rect[3] - rect[1]
    dst = frame[rect[1] : rect[3], rect[0] : rect[2]].astype(np.float32)
    a = alpha[cy0:cy1, cx0:cx1]
    frame[rect[1] : rect[3], rect[0] : rect[2]] = np.clip(chip[cy0:cy1, cx0:cx1] * a + dst * (1 - a), 0, 255).astype(
        np.uint8
    )
    occupied.append(rect)
    return Box(ox + fx1 * cw * sx, oy + fy1 * ch * sy, ox + fx2 * cw * sx, oy + fy2 * ch * sy)
