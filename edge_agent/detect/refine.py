"""Geometry for the second look at small faces: the square crop around a box and picking the re-detected face."""

from __future__ import annotations

import numpy as np

from edge_agent.detect.postprocess import Candidates, iou_one_to_many


def refine_region(box: np.ndarray, context: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Square region (x0, y0, w, h) of side context * max(box w, h) centred on the box, shifted to fit the frame.

    Shifting (not clipping) keeps the crop square, so the letterbox has no padding and the face keeps its
    full upscale; only a frame smaller than the square clips it.
    """
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    side = max(1.0, context * float(max(box[2] - box[0], box[3] - box[1])))
    sw, sh = min(side, float(width)), min(side, float(height))
    x0 = min(max(cx - sw / 2.0, 0.0), width - sw)
    y0 = min(max(cy - sh / 2.0, 0.0), height - sh)
    ix0, iy0 = round(x0), round(y0)
    return ix0, iy0, max(1, min(width - ix0, round(sw))), max(1, min(height - iy0, round(sh)))


def best_overlap(found: Candidates, box: np.ndarray, iou_min: float) -> int:
    """Index of the highest-scoring candidate overlapping `box` by IoU >= iou_min, or -1."""
    if len(found) == 0:
        return -1
    ious = iou_one_to_many(np.asarray(box, np.float32), found.boxes)
    ok = np.flatnonzero(ious >= iou_min)
    if ok.size == 0:
        return -1
    return int(ok[np.argmax(found.scores[ok])])
