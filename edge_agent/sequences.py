"""Synthetic walk-in sequences with ground-truth tracks, for measuring scheduled detection against every-frame.

People walk in from a frame edge, stand for some seconds (swaying a little and turning their head), and walk out.
Each person is a real face photograph pasted at a face width that stands for a viewing distance; head turns
are rendered as a perspective turn of the (planar) photo, which moves BlazeFace's keypoints the way a yaw does
but is not a real 3-D head. Frames are rendered on demand (never held), with sensor noise, and optionally a
global lighting step, so the motion gate sees what a camera would give it. Ground truth is the face box.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_agent.records import Box

WIDTH, HEIGHT = 640, 480
WALK_S = 1.2  # time to walk from off-frame to the standing place, and back out


@dataclass(frozen=True, slots=True)
class FaceImage:
    """A face photograph (BGR) and its face box inside it as fractions (x1, y1, x2, y2)."""

    image: np.ndarray = field(repr=False)
    face_box: tuple[float, float, float, float] = (0.036, 0.058, 0.963, 0.985)  # a UTKFace aligned chip
    name: str = ""


@dataclass(frozen=True, slots=True)
class Person:
    """One visit: who, how big (face width in px ~ distance), where they stand, when they come and go."""

    face: FaceImage
    width_px: float
    stand_x: float  # face centre while standing, px
    y: float  # face centre height, px
    enter_s: float
    leave_s: float  # starts walking out at this time
    from_left: bool = True
    turn_deg: float = 0.0  # head-turn amplitude (yaw), degrees
    turn_period_s: float = 4.0

    def centre(self, t: float) -> tuple[float, float] | None:
        """Face centre at time t, or None while the person is wholly outside the frame."""
        off_l, off_r = -self.width_px, WIDTH + self.width_px
        start = off_l if self.from_left else off_r
        end = off_r if self.from_left else off_l  # walks on through to the other side
        if t < self.enter_s or t > self.leave_s + WALK_S:
            return None
        if t < self.enter_s + WALK_S:
            u = (t - self.enter_s) / WALK_S
            return start + (self.stand_x - start) * u, self.y
        if t <= self.leave_s:
            sway = 3.0 * math.sin(1.7 * (t - self.enter_s))
            return self.stand_x + sway, self.y + 2.0 * math.sin(1.1 * t)
        u = (t - self.leave_s) / WALK_S
        return self.stand_x + (end - self.stand_x) * u, self.y

    def yaw(self, t: float) -> float:
        return self.turn_deg * math.sin(2.0 * math.pi * (t - self.enter_s) / self.turn_period_s)


@dataclass(frozen=True, slots=True)
class Truth:
    """A person's face in one frame: who, and the face box (frame pixels, clipped to the frame)."""

    person: int
    box: Box
    inside: float  # fraction of the face box inside the frame


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named sequence: people, length, background, and an optional global lighting step."""

    name: str
    duration_s: float
    people: tuple[Person, ...]
    background: np.ndarray = field(repr=False)
    light_step_s: float | None = None  # at this time the whole scene gets 25% brighter
    noise: float = 2.0  # sensor noise, grey levels (sigma)

    def frames(self, fps: float) -> Iterator[tuple[float, np.ndarray, list[Truth]]]:
        """(t, BGR frame, ground truth) for every frame at `fps`; frames are rendered one at a time."""
        rng = np.random.default_rng(7)
        noise = [rng.normal(0.0, self.noise, (HEIGHT, WIDTH, 1)).astype(np.float32) for _ in range(6)]
        n = round(self.duration_s * fps)
        for i in range(n):
            t = i / fps
            img = self.background.astype(np.float32)
            truth = []
            for k, p in enumerate(self.people):
                c = p.centre(t)
                if c is not None:
                    tr = _paste(img, p, c, p.yaw(t))
                    if tr is not None:
                        truth.append(Truth(k, tr[0], tr[1]))
            if self.light_step_s is not None and t >= self.light_step_s:
                img *= 1.25
            img += noise[i % len(noise)]
            yield t, np.clip(img, 0, 255).astype(np.uint8), truth


def _turned(face: FaceImage, width_px: float, yaw: float) -> tuple[np.ndarray, np.ndarray, Box]:
    """The face chip scaled to `width_px` face width and turned by `yaw`: (image, alpha, face box in it)."""
    img = face.image
    h, w = img.shape[:2]
    fx1, fy1, fx2, fy2 = face.face_box
    s = width_px / ((fx2 - fx1) * w)
    cw, ch = max(2, round(w * s)), max(2, round(h * s))
    a = math.radians(yaw)
    squeeze = math.cos(a)
    near = 1.0 + 0.15 * abs(math.sin(a))  # the side turning towards the camera looks taller
    far = 1.0 - 0.15 * abs(math.sin(a))
    left, right = (far, near) if yaw > 0 else (near, far)
    nw = max(2, round(cw * squeeze))
    x0 = (cw - nw) / 2.0
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = np.array(
        [
            [x0, ch * (1 - left) / 2],
            [x0 + nw, ch * (1 - right) / 2],
            [x0 + nw, ch * (1 + right) / 2],
            [x0, ch * (1 + left) / 2],
        ],
        np.float32,
    )
    m = cv2.getPerspectiveTransform(src, dst)
    chip = cv2.warpPerspective(img, m, (cw, ch), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(_feather(h, w), m, (cw, ch), flags=cv2.INTER_LINEAR)
    corners = cv2.perspectiveTransform(
        np.array([[[fx1 * w, fy1 * h], [fx2 * w, fy1 * h], [fx2 * w, fy2 * h], [fx1 * w, fy2 * h]]], np.float32), m
    )[0]
    box = Box(
        float(corners[:, 0].min()), float(corners[:, 1].min()), float(corners[:, 0].max()), float(corners[:, 1].max())
    )
    return np.asarray(chip, np.float32), np.asarray(alpha, np.float32)[..., None], box


def _feather(h: int, w: int) -> np.ndarray:
    def ramp(n: int) -> np.ndarray:
        edge = max(1.0, 0.05 * n)
        i = np.arange(n, dtype=np.float32) + 0.5
        return np.asarray(np.clip(np.minimum(i, n - i) / edge, 0.0, 1.0), np.float32)

    return np.asarray(ramp(h)[:, None] * ramp(w)[None, :], np.float32)


def _paste(frame: np.ndarray, p: Person, centre: tuple[float, float], yaw: float) -> tuple[Box, float] | None:
    chip, alpha, fb = _turned(p.face, p.width_px, yaw)
    ch, cw = chip.shape[:2]
    fcx, fcy = (fb.x1 + fb.x2) / 2.0, (fb.y1 + fb.y2) / 2.0
    ox, oy = round(centre[0] - fcx), round(centre[1] - fcy)
    x1, y1, x2, y2 = max(ox, 0), max(oy, 0), min(ox + cw, WIDTH), min(oy + ch, HEIGHT)
    if x2 <= x1 or y2 <= y1:
        return None
    a = alpha[y1 - oy : y2 - oy, x1 - ox : x2 - ox]
    dst = frame[y1:y2, x1:x2]
    dst *= 1.0 - a
    dst += chip[y1 - oy : y2 - oy, x1 - ox : x2 - ox] * a
    box = fb.translate(ox, oy)
    clipped = box.clip(WIDTH, HEIGHT)
    inside = clipped.area / box.area if box.area > 0 else 0.0
    return (clipped, inside) if inside > 0 else None


def walk_ins(faces: Sequence[FaceImage], backgrounds: Sequence[np.ndarray], visits: int = 24) -> list[Scenario]:
    """The standard set: empty (with a lighting step), one person near/mid/far with head turns, three at once,
    and a stream of `visits` short visits by different people (for per-visit label agreement)."""
    if not faces or not backgrounds:
        raise ValueError("walk_ins needs at least one face and one background")

    def bg(i: int) -> np.ndarray:
        return np.ascontiguousarray(cv2.resize(backgrounds[i % len(backgrounds)], (WIDTH, HEIGHT)))

    def face(i: int) -> FaceImage:
        return faces[i % len(faces)]

    out = [Scenario("empty", 10.0, (), bg(0), light_step_s=5.0)]
    for name, width in (("one_near", 150.0), ("one_mid", 90.0), ("one_far", 50.0)):
        person = Person(face(len(out)), width, 330.0, 220.0, 1.0, 7.5, from_left=len(out) % 2 == 0, turn_deg=35.0)
        out.append(Scenario(name, 10.0, (person,), bg(len(out))))
    three = (
        Person(face(4), 130.0, 140.0, 200.0, 0.8, 8.0, True, 30.0),
        Person(face(5), 80.0, 330.0, 170.0, 2.0, 9.0, False, 25.0, 5.0),
        Person(face(6), 55.0, 510.0, 230.0, 3.2, 9.5, False, 40.0, 3.0),
    )
    out.append(Scenario("three", 12.0, three, bg(4), light_step_s=6.0))
    stream = []
    for k in range(visits):  # two at a time, 4.5 s each, alternating lanes and distances
        lane = k % 2
        width = (140.0, 100.0, 70.0, 50.0)[(k // 2) % 4]
        enter = 0.5 + 2.5 * k
        stream.append(
            Person(face(7 + k), width, 180.0 + 280.0 * lane, 200.0 + 30 * lane, enter, enter + 3.5, lane == 0, 25.0)
        )
    out.append(Scenario("visits", 2.5 * visits + 5.0, tuple(stream), bg(5)))
    return out
