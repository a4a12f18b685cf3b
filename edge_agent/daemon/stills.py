"""`edge-agent classify`: detect and classify still images with the daemon's own gating; the shared Analyzer.

Each face is reported the way the daemon would publish a one-frame visit of it: the same `min_face_px`,
`min_confidence` and minor rules (a minor is a count only: no attributes at all). What the model said but the
daemon would not publish is listed under `not_published` with the rule that hides it, so nothing shown here
suggests the daemon sends more than it does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import cv2
import numpy as np

from edge_agent import imageio
from edge_agent.config import AgentConfig
from edge_agent.daemon import builders
from edge_agent.daemon.analytics_adapter import AnalyticsAdapter
from edge_agent.daemon.sinks import Outgoing
from edge_agent.records import Attributes, Box, Detection, Face, Frame
from edge_agent.track.aggregate import AttributeAccumulator
from edge_agent.track.events import UNKNOWN, AttributeEstimate, HeadSpec, TrackView
from edge_agent.track.payloads import attributes_payload
from edge_agent.track.tracker import Classify

log = logging.getLogger(__name__)
NO_FACE_HINT = "no face found; if the image is already a face crop (a dataset chip, an ID photo), use --face-crop"
DEFAULT_CHIP_CROP_FRAC = 0.8  # models without the sidecar key were trained on the centre 80 % of each chip


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
        self.heads: tuple[str, ...] = cfg.attributes.enabled() if self.classifier is not None else ()

    def analyze(self, image: np.ndarray) -> list[Face]:
        dets = self.detector.detect(image)
        attrs: list[Attributes | None] = [None] * len(dets)
        if dets and self.classifier is not None:
            attrs = list(self.classifier.classify(image, dets))
        return [Face(d, a, self.pose(d.keypoints), d.box.width) for d, a in zip(dets, attrs, strict=True)]

    def analyze_crop(self, image: np.ndarray) -> list[Face]:
        """The whole image is one face chip: no detection; the model's own chip rule (centre crop) is applied."""
        h, w = image.shape[:2]
        frac = DEFAULT_CHIP_CROP_FRAC
        if self.meta is not None:
            frac = float(self.meta.raw.get("crop", {}).get("training_chip_crop_frac", frac))
        side = max(1, round(min(h, w) * frac))
        x0, y0 = (w - side) // 2, (h - side) // 2
        box = Box(float(x0), float(y0), float(x0 + side), float(y0 + side))
        det = Detection(box, 1.0, np.zeros((6, 2), np.float32))
        attrs = None
        if self.classifier is not None and self.meta is not None:
            size = self.meta.preprocess.size
            chip = image[y0 : y0 + side, x0 : x0 + side]
            interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
            attrs = self.classifier.classify_crop(cv2.resize(chip, (size, size), interpolation=interp))
        return [Face(det, attrs, None, float(side))]

    def close(self) -> None:
        if self.classifier is not None:
            self.classifier.close()
        self.detector.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Gate:
    """The daemon's publishing rules for one face seen once: the tracker's own accumulator, fed one sample."""

    def __init__(self, cfg: AgentConfig, analyzer: Analyzer) -> None:
        self.tracking = cfg.tracking
        meta = analyzer.meta
        self.spec = HeadSpec() if meta is None else HeadSpec.from_metadata(meta, analyzer.heads)

    def estimate(self, face: Face) -> AttributeEstimate:
        acc = AttributeAccumulator(self.spec, self.tracking)
        acc.add(face.attributes, face.face_px, face.detection.score, face.pose)
        return acc.estimate(detail=True)

    def hidden(self, face: Face, est: AttributeEstimate) -> dict[str, str]:
        """What the model said that the daemon would not publish, with the rule that hides it."""
        t = self.tracking
        if est.minor:
            return {"attributes": f"judged under tracking.min_age_years = {t.min_age_years}: counted only"}
        out: dict[str, str] = {}
        for name, head in est.heads().items():
            if head.label != UNKNOWN:
                continue
            raw = getattr(face.attributes, name, None)
            said = f"model says {raw.top[0]} (p {raw.top[1]:.2f})" if raw is not None else "no result"
            if head.reason == "small_face":
                out[name] = f"{said}; face {face.face_px:.0f} px < tracking.min_face_px = {t.min_face_px:g}"
            elif head.reason == "low_confidence":
                bar = t.min_confidence.for_head(name)
                out[name] = f"{said}; below tracking.min_confidence.{name} = {bar:g}: published as unknown"
        return out


def face_json(face: Face, gate: Gate, face_crop: bool = False) -> dict[str, Any]:
    """Box, score and pose, then the attributes exactly as the daemon would publish them, then what it hides."""
    det = face.detection
    out: dict[str, Any] = {"box": det.box.as_list()}
    if face_crop:
        out["face_crop"] = True
    else:
        out["score"] = round(float(det.score), 4)
    if face.pose is not None:
        out["pose"] = {
            "yaw": round(face.pose.yaw, 1),
            "pitch": round(face.pose.pitch, 1),
            "roll": round(face.pose.roll, 1),
        }
    if face.attributes is not None:
        est = gate.estimate(face)
        out.update(attributes_payload(est, with_probs=True))
        hidden = gate.hidden(face, est)
        if hidden:
            out["not_published"] = hidden
    return out


def classify_images(
    cfg: AgentConfig,
    paths: list[Path],
    *,
    face_crop: bool = False,
    limits: imageio.ImageLimits | None = None,
    skips: imageio.SkipCounter | None = None,
) -> Iterator[dict[str, Any]]:
    """One JSON-able record per image: its faces (gated like the daemon), or a one-line error for a skipped image."""
    skips = skips if skips is not None else imageio.SkipCounter("classify")
    limits = limits or imageio.ImageLimits()
    with Analyzer(cfg) as analyzer:
        gate = Gate(cfg, analyzer)
        for path in imageio.expand(paths):
            try:
                image = imageio.read_bgr(path, limits)
            except imageio.ImageSkip as exc:
                skips.skip(exc)
                yield {"file": str(path), "error": f"{exc.reason}: {exc.detail}"}
                continue
            faces = analyzer.analyze_crop(image) if face_crop else analyzer.analyze(image)
            record: dict[str, Any] = {
                "file": str(path),
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "faces": [face_json(f, gate, face_crop) for f in faces],
            }
            if not faces:
                record["hint"] = NO_FACE_HINT
            yield record


def stills_analytics(camera_id: str, cfg: AgentConfig, meta: Any, heads: tuple[str, ...]) -> StillsAnalytics:
    """Analytics for a folder of independent photos (see StillsAnalytics)."""
    return StillsAnalytics(camera_id, cfg.tracking, cfg.analytics, meta, heads)


class StillsAnalytics(AnalyticsAdapter):
    """Every frame is an independent photo: its faces are visits that end with it (reason `still`), followed by
    that photo's own summary, so a folder of six people gives six visits, each with its own attributes."""

    def __init__(self, camera_id: str, tracking: Any, analytics: Any, meta: Any, heads: tuple[str, ...]) -> None:
        # A photo is seen exactly once: one detection must make a visit, not a blip dropped as noise.
        super().__init__(camera_id, tracking.model_copy(update={"confirm_frames": 1}), analytics, meta, heads)
        self.views: list[TrackView] = []  # the visits of the last photo, as they stood before it ended them

    def update(self, faces: list[Face], frame: Frame, classify: Classify | None = None) -> list[Outgoing]:
        out = super().update(faces, frame, classify)
        self.views = self.engine.tracker.present()
        return out + self._wrap(self.engine.flush(frame.ts, "still"))
