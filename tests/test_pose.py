"""Head pose from 6 keypoints: known rotations of a 3-D face are recovered within tolerance; signs as records.Pose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.analytics.pose import FACE_MODEL_MM, estimate_pose, pose_from_rotation, project, rotation_from_pose
from edge_agent.analytics.synthetic import face_keypoints


@pytest.mark.parametrize("yaw", [-60, -40, -25, -10, 0, 10, 25, 40, 60])
@pytest.mark.parametrize("pitch", [-25, 0, 25])
def test_known_rotations_of_the_generic_face_are_recovered_within_2_degrees(yaw: float, pitch: float) -> None:
    pose = estimate_pose(face_keypoints(yaw, pitch, roll=8.0))
    assert pose is not None
    assert pose.yaw == pytest.approx(yaw, abs=2.0)
    assert pose.pitch == pytest.approx(pitch, abs=2.0)
    assert pose.roll == pytest.approx(8.0, abs=2.0)


def test_yaw_error_on_varied_faces_with_keypoint_noise_is_small() -> None:
    """Other people's faces (+-10 % per coordinate) and 1 % keypoint jitter: mean yaw error under 5 degrees."""
    rng = np.random.default_rng(7)
    errors = []
    for _ in range(200):
        yaw, pitch = rng.uniform(-45, 45), rng.uniform(-20, 20)
        model = FACE_MODEL_MM * (1.0 + rng.normal(0.0, 0.10, FACE_MODEL_MM.shape))
        kp = face_keypoints(yaw, pitch, rng.uniform(-15, 15), width_px=120, model=model)
        pose = estimate_pose(kp + rng.normal(0.0, 1.2, kp.shape))
        assert pose is not None
        errors.append(abs(pose.yaw - yaw))
    assert float(np.mean(errors)) < 5.0
    assert float(np.percentile(errors, 90)) < 10.0


def test_sign_conventions_match_the_pose_record() -> None:
    left = face_keypoints(30.0)  # subject turned to their left
    assert left[2, 0] > left[:2, 0].mean()  # the nose moves to image right ...
    assert estimate_pose(left).yaw > 20  # ... and that is positive yaw
    up, ahead = face_keypoints(0.0, 20.0), face_keypoints(0.0, 0.0)
    # looking up moves the nose up in the image, towards the eye line
    assert up[2, 1] - up[:2, 1].mean() < ahead[2, 1] - ahead[:2, 1].mean()
    assert estimate_pose(up).pitch > 15
    tilted = face_keypoints(0.0, 0.0, 15.0)
    assert tilted[1, 1] > tilted[0, 1]  # positive roll: the image-right eye is lower
    assert estimate_pose(tilted).roll > 10


def test_a_face_off_to_the_side_that_looks_at_the_camera_counts_as_frontal() -> None:
    """Angles are relative to the line of sight, so a person at the edge of the view looking at the screen is 0."""
    tvec = np.array([600.0, -200.0, 1500.0])
    towards_camera = -tvec / np.linalg.norm(tvec)
    # the model's forward axis is -z; rotate it onto the direction to the camera
    yaw = np.degrees(np.arctan2(towards_camera[0], -towards_camera[2]))
    pitch = np.degrees(np.arctan2(-towards_camera[1], np.hypot(towards_camera[0], towards_camera[2])))
    kp = project(FACE_MODEL_MM, rotation_from_pose(yaw, pitch), tvec, 800.0, (640.0, 360.0))
    pose = estimate_pose(kp)
    assert abs(pose.yaw) < 3.0 and abs(pose.pitch) < 3.0
    straight = estimate_pose(project(FACE_MODEL_MM, np.eye(3), tvec, 800.0, (640.0, 360.0)))
    # facing straight ahead from the image right, the camera is on the subject's right: turned ~22 deg to their left
    assert straight.yaw == pytest.approx(np.degrees(np.arctan2(600, 1500)), abs=3.0)


def test_rotation_round_trip() -> None:
    for yaw, pitch, roll in [(0, 0, 0), (35, -20, 10), (-70, 40, -30)]:
        p = pose_from_rotation(rotation_from_pose(yaw, pitch, roll))
        assert (p.yaw, p.pitch, p.roll) == pytest.approx((yaw, pitch, roll), abs=1e-6)


@pytest.mark.parametrize(
    "kp",
    [
        np.full((6, 2), np.nan),
        np.zeros((6, 2)),  # all on one pixel
        np.zeros((5, 2)),  # wrong shape
        np.array([[0, 0], [100, 0], [0, 100], [100, 100], [50, 300], [-200, 50]], float),  # not a face
    ],
)
def test_unusable_keypoints_give_none_not_an_exception(kp: np.ndarray) -> None:
    assert estimate_pose(kp) is None


def _detector():
    from edge_agent import models_store
    from edge_agent.detect.base import create_detector
    from edge_agent.detect.config import DetectorConfig

    cache = Path.home() / ".cache" / "edge-agent-test-models"
    try:
        models_store.pull(cache)
    except models_store.ModelStoreError as exc:  # no network: the one reason to skip; anything else is a failure
        pytest.skip(f"BlazeFace models unavailable: {exc}")
    return create_detector(DetectorConfig(models_dir=cache))


def test_real_face_photo_is_near_frontal_and_rotating_it_in_plane_changes_only_roll() -> None:
    cv2 = pytest.importorskip("cv2")
    skdata = pytest.importorskip("skimage.data")
    det = _detector()
    image = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    (face,) = det.detect(image)[:1]
    base = estimate_pose(face.keypoints)
    assert base is not None and abs(base.yaw) < 12 and abs(base.pitch) < 15
    cx, cy = face.box.center
    for angle in (-20, 20):
        # cv2 angle > 0 is counter-clockwise on screen, i.e. negative roll in our convention
        rot = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        turned = cv2.warpAffine(image, rot, (image.shape[1], image.shape[0]))
        faces = det.detect(turned)
        assert faces, "face lost after an in-plane rotation"
        pose = estimate_pose(faces[0].keypoints)
        assert pose.roll - base.roll == pytest.approx(-angle, abs=6.0)
        assert abs(pose.yaw - base.yaw) < 8.0
    det.close()


def test_real_face_turned_by_a_known_yaw_is_estimated_in_the_right_direction_and_size() -> None:
    """The astronaut's photo mapped onto a 3-D head and turned +-20 deg (benchmarks/pose_eval.py's renderer)."""
    cv2 = pytest.importorskip("cv2")
    skdata = pytest.importorskip("skimage.data")
    from benchmarks.pose_eval import best_face, render_yaw

    det = _detector()
    image = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 110:340]
    kp0 = best_face(det, image)
    base = estimate_pose(kp0)
    for yaw in (-20.0, 20.0):
        kp = best_face(det, render_yaw(image, kp0, yaw))
        assert kp is not None, f"no face after turning by {yaw}"
        change = estimate_pose(kp).yaw - base.yaw
        assert change == pytest.approx(yaw, abs=8.0)
    det.close()
