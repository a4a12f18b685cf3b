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


def render(image_bgr: np.ndarray, lb: Letterbox, out: np.ndarray) -> None:
    """Write the letterboxed region into `out` (in_h, in_w, 3) float32 as RGB in [-1, 1]; padding is -1 (black)."""
    crop = image_bgr[lb.y0 : lb.y0 + lb.src_h, lb.x0 : lb.x0 + lb.src_w]
    # INTER_AREA averages when shrinking (no aliasing on small faces); it is bilinear when enlarging.
    interp = cv2.INTER_AREA if lb.new_w < lb.src_w else cv2.INTER_LINEAR
    resized = cv2.resize(crop, (lb.new_w, lb.new_h), interpolation=interp)
    rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    out.fill(-1.0)
    view = out[lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w]
    np.multiply(rgb, np.float32(1.0 / 127.5), out=view, casting="unsafe")
    view -= 1.0
