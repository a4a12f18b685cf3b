"""`annotate` output: drawing (boxes, labels, a colour legend) and writers chosen by the output's extension."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config import ConfigError
from edge_agent.records import Face
from edge_agent.track.events import UNKNOWN, TrackView

log = logging.getLogger(__name__)
VIDEO_CODECS = {".mp4": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
GIF_MAX_FRAMES = 600  # a GIF is encoded at the end, so every frame is held in memory until then
YELLOW, GREEN, BLUE, GREY, WHITE, BLACK = (
    (0, 200, 255),
    (60, 200, 60),
    (230, 140, 40),
    (150, 150, 150),
    (255,) * 3,
    (0,) * 3,
)
LEGEND = (
    (YELLOW, "detection (+ keypoints)"),
    (GREEN, "visit, looking at the screen"),
    (BLUE, "visit, not looking"),
    (GREY, "minor: counted only"),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def output_kind(out: Path) -> str:
    """'video', 'gif' or 'images' from the extension (an existing folder or no extension: images)."""
    suffix = out.suffix.lower()
    if out.is_dir() or not suffix:
        return "images"
    if suffix == ".gif":
        if not hasattr(cv2, "imwriteanimation"):  # added in OpenCV 4.11
            raise ConfigError(f"annotate: --out {out}: this OpenCV ({cv2.__version__}) cannot write GIFs; use .mp4")
        return "gif"
    if suffix in VIDEO_CODECS:
        return "video"
    raise ConfigError(
        f"annotate: --out {out}: unknown output type {suffix!r}; use .mp4, .avi, .mov, .mkv, .gif, "
        "or a folder name without an extension for images"
    )


def label(view: TrackView) -> str:
    """`3f9c2d 4.2s att 2.0s age 30-39 female` from a track's current (provisional) attributes."""
    parts = [view.track_id[:6], f"{view.dwell_s:.1f}s", f"att {view.attention_s:.1f}s"]
    attrs = view.attributes
    if attrs.minor:
        parts.append("minor")
    else:
        for name, est in attrs.heads().items():
            text = est.label if est.label != UNKNOWN else f"{name}?"
            parts.append(f"age {text}" if name == "age" and est.label != UNKNOWN else text)
    return " ".join(parts)


def _text(img: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, ...], scale: float = 0.45) -> None:
    (tw, th), _ = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = org
    cv2.rectangle(img, (x, y - th - 4), (x + tw + 4, y + 3), colour, -1)
    ink = BLACK if colour in (YELLOW, GREY) else WHITE
    cv2.putText(img, text, (x + 2, y - 1), _FONT, scale, ink, 1, cv2.LINE_AA)


def draw_legend(img: np.ndarray) -> None:
    """A small key in the top-left corner, on a darkened panel, so a viewer can tell the colours apart."""
    scale, line = 0.4, 16
    width = max(cv2.getTextSize(text, _FONT, scale, 1)[0][0] for _, text in LEGEND) + 30
    h, w = img.shape[:2]
    x2, y2 = min(width, w), min(line * len(LEGEND) + 6, h)
    img[0:y2, 0:x2] = (img[0:y2, 0:x2] * 0.35).astype(img.dtype)  # darken, so white text reads on any scene
    for i, (colour, text) in enumerate(LEGEND):
        y = 4 + line * (i + 1) - 4
        cv2.rectangle(img, (6, y - 9), (16, y + 1), colour, -1)
        cv2.putText(img, text, (22, y), _FONT, scale, WHITE, 1, cv2.LINE_AA)


def draw(image: np.ndarray, faces: Sequence[Face], views: Sequence[TrackView], caption: str = "") -> np.ndarray:
    """Detections in yellow (with keypoints); visits coloured by attention, with id, dwell, attention and labels."""
    out = image.copy()
    for face in faces:
        b = face.detection.box
        cv2.rectangle(out, (int(b.x1), int(b.y1)), (int(b.x2), int(b.y2)), YELLOW, 1)
        for x, y in np.asarray(face.detection.keypoints).reshape(-1, 2):
            if x or y:
                cv2.circle(out, (int(x), int(y)), 2, YELLOW, -1)
    for view in views:
        b = view.box
        colour = GREY if view.attributes.minor else GREEN if view.looking else BLUE
        cv2.rectangle(out, (int(b.x1), int(b.y1)), (int(b.x2), int(b.y2)), colour, 2)
        _text(out, label(view), (int(b.x1), max(int(b.y1) - 4, 14)), colour)
    draw_legend(out)
    if caption:  # bottom right: the demo marks itself SYNTHETIC in the bottom-left corner
        (tw, _), _ = cv2.getTextSize(caption, _FONT, 0.4, 1)
        _text(out, caption, (max(0, out.shape[1] - tw - 8), out.shape[0] - 6), BLACK, 0.4)
    return out


class Writer:
    """Writes annotated frames as a video (mp4/avi/...), an animated GIF, or numbered JPEGs in a folder."""

    def __init__(self, out: Path, fps: float) -> None:
        self.out, self.fps = out, fps
        self.kind = output_kind(out)
        self.video: cv2.VideoWriter | None = None
        self.size = (0, 0)
        self.count = 0
        self._gif: list[np.ndarray] = []
        self.truncated = False
        if self.kind == "images":
            out.mkdir(parents=True, exist_ok=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)

    @property
    def full(self) -> bool:
        return self.kind == "gif" and self.count >= GIF_MAX_FRAMES

    def write(self, image: np.ndarray, name: str | None = None) -> None:
        if self.size == (0, 0):
            self.size = (int(image.shape[1]), int(image.shape[0]))
        if self.kind != "images" and (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)  # a video has one frame size: later odd-sized images are fitted
        if self.kind == "video":
            self._video().write(image)
        elif self.kind == "gif":
            if self.full:
                self.truncated = True
                return
            self._gif.append(image)
        else:
            path = self.out / (f"{name}.jpg" if name else f"frame_{self.count:06d}.jpg")
            if not cv2.imwrite(str(path), image):
                raise OSError(f"cannot write {path}")
        self.count += 1

    def _video(self) -> cv2.VideoWriter:
        if self.video is None:
            fourcc = cv2.VideoWriter.fourcc(*VIDEO_CODECS[self.out.suffix.lower()])
            self.video = cv2.VideoWriter(str(self.out), fourcc, self.fps, self.size)
            if not self.video.isOpened():
                raise OSError(f"cannot write video {self.out} (codec {VIDEO_CODECS[self.out.suffix.lower()]})")
        return self.video

    def close(self) -> None:
        if self.video is not None:
            self.video.release()
            self.video = None
        if self.kind == "gif" and self._gif:
            anim = cv2.Animation()
            anim.frames = self._gif
            anim.durations = [max(10, round(1000.0 / self.fps))] * len(self._gif)  # GIF stores centiseconds
            anim.loop_count = 0
            frames, self._gif = self._gif, []
            if not cv2.imwriteanimation(str(self.out), anim):
                raise OSError(f"cannot write GIF {self.out}")
            del frames
        if self.truncated:
            log.warning(
                "annotate: a GIF holds every frame in memory, so it stopped at %d frames; use .mp4 for longer output",
                GIF_MAX_FRAMES,
            )
