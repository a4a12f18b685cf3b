"""Synthetic faces with known geometry: keypoints of the generic 3-D face at a given pose, for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from edge_agent.analytics.pose import FACE_MODEL_MM, estimate_pose, project, rotation_from_pose
from edge_agent.records import Attributes, Box, Detection, Face, HeadResult

_HEAD_WIDTH_MM = 160.0  # the face box of a frontal face spans about this much of the model


def face_keypoints(
    yaw: float,
    pitch: float = 0.0,
    roll: float = 0.0,
    centre: tuple[float, float] = (320.0, 240.0),
    width_px: float = 120.0,
    model: np.ndarray = FACE_MODEL_MM,
    distance_widths: float = 12.0,
) -> np.ndarray:
    """(6, 2) float32 keypoints of `model` at the pose, seen by a camera looking straight at the face."""
    focal = width_px * distance_widths
    tvec = np.array([0.0, 0.0, distance_widths * _HEAD_WIDTH_MM])
    kp = project(model, rotation_from_pose(yaw, pitch, roll), tvec, focal, centre)
    return kp.astype(np.float32)


def head(labels: tuple[str, ...], top: int, p: float) -> HeadResult:
    """A HeadResult with probability `p` on label index `top` and the rest spread evenly."""
    rest = (1.0 - p) / max(1, len(labels) - 1)
    return HeadResult(labels=labels, probs=tuple(p if i == top else rest for i in range(len(labels))))


def make_face(
    cx: float,
    cy: float = 240.0,
    width: float = 120.0,
    yaw: float = 0.0,
    pitch: float = 0.0,
    attributes: Attributes | None = None,
    score: float = 0.9,
) -> Face:
    """A Face whose box and keypoints agree with the requested centre, size and pose (estimated from the keypoints,
    once, as the camera loop does)."""
    box = Box(cx - width / 2, cy - width * 0.6, cx + width / 2, cy + width * 0.6)
    kp = face_keypoints(yaw, pitch, centre=(cx, cy), width_px=width)
    return Face(
        detection=Detection(box=box, score=score, keypoints=kp),
        attributes=attributes,
        pose=estimate_pose(kp),
        face_px=width,
    )
