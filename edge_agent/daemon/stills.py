"""Detect and classify faces in still images (`edge-agent classify`), no broker; shared Analyzer for annotate."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import cv2
import numpy as np

from edge_agent.config import AgentConfig
from edge_agent.daemon import builders
from edge_agent.records import Attributes, Face, HeadResult

log = logging.getLogger(__name__)
MAX_IMAGE_MB = 50.0


class Analyzer:
    """Detector + classifier (one interpreter each, reused for every face) + pose; `analyze(image) -> faces`."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.detector = builders.detector(cfg.detector)
        try:
            self.classifier, self.meta = builders.classifier(cfg.attributes)
        except BaseException:
            self.detector.close()
            raise
        self.pose = builders.pose_fn()

    def analyze(self, image: np.ndarray) -> list[Face]:
        dets = self.detector.detect(image)
        attrs: list[Any] = [None] * len(dets)
        if dets and self.classifier is not None:
            attrs = list(self.classifier.classify(image, dets))
        return [Face(d, a, self.pose(d.keypoints), d.box.width) for d, a in zip(dets, attrs)]

    def close(self) -> None:
        if self.classifier is not None:
            self.classifier.close()
        self.detector.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def head_json(head: HeadResult) -> dict[str, Any]:
    label, p = head.top
    return {"label": label, "p": round(p, 4), "probs": {k: round(float(v), 4) for k, v in zip(head.labels, head.probs)}}


def attributes_json(attrs: Attributes | None) -> dict[str, Any]:
    """Only the heads that were computed (a disabled head is None and is left out)."""
    if attrs is None:
        return {}
    out: dict[str, Any] = {}
    for name in ("age", "gender", "race"):
        head = getattr(attrs, name)
        if head is not None:
            out[name] = head_json(head)
    if attrs.age_years is not None:
        out["age_years"] = round(float(attrs.age_years), 1)
    return out


def face_json(face: Face) -> dict[str, Any]:
    det = face.detection
    out: dict[str, Any] = {"box": det.box.as_list(), "score": round(float(det.score), 4)}
    if face.pose is not None:
        out["pose"] = {
            "yaw": round(face.pose.yaw, 1),
            "pitch": round(face.pose.pitch, 1),
            "roll": round(face.pose.roll, 1),
        }
    attrs = attributes_json(face.attributes)
    if attrs:
        out["attributes"] = attrs
    return out


def read_image(path: Path) -> np.ndarray:
    """A BGR uint8 image, or ValueError with a one-line reason (not a file, too big, not an image, odd shape)."""
    from edge_agent.capture.frames import normalize_frame

    if not path.is_file():
        raise ValueError("not a file")
    size_mb = path.stat().st_size / 2**20
    if size_mb > MAX_IMAGE_MB:
        raise ValueError(f"file is {size_mb:.0f} MB, larger than {MAX_IMAGE_MB:.0f} MB")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ValueError("not a readable image")
    norm = normalize_frame(img, max_side=4096, min_side=16)
    if norm.image is None:
        raise ValueError(f"unusable image ({norm.skip})")
    return norm.image


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; directories become their image files in name order."""
    from edge_agent.capture.config import IMAGE_EXTENSIONS

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()))
        else:
            out.append(p)
    return out


def classify_images(cfg: AgentConfig, paths: list[Path]) -> Iterator[dict[str, Any]]:
    """One JSON-able record per image: its faces with box, score, pose and attributes, or a one-line error."""
    with Analyzer(cfg) as analyzer:
        for path in expand(paths):
            try:
                image = read_image(path)
                faces = analyzer.analyze(image)
            except ValueError as exc:
                log.warning("%s: skipped: %s", path, exc)
                yield {"file": str(path), "error": str(exc)}
                continue
            yield {
                "file": str(path),
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "faces": [face_json(f) for f in faces],
            }
