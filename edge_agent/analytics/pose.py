"""Head pose (yaw, pitch, roll) from BlazeFace's 6 keypoints by PnP against a generic 3-D face.

The keypoints are fitted with cv2.solvePnP (SQPnP, a global solver) to an average adult face model. The virtual
camera is centred on the face itself, so the angles are *view-relative*: 0 deg yaw means the face points at the
camera (which sits at the screen), wherever the face is in the frame -- exactly what attention needs, and no
camera intrinsics are required. The focal length only sets how strong perspective is; it is chosen as if the
face were ~10 face widths away (typical for signage, and weak perspective beyond that changes little).

Conventions (records.Pose): yaw > 0 the subject turned to their left (nose towards image right), pitch > 0
looking up, roll > 0 the head tilted so the eye line runs down to the image right (clockwise on screen).
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from edge_agent.records import Pose

log = logging.getLogger(__name__)

# Generic adult face in millimetres, camera axes (x to image right, y down, z away from the camera) with the
# face looking at the camera and the nose tip at the origin. Order = records.KEYPOINT_NAMES.
# x/y: BlazeFace's own frontal layout -- the median of its keypoints on 327 adult UTKFace faces, in units of the
# eye distance (eyes +-0.5, nose 0.60 and mouth 1.10 below the eye line, "ear tragions" +-1.02 wide and 0.21
# below it) -- scaled by the average interpupillary distance of 63 mm. The detector's ear points sit closer
# together than anatomical tragions (bitragion ~145 mm), so its layout is what must be matched.
# z (depth, not visible in a frontal view): anthropometric averages -- eyes 30 mm, mouth 15 mm and tragions
# 100 mm behind the nose tip.
FACE_MODEL_MM = np.array(
    [
        [-31.5, -37.6, 30.0],  # right eye (the subject's right = image left)
        [31.5, -37.6, 30.0],  # left eye
        [0.0, 0.0, 0.0],  # nose tip
        [0.0, 31.4, 15.0],  # mouth centre
        [-64.3, -24.1, 100.0],  # right ear tragion
        [64.3, -24.1, 100.0],  # left ear tragion
    ],
    dtype=np.float64,
)

_DISTANCE_IN_FACE_WIDTHS = 10.0
_MAX_RMS_ERROR = 0.15  # reprojection RMS as a fraction of the face width; above it the fit is rejected


def rotation_from_pose(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """3x3 rotation (model -> camera) for a pose in degrees, the inverse of pose_from_rotation."""
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(-a), 0, math.sin(-a)], [0, 1, 0], [-math.sin(-a), 0, math.cos(-a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(-b), -math.sin(-b)], [0, math.sin(-b), math.cos(-b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    rot: np.ndarray = ry @ rx @ rz
    return rot


def pose_from_rotation(rot: np.ndarray) -> Pose:
    """Yaw/pitch from where the nose points (-z of the model); roll from the eye line once those are undone.

    For rot = Ry(-yaw) Rx(-pitch) Rz(roll) the middle row is (cos p sin r, cos p cos r, -sin p), so roll is
    atan2(rot[1, 0], rot[1, 1]) without building the inverse rotation.
    """
    fx, fy, fz = -rot[0, 2], -rot[1, 2], -rot[2, 2]
    yaw = math.degrees(math.atan2(fx, -fz))
    pitch = math.degrees(math.atan2(-fy, math.hypot(fx, fz)))
    roll = math.degrees(math.atan2(rot[1, 0], rot[1, 1]))
    return Pose(yaw=yaw, pitch=pitch, roll=roll)


def project(
    points_mm: np.ndarray, rot: np.ndarray, tvec: np.ndarray, focal: float, centre: tuple[float, float]
) -> np.ndarray:
    """Pinhole projection of model points after rotation and translation (for tests and the evaluation)."""
    cam = points_mm @ rot.T + tvec.reshape(1, 3)
    return np.stack([focal * cam[:, 0] / cam[:, 2] + centre[0], focal * cam[:, 1] / cam[:, 2] + centre[1]], axis=1)


def estimate_pose(keypoints: np.ndarray) -> Pose | None:
    """Pose of one face from its (6, 2) keypoints in pixels; None when the points are unusable (logged at debug)."""
    pts = np.asarray(keypoints, dtype=np.float64)
    if pts.shape != (6, 2) or not np.isfinite(pts).all():
        return None
    # The keypoint spread, not the box: detector boxes differ in margin, the keypoints do not.
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    if span < 2.0:
        return None
    cx, cy = pts.sum(axis=0) / 6.0  # principal point on the face: angles are relative to the line of sight
    focal = _DISTANCE_IN_FACE_WIDTHS * span
    cam = np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])
    try:
        ok, rvec, tvec = cv2.solvePnP(FACE_MODEL_MM, pts, cam, None, flags=cv2.SOLVEPNP_SQPNP)
        if not ok or tvec[2, 0] <= 0:
            return None
        proj, _ = cv2.projectPoints(FACE_MODEL_MM, rvec, tvec, cam, None)
    except cv2.error as exc:
        log.debug("solvePnP failed: %s", exc)
        return None
    rms = math.sqrt(float(np.square(proj.reshape(6, 2) - pts).sum()) / 6.0)
    if rms > _MAX_RMS_ERROR * span:
        log.debug("pose fit rejected: reprojection rms %.1f px for a %.0f px face", rms, span)
        return None
    rot, _ = cv2.Rodrigues(rvec)
    return pose_from_rotation(rot)
