"""Unit-level checks of head pose: exact geometry of the synthetic faces, projection and rotation against OpenCV,
exact round trips through estimate_pose, and every rejection (size, shape, solver, depth, fit) at its boundary."""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import pytest

from edge_agent.analytics import pose as pose_module
from edge_agent.analytics.pose import FACE_MODEL_MM, estimate_pose, project, rotation_from_pose
from edge_agent.analytics.synthetic import face_keypoints
from edge_agent.records import Pose

LOGGER = "edge_agent.analytics.pose"
OFF_CENTRE = (900.0, 130.0)  # far from the middle of a 1280x720 frame, near its top right


def camera(focal: float, centre: tuple[float, float]) -> np.ndarray:
    return np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]], [0.0, 0.0, 1.0]])


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Ry(-yaw) Rx(-pitch) Rz(roll) built from OpenCV's axis-angle rotations (independent of rotation_from_pose)."""
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry, _ = cv2.Rodrigues(np.array([0.0, -a, 0.0]))
    rx, _ = cv2.Rodrigues(np.array([-b, 0.0, 0.0]))
    rz, _ = cv2.Rodrigues(np.array([0.0, 0.0, c]))
    rot: np.ndarray = ry @ rx @ rz
    return rot


def opencv_projection(rot: np.ndarray, tvec: np.ndarray, focal: float, centre: tuple[float, float]) -> np.ndarray:
    rvec, _ = cv2.Rodrigues(rot)
    points, _ = cv2.projectPoints(FACE_MODEL_MM, rvec, np.asarray(tvec, float), camera(focal, centre), None)
    return points.reshape(-1, 2)


def as_estimate_pose_sees_it(
    yaw: float, pitch: float, roll: float, centre: tuple[float, float] = OFF_CENTRE, span: float = 120.0
) -> np.ndarray:
    """(6, 2) keypoints of the generic face at the pose through exactly the camera estimate_pose assumes: principal
    point on the keypoint centroid, focal length 10 keypoint spans. The face is placed (by fixed-point iteration on
    its translation) so that its normalised image has zero mean and a spread of 0.1; any focal then fits."""
    rot = rotation(yaw, pitch, roll)
    tvec = np.array([0.0, 0.0, 1300.0])
    for _ in range(100):
        cam = FACE_MODEL_MM @ rot.T + tvec
        normalised = cam[:, :2] / cam[:, 2:]
        tvec[2] *= float(np.max(normalised.max(axis=0) - normalised.min(axis=0))) / 0.1
        tvec[:2] -= normalised.mean(axis=0) * tvec[2]
    kp = opencv_projection(rot, tvec, 10.0 * span, centre)
    assert kp.mean(axis=0) == pytest.approx(centre, abs=1e-9)
    assert float(np.max(kp.max(axis=0) - kp.min(axis=0))) == pytest.approx(span, rel=1e-12)
    return kp


def with_span(kp: np.ndarray, span: float, axis: int) -> np.ndarray:
    """kp with its extreme point along `axis` moved to `span` from the other one (exactly, for 2 or 128 px)."""
    out = np.array(kp, dtype=np.float64)
    lo, hi = int(np.argmin(out[:, axis])), int(np.argmax(out[:, axis]))
    out[hi, axis] = out[lo, axis] + span
    return out


def angles(p: Pose | None) -> tuple[float, float, float]:
    assert p is not None
    return (p.yaw, p.pitch, p.roll)


# --- synthetic.face_keypoints ---------------------------------------------------------------------------------------


def test_default_face_is_frontal_level_and_centred_at_320_240() -> None:
    kp = face_keypoints(0.0)
    assert kp.shape == (6, 2) and kp.dtype == np.float32
    np.testing.assert_array_equal(kp, face_keypoints(0.0, 0.0, 0.0))  # pitch and roll default to 0
    assert tuple(kp[2]) == (320.0, 240.0)  # the nose tip, the model origin, is on the centre
    assert kp[0, 1] == kp[1, 1] and kp[4, 1] == kp[5, 1]  # eyes and ears level
    assert kp[0, 0] + kp[1, 0] == 640.0 and kp[4, 0] + kp[5, 0] == 640.0  # mirror-symmetric about x = 320
    assert kp[3, 0] == 320.0 and kp[3, 1] > 240.0 > kp[0, 1]  # mouth below the nose, eyes above


def test_default_face_is_120_px_wide_at_the_nose_plane_seen_from_12_face_widths() -> None:
    head = np.array([[-80.0, 0.0, 0.0], [80.0, 0.0, 0.0], [0.0, 0.0, 1920.0], [80.0, 40.0, 1920.0]])
    kp = face_keypoints(0.0, model=head)
    # 160 mm across at the nose: 120 px; at 12 head widths (1920 mm) further back, half that scale
    np.testing.assert_allclose(kp, [[260.0, 240.0], [380.0, 240.0], [320.0, 240.0], [350.0, 255.0]], atol=1e-4)


def test_default_face_matches_opencv_projection_of_the_model_on_the_optical_axis() -> None:
    expected = opencv_projection(np.eye(3), np.array([0.0, 0.0, 12 * 160.0]), 120.0 * 12, (320.0, 240.0))
    np.testing.assert_allclose(face_keypoints(0.0), expected, atol=1e-4)


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0.0, 20.0, 0.0), (35.0, -15.0, 10.0), (-50.0, 5.0, -25.0)])
def test_face_keypoints_match_opencv_projection_off_centre_at_any_size_and_distance(
    yaw: float, pitch: float, roll: float
) -> None:
    kp = face_keypoints(yaw, pitch, roll, centre=OFF_CENTRE, width_px=64.0, distance_widths=5.0)
    expected = opencv_projection(rotation(yaw, pitch, roll), np.array([0.0, 0.0, 5 * 160.0]), 64.0 * 5, OFF_CENTRE)
    np.testing.assert_allclose(kp, expected, atol=1e-4)


# --- pose.rotation_from_pose and pose.project --------------------------------------------------------------------


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (30, 0, 0), (0, -25, 0), (0, 0, 40), (35, -20, 10)])
def test_rotation_from_pose_is_ry_rx_rz_as_opencv_builds_them(yaw: float, pitch: float, roll: float) -> None:
    rot = rotation_from_pose(yaw, pitch, roll)
    np.testing.assert_allclose(rot, rotation(yaw, pitch, roll), atol=1e-12)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0, abs=1e-12)


def test_rotation_from_pose_roll_defaults_to_zero() -> None:
    np.testing.assert_array_equal(rotation_from_pose(25.0, -10.0), rotation_from_pose(25.0, -10.0, 0.0))
    np.testing.assert_array_equal(rotation_from_pose(0.0, 0.0), np.eye(3))


@pytest.mark.parametrize("tvec", [np.array([150.0, -90.0, 1400.0]), np.array([[150.0], [-90.0], [1400.0]])])
def test_project_matches_opencv_with_an_off_centre_principal_point(tvec: np.ndarray) -> None:
    rot = rotation_from_pose(30.0, -12.0, 7.0)
    centre = (1500.25, 90.5)  # a non-square frame's off-centre principal point: x and y differ
    got = project(FACE_MODEL_MM, rot, tvec, 900.0, centre)
    np.testing.assert_allclose(got, opencv_projection(rotation(30.0, -12.0, 7.0), tvec, 900.0, centre), atol=1e-6)


# --- pose.estimate_pose: exact round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll"), [(0, 0, 0), (20, -10, 5), (40, 25, -15), (-60, 0, 8), (-15, -30, -40), (0, 0, 90)]
)
@pytest.mark.parametrize("span", [120.0, 37.5])
def test_a_face_seen_through_the_assumed_camera_is_recovered_exactly(
    yaw: float, pitch: float, roll: float, span: float
) -> None:
    kp = as_estimate_pose_sees_it(yaw, pitch, roll, span=span)
    assert angles(estimate_pose(kp)) == pytest.approx((yaw, pitch, roll), abs=1e-6)


def test_where_the_face_is_in_the_frame_does_not_change_its_pose() -> None:
    for centre in ((60.0, 700.0), (640.0, 360.0), OFF_CENTRE):
        kp = as_estimate_pose_sees_it(25.0, 10.0, -5.0, centre)
        assert angles(estimate_pose(kp)) == pytest.approx((25.0, 10.0, -5.0), abs=1e-6)


def test_keypoint_dtype_does_not_change_the_result() -> None:
    kp32 = face_keypoints(20.0, -10.0, 5.0, centre=OFF_CENTRE)
    assert estimate_pose(kp32) == estimate_pose(kp32.astype(np.float64))
    whole = np.rint(as_estimate_pose_sees_it(20.0, -10.0, 5.0)).astype(np.int64)  # integer pixels, as from a UI
    expected = estimate_pose(whole.astype(np.float64))
    assert expected is not None
    assert estimate_pose(whole) == expected
    assert estimate_pose(whole.tolist()) == expected  # a plain list of lists of ints


def test_the_depth_check_is_a_sign_test_so_the_model_units_do_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    """In 1e-4 units the face sits ~0.13 units from the camera: still in front, and the same pose."""
    kp = as_estimate_pose_sees_it(30.0, -20.0, 10.0)
    monkeypatch.setattr(pose_module, "FACE_MODEL_MM", FACE_MODEL_MM * 1e-4)
    assert angles(estimate_pose(kp)) == pytest.approx((30.0, -20.0, 10.0), abs=1e-6)


# --- pose.estimate_pose: rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize(("pose", "axis"), [((20.0, -10.0, 5.0), 0), ((0.0, 0.0, 90.0), 1)])
def test_a_keypoint_spread_of_exactly_2_px_is_fitted_and_anything_less_is_not(
    pose: tuple[float, float, float], axis: int
) -> None:
    """The larger of the x and y extents counts (the face on its side is taller than wide), wherever the face is."""
    kp = as_estimate_pose_sees_it(*pose, span=2.0)
    at_limit = with_span(kp, 2.0, axis)
    assert float(np.max(at_limit.max(axis=0) - at_limit.min(axis=0))) == 2.0
    assert angles(estimate_pose(at_limit)) == pytest.approx(pose, abs=1e-3)
    assert estimate_pose(with_span(kp, 2.0 - 1e-9, axis)) is None
    assert estimate_pose(with_span(kp, 1.5, axis)) is None


@pytest.mark.parametrize(
    "shape",
    [(5, 2), (7, 2), (6, 3), (2, 6), (12,), (1, 6, 2), (6, 2, 1), (3, 2, 2)],
)
def test_keypoints_of_any_other_shape_give_none(shape: tuple[int, ...]) -> None:
    kp = as_estimate_pose_sees_it(10.0, 5.0, 0.0)
    values = np.resize(kp, shape)  # finite, face-sized coordinates in the wrong layout
    assert estimate_pose(values) is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", [(0, 0), (3, 1), (5, 0)])
def test_one_non_finite_coordinate_gives_none(
    bad: float, where: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    kp = as_estimate_pose_sees_it(10.0, 5.0, 0.0)
    kp[where] = bad
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert estimate_pose(kp) is None
    assert caplog.records == []  # refused up front, never handed to the solver


def test_a_solver_error_gives_none_and_is_logged_at_debug(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise cv2.error("no solution for these points")

    monkeypatch.setattr(cv2, "solvePnP", failing)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert estimate_pose(as_estimate_pose_sees_it(10.0, 5.0, 0.0)) is None
    [record] = caplog.records
    assert record.levelno == logging.DEBUG and record.name == LOGGER
    assert record.getMessage() == "solvePnP failed: no solution for these points"


def _solver_returning(monkeypatch: pytest.MonkeyPatch, ok: bool | None = None, depth: float | None = None) -> None:
    """cv2.solvePnP as it is, but with its success flag and/or the face's depth replaced."""
    real = cv2.solvePnP

    def solve(*args: object, **kwargs: object) -> tuple[bool, np.ndarray, np.ndarray]:
        real_ok, rvec, tvec = real(*args, **kwargs)
        tvec = tvec.copy()
        if depth is not None:
            tvec[2, 0] = depth
        return (real_ok if ok is None else ok), rvec, tvec

    monkeypatch.setattr(cv2, "solvePnP", solve)


def test_the_real_solver_result_passes_through_the_wrapper_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    kp = as_estimate_pose_sees_it(15.0, -5.0, 3.0)
    _solver_returning(monkeypatch)
    assert angles(estimate_pose(kp)) == pytest.approx((15.0, -5.0, 3.0), abs=1e-6)


def test_a_solver_that_reports_failure_gives_none_even_with_a_good_solution(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _solver_returning(monkeypatch, ok=False)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert estimate_pose(as_estimate_pose_sees_it(15.0, -5.0, 3.0)) is None
    assert caplog.records == []


@pytest.mark.parametrize("depth", [0.0, -1e-9, -1300.0])
def test_a_face_at_or_behind_the_camera_gives_none_without_a_fit_diagnostic(
    depth: float, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _solver_returning(monkeypatch, depth=depth)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert estimate_pose(as_estimate_pose_sees_it(15.0, -5.0, 3.0)) is None
    assert caplog.records == []  # dropped as impossible, not reported as a poor fit


def nose_moved(dx: float) -> np.ndarray:
    """A frontal 128 px face (exactly) with the nose tip moved sideways by dx px; the ears stay the extremes."""
    kp = with_span(as_estimate_pose_sees_it(0.0, 0.0, 0.0, span=128.0), 128.0, 0)
    kp[2, 0] += dx
    return kp


def test_a_fit_worse_than_15_percent_of_the_face_is_rejected_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert estimate_pose(nose_moved(56.0)) is not None  # rms about 14.6 % of the span: kept
        assert caplog.records == []
        assert estimate_pose(nose_moved(59.0)) is None  # about 15.5 %: rejected
    [record] = caplog.records
    assert record.levelno == logging.DEBUG and record.name == LOGGER
    assert record.getMessage() == "pose fit rejected: reprojection rms 19.8 px for a 128 px face"


def test_the_fit_threshold_is_strict_an_rms_exactly_at_it_is_kept(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The limit moved onto this fit's own RMS (exact: the span is 128, a power of two): kept there, rejected one
    representable step below."""
    kp = nose_moved(30.0)
    seen: list[np.ndarray] = []
    real = cv2.projectPoints

    def spy(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        result = real(*args, **kwargs)
        seen.append(result[0])
        return result

    monkeypatch.setattr(cv2, "projectPoints", spy)
    expected = estimate_pose(kp)
    assert expected is not None
    rms = math.sqrt(float(np.square(seen[-1].reshape(6, 2) - kp).sum()) / 6.0)
    assert 9.0 < rms < 10.0
    limit = rms / 128.0
    assert limit * 128.0 == rms
    monkeypatch.setattr(pose_module, "_MAX_RMS_ERROR", limit)
    assert estimate_pose(kp) == expected
    monkeypatch.setattr(pose_module, "_MAX_RMS_ERROR", float(np.nextafter(limit, 0.0)))
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert estimate_pose(kp) is None
    assert caplog.messages == [f"pose fit rejected: reprojection rms {rms:.1f} px for a 128 px face"]
