"""Face crop and model-input preprocessing, driven entirely by the model's metadata (margin, size, colour, norm)."""

from __future__ import annotations

import cv2
import numpy as np

from edge_agent.modelmeta import CropSpec, Preprocess
from edge_agent.records import Box


def crop_box(box: Box, spec: CropSpec) -> Box:
    """The square region the model was trained on: detector box centre, side = max(w, h) * (1 + 2 * margin)."""
    if spec.square:
        return box.expand_square(spec.margin)
    dx, dy = box.width * spec.margin, box.height * spec.margin
    return Box(box.x1 - dx, box.y1 - dy, box.x2 + dx, box.y2 + dy)


def crop_face(image_bgr: np.ndarray, box: Box, spec: CropSpec, size: int) -> np.ndarray:
    """Cut `crop_box(box)` out of the frame (edge pixels replicated where it leaves the frame), resize to size×size."""
    region = crop_box(box, spec)
    x1, y1 = int(np.floor(region.x1)), int(np.floor(region.y1))
    x2, y2 = int(np.ceil(region.x2)), int(np.ceil(region.y2))
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    h, w = image_bgr.shape[:2]
    pad_l, pad_t = max(0, -x1), max(0, -y1)
    pad_r, pad_b = max(0, x2 - w), max(0, y2 - h)
    patch = image_bgr[max(0, y1) : min(h, y2), max(0, x1) : min(w, x2)]
    if patch.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    if pad_l or pad_t or pad_r or pad_b:
        patch = cv2.copyMakeBorder(patch, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    # Area averaging when shrinking matches how the training crops were made; bilinear when enlarging far faces.
    interp = cv2.INTER_AREA if patch.shape[0] >= size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def to_input(crop_bgr: np.ndarray, pre: Preprocess) -> np.ndarray:
    """uint8 BGR crop → float32 model input: colour order and (pixel - mean) / std from the metadata."""
    img = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB) if pre.color == "RGB" else crop_bgr
    return (img.astype(np.float32) - pre.mean) / pre.std
