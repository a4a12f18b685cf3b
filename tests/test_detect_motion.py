"""Motion gate: still on a still scene, blind to brightness steps and flicker, fires on a real face walking in."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.detect.motion import MotionGate
from edge_agent.detect.schedule_config import MotionConfig
from edge_agent.records import Box
from tests.fixtures.media import astronaut_bgr

FPS = 30.0


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """A real photograph (scikit-image `coffee`, no face) as a 640x480 BGR background."""
    data = pytest.importorskip("skimage.data")
    return cv2.resize(data.coffee()[:, :, ::-1], (640, 480), interpolation=cv2.INTER_AREA)


def _noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def _gain(img: np.ndarray, g: float) -> np.ndarray:
    return np.clip(img.astype(np.float32) * g, 0, 255).astype(np.uint8)


def _run(gate: MotionGate, frames: list[np.ndarray]) -> list:
    return [gate.update(f, i / FPS) for i, f in enumerate(frames)]


def test_still_scene_with_sensor_noise_never_moves(scene: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    out = _run(MotionGate(MotionConfig()), [_noisy(scene, rng) for _ in range(90)])
    assert not any(m.moving or m.global_change for m in out)


def test_brightness_step_and_flicker_are_not_motion(scene: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    gains = [1.0] * 20 + [1.35] * 30 + [1.35 + 0.08 * np.sin(i * 2.1) for i in range(40)]  # step, then flicker
    out = _run(MotionGate(MotionConfig()), [_noisy(_gain(scene, g * 0.7), rng) for g in gains])
    assert not any(m.moving for m in out)


def test_a_change_of_most_of_the_picture_is_a_lighting_change_and_settles(scene: np.ndarray) -> None:
    # Not a pure gain: inverted contrast over the whole frame (e.g. a white-balance/exposure jump, a light in view).
    frames = [scene] * 10 + [cv2.add(255 - scene, 0)] * 20
    gate = MotionGate(MotionConfig())
    out = _run(gate, frames)
    assert out[10].global_change and not out[10].moving
    assert not any(m.moving or m.global_change for m in out[11:])
    assert gate.global_changes == 1


def test_fires_on_a_face_walking_in_and_says_where(scene: np.ndarray) -> None:
    face = cv2.resize(astronaut_bgr()[28:228, 125:325], (120, 120), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(2)
    frames, boxes = [], []
    for i in range(40):
        img = scene.copy()
        x = -120 + 10 * (i - 5)  # empty for 5 frames, then walks in from the left, 10 px per frame (300 px/s)
        if x > -120:
            x0 = max(0, x)
            img[180:300, x0 : x + 120] = face[:, x0 - x :]
        frames.append(_noisy(img, rng))
        boxes.append(Box(max(0, x), 180, x + 120, 300))
    out = _run(MotionGate(MotionConfig()), frames)
    assert not any(m.moving for m in out[:6])  # empty scene (frame 5 has the face still wholly off-frame)
    entered = [i for i, m in enumerate(out) if m.moving]
    assert entered and entered[0] <= 8  # within 2 frames of the first 10 px of face showing at the edge
    m = out[20]
    assert m.moving and m.outside([])
    assert not m.outside([Box(0, 150, 640, 330)])  # every changed cell lies around the face's band
    cx = np.mean([(b.x1 + b.x2) / 2 for b in m.boxes()])
    assert boxes[20].x1 - 60 <= cx <= boxes[20].x2 + 60


def test_a_clipping_lighting_step_settles_within_the_settle_time(scene: np.ndarray) -> None:
    # x1.6 clips the bright parts at 255: not a pure gain, so some cells really change, once, and then stay.
    rng = np.random.default_rng(3)
    frames = [_noisy(scene, rng) for _ in range(15)] + [_noisy(_gain(scene, 1.6), rng) for _ in range(45)]
    out = _run(MotionGate(MotionConfig(settle_s=0.15)), frames)
    moving = [i for i, m in enumerate(out) if m.moving]
    assert moving and moving[0] == 15  # the step itself is seen
    assert moving[-1] <= 15 + round(0.15 * FPS) + 1  # and within settle_s it is background, not motion
