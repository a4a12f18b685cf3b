"""The `demo` source: SYNTHETIC scenes in which real faces walk in, step closer, stay, and walk out. No camera needed.

Two faces ship beside this file, and walker j wears face j (cycling):
- `demo_presenter.mp4`: a 192x192, 8 s, 15 fps excerpt (downscaled, cropped to her head) of `face.mp4`, a woman
  talking to a webcam; MIT licence, copyright (c) 2018 1Z实验室, full text in `demo_presenter.LICENSE`. Her
  frames play in a loop, so the face moves and talks like a person, not a pasted photo.
- `demo_face.jpg`: a 160x160 crop of scikit-image's `astronaut` photograph (NASA portrait of Eileen Collins,
  public domain).

Frame k is a pure function of (config, seed, k), so two runs with the same seed produce identical frames.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_agent.capture.base import FrameSource, Pacer, SourceError, register_source
from edge_agent.capture.config import DemoSourceConfig

log = logging.getLogger(__name__)

FACE_IMAGE = Path(__file__).with_name("demo_face.jpg")
PRESENTER_VIDEO = Path(__file__).with_name("demo_presenter.mp4")
# Where the face itself sits inside each pasted patch (fractions of the patch side), measured with OpenCV's YuNet
# (astronaut) and BlazeFace (presenter, median over her frames).
FACE_REL_BOX = (0.29, 0.29, 0.72, 0.86)
PRESENTER_REL_BOX = (0.29, 0.30, 0.70, 0.70)
# Phases of one cycle, as fractions of cycle_s: walk in, stay, walk out; the rest of the cycle is an empty scene.
_ENTER, _STAY, _LEAVE = 0.2, 0.4, 0.2


@dataclass(frozen=True, slots=True)
class Placement:
    """One face patch in one frame: top-left corner and side in pixels (may lie partly outside the frame)."""

    x: float
    y: float
    size: float
    sprite: int = 0  # which face (index into the source's faces)
    rel_box: tuple[float, float, float, float] = FACE_REL_BOX

    def face_box(self) -> tuple[float, float, float, float]:
        """Approximate box (x1, y1, x2, y2) of the face inside the patch, for tests and ground truth."""
        fx1, fy1, fx2, fy2 = self.rel_box
        return (self.x + fx1 * self.size, self.y + fy1 * self.size, self.x + fx2 * self.size, self.y + fy2 * self.size)


@dataclass(frozen=True, slots=True)
class _Walker:
    size: float  # patch side in pixels
    x_stay: float  # left edge while staying
    y: float  # top edge
    delay: float  # fraction of the cycle this face starts late
    sway: float  # radians, phase of the idle sway
    sprite: int = 0
    rel_box: tuple[float, float, float, float] = FACE_REL_BOX


def _smooth(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


def place(w: _Walker, t_frac: float, width: int) -> Placement | None:
    """Where walker `w` is at cycle fraction `t_frac` (0..1), or None when it is off stage."""
    u = (t_frac - w.delay) % 1.0
    start_x, end_x = -w.size, float(width)
    if u < _ENTER:
        x = start_x + (w.x_stay - start_x) * _smooth(u / _ENTER)
    elif u < _ENTER + _STAY:
        x = w.x_stay + 0.04 * w.size * math.sin(2 * math.pi * (u - _ENTER) / _STAY * 2 + w.sway)
    elif u < _ENTER + _STAY + _LEAVE:
        x = w.x_stay + (end_x - w.x_stay) * _smooth((u - _ENTER - _STAY) / _LEAVE)
    else:
        return None
    if x + w.size <= 0 or x >= width:
        return None
    # Far while walking in, a step closer while staying (about 1.5x larger: a different viewing distance), and a
    # little sway on top, like a real person.
    near = _smooth((u - _ENTER) / _STAY) if u >= _ENTER else 0.0
    scale = (0.8 + 0.4 * near) * (1.0 + 0.04 * math.sin(2 * math.pi * u * 3 + w.sway))
    size = w.size * scale
    return Placement(x, w.y + (w.size - size) / 2, size, w.sprite, w.rel_box)


def _walkers(cfg: DemoSourceConfig, rng: np.random.Generator) -> list[_Walker]:
    out = []
    lane = cfg.width / cfg.faces
    for j in range(cfg.faces):
        size = float(rng.uniform(0.30, 0.42) * min(cfg.height, lane * 1.6))
        x_stay = float(j * lane + (lane - size) * rng.uniform(0.3, 0.7))
        y = float((cfg.height - size) * rng.uniform(0.25, 0.6))
        sprite = j % len(_REL_BOXES)
        sway = float(rng.uniform(0, 2 * math.pi))
        out.append(_Walker(size, x_stay, y, 0.12 * j, sway, sprite, _REL_BOXES[sprite]))
    return out


_REL_BOXES = (PRESENTER_REL_BOX, FACE_REL_BOX)  # walker j wears face j % 2: the presenter first


def _background(cfg: DemoSourceConfig, rng: np.random.Generator) -> np.ndarray:
    """A calm synthetic room: vertical gradient plus a few blurred blocks of colour."""
    h, w = cfg.height, cfg.width
    top, bottom = rng.uniform(90, 200, 3), rng.uniform(40, 140, 3)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    bg = (top * (1 - ramp) + bottom * ramp).astype(np.float32) * np.ones((1, w, 1), np.float32)
    for _ in range(6):
        x1, y1 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x2, y2 = x1 + int(rng.integers(w // 10, w // 3)), y1 + int(rng.integers(h // 10, h // 3))
        cv2.rectangle(bg, (x1, y1), (x2, y2), tuple(float(v) for v in rng.uniform(30, 220, 3)), -1)
    blurred = cv2.GaussianBlur(bg, (0, 0), sigmaX=max(w, h) / 80)
    return np.clip(blurred, 0, 255).astype(np.uint8)


def _feather_mask(size: int) -> np.ndarray:
    """Soft elliptical alpha so the photo's square edge does not look like a face-shaped box to a detector."""
    m = np.zeros((size, size), np.float32)
    cv2.ellipse(m, (size // 2, size // 2), (int(size * 0.46), int(size * 0.5)), 0, 0, 360, 1.0, -1)
    k = max(3, (size // 12) | 1)
    return cv2.GaussianBlur(m, (k, k), 0)[:, :, None]


def paste(frame: np.ndarray, face: np.ndarray, p: Placement) -> None:
    """Alpha-blend `face` resized to p.size at (p.x, p.y) into `frame`, clipped to the frame (in place)."""
    side = max(2, round(p.size))
    x0, y0 = round(p.x), round(p.y)
    fh, fw = frame.shape[:2]
    x1, y1, x2, y2 = max(x0, 0), max(y0, 0), min(x0 + side, fw), min(y0 + side, fh)
    if x2 <= x1 or y2 <= y1:
        return
    patch = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA if side < face.shape[0] else cv2.INTER_LINEAR)
    alpha = _feather_mask(side)[y1 - y0 : y2 - y0, x1 - x0 : x2 - x0]
    src = patch[y1 - y0 : y2 - y0, x1 - x0 : x2 - x0].astype(np.float32)
    dst = frame[y1:y2, x1:x2].astype(np.float32)
    frame[y1:y2, x1:x2] = (src * alpha + dst * (1.0 - alpha)).astype(np.uint8)


def load_face() -> np.ndarray:
    img = cv2.imread(str(FACE_IMAGE), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"demo face image missing or unreadable: {FACE_IMAGE} (reinstall edge-agent)")
    return img


def load_presenter() -> list[np.ndarray]:
    """Every frame of the presenter clip (8 s, 120 frames of 192x192: 13 MB decoded)."""
    cap = cv2.VideoCapture(str(PRESENTER_VIDEO), cv2.CAP_FFMPEG)
    frames: list[np.ndarray] = []
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(img)
    finally:
        cap.release()
    if not frames:
        raise SourceError(f"demo clip missing or unreadable: {PRESENTER_VIDEO} (reinstall edge-agent)")
    return frames


def load_sprites() -> list[list[np.ndarray]]:
    """The demo's faces, in walker order: the presenter's frames, then the astronaut photo as a one-frame clip."""
    return [load_presenter(), [load_face()]]


@register_source("demo")
class DemoSource(FrameSource):
    """Deterministic synthetic scene at a fixed fps; labelled SYNTHETIC in the picture and in the log."""

    fps: float

    cfg: DemoSourceConfig

    def __init__(self, cfg: DemoSourceConfig) -> None:
        super().__init__(cfg)
        rng = np.random.default_rng(cfg.seed)
        self._walkers = _walkers(cfg, rng)
        self._bg = _background(cfg, rng)
        self._faces: list[list[np.ndarray]] | None = None
        self._pacer = Pacer(cfg.fps)
        self.frames_per_cycle = max(1, round(cfg.cycle_s * cfg.fps))
        self.fps = cfg.fps
        self.index = -1  # index of the last grabbed frame

    @property
    def frame_interval(self) -> float:
        return self._pacer.interval

    def open(self) -> None:
        self._faces = load_sprites()
        self.eof = False
        self.index = -1
        self._pacer.reset()
        log.info(
            "demo source: SYNTHETIC frames (a presenter clip, MIT, and a public-domain astronaut photo, moved across "
            "a drawn background), %s",
            self.description,
        )

    def placements(self, k: int) -> list[Placement]:
        """Face patches visible in frame k (ground truth for tests)."""
        t_frac = (k % self.frames_per_cycle) / self.frames_per_cycle
        return [p for w in self._walkers if (p := place(w, t_frac, self.cfg.width)) is not None]

    def render(self, k: int) -> np.ndarray:
        """Frame k of the scene (BGR uint8), independent of anything rendered before."""
        if self._faces is None:
            self._faces = load_sprites()
        frame = self._bg.copy()
        for p in self.placements(k):
            clip = self._faces[p.sprite % len(self._faces)]
            # The clip plays at 15 fps whatever the demo's fps, so she talks at her own pace.
            paste(frame, clip[int(k / self.cfg.fps * 15.0) % len(clip)], p)
        cv2.putText(
            frame,
            "SYNTHETIC DEMO",
            (8, self.cfg.height - 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        return frame

    def grab(self) -> bool:
        if self._faces is None:
            return False
        if not self.cfg.loop and self.index + 1 >= self.frames_per_cycle:
            self.eof = True
            return False
        if not self._pacer.wait(self.stop_event):
            return False
        self.index += 1
        return True

    def retrieve(self) -> np.ndarray | None:
        return self.render(self.index) if self.index >= 0 else None

    def close(self) -> None:
        self._faces = None
