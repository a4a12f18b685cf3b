"""Frame normalisation and rate-limited logs.

Any decoded array becomes BGR uint8 HxWx3 within size limits, or a skip reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class Normalized:
    """Result of normalize_frame: the usable image, or None with the reason it was skipped.

    `fixes` says what changed.
    """

    image: np.ndarray | None
    skip: str | None = None
    fixes: tuple[str, ...] = ()


def _to_uint8(img: np.ndarray) -> np.ndarray | None:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:  # 16-bit PNG/TIFF or depth-like cameras: keep the high byte
        return (img >> 8).astype(np.uint8)
    if img.dtype in (np.float32, np.float64):
        finite = np.nan_to_num(img, nan=0.0, posinf=0.0, neginf=0.0)
        # Floats from image libraries are 0..1; anything larger is taken as already 0..255.
        scale = 255.0 if finite.size and float(finite.max()) <= 1.0 else 1.0
        out: np.ndarray = np.clip(finite * scale, 0, 255).astype(np.uint8)
        return out
    return None


def _to_bgr(img: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), "grey"
    if img.ndim != 3:
        return None, None
    channels = img.shape[2]
    if channels == 3:
        return img, None
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR), "grey"
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR), "bgra"
    return None, None


def normalize_frame(img: object, max_side: int = 1920, min_side: int = 32) -> Normalized:
    """Make `img` a C-contiguous BGR uint8 HxWx3 no larger than `max_side`, or say why it must be skipped.

    Grey (HxW or HxWx1) and BGRA inputs are converted, 16-bit and float inputs are scaled to 8 bits, and frames
    whose longer side exceeds `max_side` are downscaled with area averaging. Frames smaller than `min_side` on
    either side, empty arrays and unknown layouts are skipped.
    """
    if not isinstance(img, np.ndarray) or img.size == 0:
        return Normalized(None, "empty")
    if img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        return Normalized(None, "bad_shape")
    if min(img.shape[:2]) < min_side:
        return Normalized(None, "too_small")
    if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
        return Normalized(None, "bad_channels")
    u8 = _to_uint8(img)
    if u8 is None:
        return Normalized(None, "bad_dtype")
    fixes: list[str] = [] if u8 is img else ["depth"]
    h, w = u8.shape[:2]
    if max(h, w) > max_side:
        # Downscale before any colour conversion: a 10000x10000 grey image must not become a 300 MB BGR copy first.
        s = max_side / float(max(h, w))
        if min(h, w) * s < min_side:
            return Normalized(None, "too_small")
        size = (max(1, round(w * s)), max(1, round(h * s)))
        resized = cv2.resize(u8, size, interpolation=cv2.INTER_AREA)
        u8 = resized if resized.ndim == u8.ndim else resized[:, :, None]  # cv2 drops a trailing 1-channel axis
        fixes.append("downscaled")
    bgr, fix = _to_bgr(u8)
    if bgr is None:
        return Normalized(None, "bad_channels")
    if fix:
        fixes.append(fix)
    if not bgr.flags.c_contiguous:
        bgr = np.ascontiguousarray(bgr)
    return Normalized(bgr, None, tuple(fixes))
