"""Letterboxing a frame region into a model input (aspect kept, centred, zero padding) and mapping points back.

Coordinates are continuous pixel edges: pixel i covers [i, i+1). cv2.resize maps pixel centres as
(x + 0.5) * s - 0.5, which is exactly x * s on edges, so x_frame = (x_input - pad) / s + region offset with the
scale measured from the integer resized size (not the requested ratio) maps boxes back with no drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Geometry of one region -> input mapping. Region (x0, y0, w, h) in frame pixels; input (in_w, in_h)."""

    x0: int
    y0: int
    src_w: int
    src_h: int
    in_w: int
    in_h: int
    new_w: int
    new_h: int
    pad_x: int
    pad_y: int

    @property
    def scale_x(self) -> float:
        return self.new_w / self.src_w

    @property
    def scale_y(self) -> float:
        return self.new_h / self.src_h

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Input-pixel points (..., 2) -> frame-pixel points."""
        xy = np.asarray(xy, dtype=np.float32)
        out = np.empty_like(xy)
        out[..., 0] = (xy[..., 0] - self.pad_x) / self.scale_x + self.x0
        out[..., 1] = (xy[..., 1] - self.pad_y) / self.scale_y + self.y0
        return out

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """Frame-pixel points (..., 2) -> input-pixel points (inverse of to_frame)."""
        xy = np.asarray(xy, dtype=np.float32)
        out = np.empty_like(xy)
        out[..., 0] = (xy[..., 0] - self.x0) * self.scale_x + self.pad_x
        out[..., 1] = (xy[..., 1] - self.y0) * self.scale_y + self.pad_y
        return out


def fit(region: tuple[int, int, int, int], in_w: int, in_h: int) -> Letterbox:
    """Largest aspect-preserving fit of region (x0, y0, w, h) into in_w x in_h, centred."""
    x0, y0, w, h = (int(v) for v in region)
    if w <= 0 or h <= 0:
        raise ValueError(f"empty region {region}")
    s = min(in_w / w, in_h / h)
    new_w = min(in_w, max(1, round(w * s)))
    new_h = min(in_h, max(1, round(h * s)))
    return Letterbox(x0, y0, w, h, in_w, in_h, new_w, new_h, (in_w - new_w) // 2, (in_h - new_h) // 2)


def shrink(image: np.ndarray, new_w: int, new_h: int) -> np.ndarray:
    """Resize to (new_w, new_h): an integer-factor box average while the shrink is >= 2x, then bilinear.

    Antialiased like INTER_AREA (small faces keep their contrast) at a sixth of its cost for non-integer ratios
    (0.25 ms instead of 1.6 ms for 640x480 -> 224x168). An integer box average maps pixel edges exactly
    (unlike pyrDown, which shifts by half a pixel), so boxes still map back with no drift.
    """
    h, w = image.shape[:2]
    for k in range(min(w // new_w, h // new_h), 1, -1):
        if w % k == 0 and h % k == 0:
            image = cv2.resize(image, (w // k, h // k), interpolation=cv2.INTER_AREA)
            break
    if image.shape[1] == new_w and image.shape[0] == new_h:
        return image
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)


def render(image_bgr: np.ndarray, lb: Letterbox, out: np.ndarray) -> None:
    """Write the letterboxed region into `out` (in_h, in_w, 3) float32 as RGB in [-1, 1]; padding is -1 (black)."""
    crop = image_bgr[lb.y0 : lb.y0 + lb.src_h, lb.x0 : lb.x0 + lb.src_w]
    rgb = cv2.cvtColor(shrink(crop, lb.new_w, lb.new_h), cv2.COLOR_BGR2RGB)
    out.fill(-1.0)
    view = out[lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w]
    np.multiply(rgb, np.float32(1.0 / 127.5), out=view, casting="unsafe")
    view -= 1.0
