"""`edge-agent annotate`: draw boxes, track ids and labels on a video or images (output stays on this machine)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_agent.config import AgentConfig, ConfigError
from edge_agent.daemon.stills import Analyzer, expand, read_image
from edge_agent.records import Frame

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}
GREEN, YELLOW, WHITE = (60, 200, 60), (0, 200, 255), (255, 255, 255)


def _label(view: Any) -> str:
    """`id8 looking 12s age 30-39 female` from a TrackView's provisional attributes."""
    parts = [view.track_id[:6], "looking" if view.looking else "", f"{view.dwell_s:.0f}s"]
    attrs = view.attributes
    if getattr(attrs, "minor", None):
        parts.append("minor")
    else:
        for name, est in attrs.heads().items():
            parts.append(est.label if name != "age" else f"age {est.label}")
    return " ".join(p for p in parts if p)


def draw(image: np.ndarray, faces: list[Any], views: list[Any]) -> np.ndarray:
    """Detections in yellow (with keypoints), tracks in green with their id and current labels."""
    out = image.copy()
    for face in faces:
        b = face.detection.box
        cv2.rectangle(out, (int(b.x1), int(b.y1)), (int(b.x2), int(b.y2)), YELLOW, 1)
        for x, y in np.asarray(face.detection.keypoints).reshape(-1, 2):
            cv2.circle(out, (int(x), int(y)), 2, YELLOW, -1)
    for view in views:
        b = view.box
        cv2.rectangle(out, (int(b.x1), int(b.y1)), (int(b.x2), int(b.y2)), GREEN, 2)
        text = _label(view)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        y = max(int(b.y1) - 4, th + 4)
        cv2.rectangle(out, (int(b.x1), y - th - 4), (int(b.x1) + tw + 4, y + 2), GREEN, -1)
        cv2.putText(out, text, (int(b.x1) + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, WHITE, 1, cv2.LINE_AA)
    return out


class _Writer:
    """A video file (by suffix) or a directory of numbered JPEGs."""

    def __init__(self, out: Path, fps: float) -> None:
        self.out, self.fps = out, fps
        self.video: cv2.VideoWriter | None = None
        self.size = (0, 0)
        self.count = 0
        if out.suffix.lower() not in VIDEO_SUFFIXES:
            out.mkdir(parents=True, exist_ok=True)

    def write(self, image: np.ndarray) -> None:
        if self.out.suffix.lower() in VIDEO_SUFFIXES:
            if self.video is None:
                self.out.parent.mkdir(parents=True, exist_ok=True)
                fourcc = cv2.VideoWriter.fourcc(*VIDEO_SUFFIXES[self.out.suffix.lower()])
                self.size = (int(image.shape[1]), int(image.shape[0]))
                self.video = cv2.VideoWriter(str(self.out), fourcc, self.fps, self.size)
                if not self.video.isOpened():
                    raise OSError(f"cannot write video {self.out}")
            if (image.shape[1], image.shape[0]) != self.size:
                image = cv2.resize(image, self.size)
            self.video.write(image)
        elif not cv2.imwrite(str(self.out / f"frame_{self.count:06d}.jpg"), image):
            raise OSError(f"cannot write {self.out}")
        self.count += 1

    def close(self) -> None:
        if self.video is not None:
            self.video.release()


def _frames(cfg: AgentConfig, source: str, max_frames: int | None) -> Any:
    """(index, ts, image) from still images, or from the source via the capture stage's FrameSource (unpaced)."""
    from edge_agent.capture.base import create_source
    from edge_agent.capture.config import IMAGE_EXTENSIONS
    from edge_agent.daemon.overrides import with_source

    path = Path(source)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        yield 0, time.time(), read_image(path)
        return
    src_cfg = with_source(cfg, source).cameras[0].source
    if src_cfg.type in ("file", "folder", "demo"):
        src_cfg = src_cfg.model_copy(update={"loop": False})
    if src_cfg.type == "file":
        src_cfg = src_cfg.model_copy(update={"realtime": False})
    src = create_source(src_cfg)
    src.open()
    try:
        from edge_agent.capture.frames import normalize_frame

        index, t0 = 0, time.time()
        while max_frames is None or index < max_frames:
            img = src.read()
            if img is None:
                if src.eof:
                    return
                continue
            norm = normalize_frame(img)
            if norm.image is not None:
                yield index, t0 + index / 10.0, norm.image
                index += 1
    finally:
        src.close()


def annotate_source(cfg: AgentConfig, source: str, out: Path, max_frames: int | None = None) -> int:
    """Annotate every frame of `source` into `out`; returns the number of frames written."""
    from edge_agent.daemon.analytics_adapter import AnalyticsAdapter

    if source != "demo" and "://" not in source and not Path(source).exists() and not source.isdigit():
        raise ConfigError(f"annotate: source {source!r} does not exist")
    if source == "demo" and max_frames is None:
        max_frames = 150  # the demo loops forever
    paths = expand([Path(source)]) if Path(source).is_dir() else None
    writer = _Writer(out, fps=10.0)
    with Analyzer(cfg) as analyzer:
        analytics = AnalyticsAdapter("annotate", cfg.tracking, cfg.analytics, analyzer.meta, _heads(cfg, analyzer))
        try:
            frames = (
                ((i, time.time(), read_image(p)) for i, p in enumerate(paths))
                if paths
                else _frames(cfg, source, max_frames)
            )
            for index, ts, image in frames:
                faces = analyzer.analyze(image)
                frame = Frame("annotate", index, ts, ts, image)
                analytics.update(faces, frame)
                writer.write(draw(image, faces, analytics.engine.tracker.present()))
        finally:
            writer.close()
    return writer.count


def _heads(cfg: AgentConfig, analyzer: Analyzer) -> tuple[str, ...]:
    return cfg.attributes.enabled() if analyzer.classifier is not None else ()
