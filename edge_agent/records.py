"""Frozen, typed records passed between pipeline stages (capture → detect → classify → track → publish)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded camera frame. `image` is BGR uint8 HxWx3 and never leaves the process."""

    camera_id: str
    index: int  # monotonically increasing per source, counts delivered frames
    ts: float  # wall-clock capture time, seconds since epoch (UTC)
    mono: float  # time.monotonic() at capture, for latency and rate maths
    image: np.ndarray = field(repr=False, compare=False)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box in pixel coordinates (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def scale(self, sx: float, sy: float | None = None) -> Box:
        sy = sx if sy is None else sy
        return Box(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)

    def translate(self, dx: float, dy: float) -> Box:
        return Box(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)

    def expand_square(self, margin: float) -> Box:
        """Square box around the centre, side = max(w, h) * (1 + 2 * margin)."""
        cx, cy = self.center
        half = max(self.width, self.height) * (1.0 + 2.0 * margin) / 2.0
        return Box(cx - half, cy - half, cx + half, cy + half)

    def clip(self, width: int, height: int) -> Box:
        return Box(
            min(max(self.x1, 0.0), float(width)),
            min(max(self.y1, 0.0), float(height)),
            min(max(self.x2, 0.0), float(width)),
            min(max(self.y2, 0.0), float(height)),
        )

    def as_list(self, ndigits: int = 1) -> list[float]:
        return [round(self.x1, ndigits), round(self.y1, ndigits), round(self.x2, ndigits), round(self.y2, ndigits)]


# BlazeFace keypoint order (MediaPipe): right eye, left eye, nose tip, mouth centre,
# right ear tragion, left ear tragion. "Right" is the subject's right (image left for a frontal face).
KEYPOINT_NAMES: tuple[str, ...] = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True, slots=True)
class Detection:
    """A detected face: box and 6 keypoints in frame pixel coordinates."""

    box: Box
    score: float
    keypoints: np.ndarray = field(repr=False, compare=False)  # float32 (6, 2), x/y pixels, KEYPOINT_NAMES order


@dataclass(frozen=True, slots=True)
class HeadResult:
    """One classification head for one face: probabilities over the head's labels (0..1, sums to 1)."""

    labels: tuple[str, ...]
    probs: tuple[float, ...]

    @property
    def top(self) -> tuple[str, float]:
        i = int(np.argmax(self.probs))
        return self.labels[i], float(self.probs[i])


@dataclass(frozen=True, slots=True)
class Attributes:
    """Per-face attribute outputs. A head that is disabled in config is None and was never computed."""

    age: HeadResult | None = None
    age_years: float | None = None
    gender: HeadResult | None = None
    race: HeadResult | None = None


@dataclass(frozen=True, slots=True)
class Pose:
    """Head pose in degrees. yaw > 0: subject turned to their left (image right); pitch > 0: looking up."""

    yaw: float
    pitch: float
    roll: float = 0.0


@dataclass(frozen=True, slots=True)
class Face:
    """A detection with everything measured about it in one frame."""

    detection: Detection
    attributes: Attributes | None
    pose: Pose | None = None
    face_px: float = 0.0  # face width in pixels (for the min-face-size rule)
    sharpness: float | None = None  # blur measure: Laplacian variance of the face as 32x32 grey; None: not measured
    visible: float = 1.0  # fraction of the face's surroundings inside the frame (< 1: cut by the frame edge)


@dataclass(frozen=True, slots=True)
class TrackHint:
    """What detection scheduling needs to know about one track: where its face should be now, and when it was seen."""

    track_id: str
    box: Box  # predicted for the frame about to be analysed, frame pixels
    last_seen: float  # frame time (monotonic seconds) of the track's latest detection
    speed: float = 0.0  # how fast the face moves, face widths per second (smoothed)
