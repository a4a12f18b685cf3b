"""Run the agent's own BlazeFace detector over training images once, and cache its boxes by content hash.

Training, calibration and verification crops are then cut from these boxes with the device's crop function
(`edge_agent.classify.preprocess.crop_face`), so the model learns the framing it will see on a camera.

Tight face chips (UTKFace) have no context, and BlazeFace finds 4% of them as they are. Pasted into the centre of a
grey canvas twice their size it finds 99% (measured on 300 chips: `python -m benchmarks.detect_probe`-style probe,
see MODEL_CARD.md). Such sources are padded; photos with context (All-Age-Faces) go in as they are, and are padded
only when nothing is found. An image where the detector finds nothing falls back to its source's median box.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

PAD_FRACTION = 0.5  # canvas border per side, as a fraction of the image side
PAD_VALUE = (127, 127, 127)
CACHE_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class FaceBox:
    """The detector's face in source-image pixels (x1, y1, x2, y2), its score and 6 keypoints (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: tuple[float, ...]  # 12 values
    padded: bool

    def to_json(self) -> list[float]:
        return [*self.box, self.score, float(self.padded), *self.keypoints]

    @staticmethod
    def from_json(v: list[float]) -> FaceBox:
        return FaceBox(tuple(v[:4]), v[4], tuple(v[6:18]), bool(v[5]))  # type: ignore[arg-type]


def _pick(dets: list, w: int, h: int) -> object | None:
    """The face the label belongs to: high score, near the image centre (datasets are centred on their subject)."""
    if not dets:
        return None
    return max(dets, key=lambda d: d.score - 2 * abs(d.box.center[0] / w - 0.5) - 2 * abs(d.box.center[1] / h - 0.5))


def detect_one(detector: object, bgr: np.ndarray, pad_first: bool) -> FaceBox | None:
    """Best centred face of an image; tries the padded canvas first for tight chips, else as a fallback."""
    h, w = bgr.shape[:2]
    tries = (True, False) if pad_first else (False, True)
    for padded in tries:
        if padded:
            p = round(max(h, w) * PAD_FRACTION)
            img = cv2.copyMakeBorder(bgr, p, p, p, p, cv2.BORDER_CONSTANT, value=PAD_VALUE)
        else:
            p, img = 0, bgr
        d = _pick(detector.detect(img), img.shape[1], img.shape[0])  # type: ignore[attr-defined]
        if d is not None:
            b = d.box  # type: ignore[attr-defined]
            kps = (np.asarray(d.keypoints, np.float64) - p).reshape(-1)  # type: ignore[attr-defined]
            return FaceBox(
                (b.x1 - p, b.y1 - p, b.x2 - p, b.y2 - p),
                float(d.score),  # type: ignore[attr-defined]
                tuple(float(v) for v in kps),
                padded,
            )
    return None


def cache_key(detector_path: Path, config_json: str) -> str:
    """Boxes depend on the detector's weights and settings, and on the padding rule: any change is a new cache."""
    h = hashlib.sha256(Path(detector_path).read_bytes())
    h.update(config_json.encode())
    h.update(f"pad={PAD_FRACTION},{PAD_VALUE},schema={CACHE_SCHEMA}".encode())
    return h.hexdigest()[:16]


class BoxCache:
    """sha256 of image bytes → FaceBox (or None: detector found nothing). One JSON file per detector key."""

    def __init__(self, cache_dir: Path | None, key: str) -> None:
        self.path = (Path(cache_dir) / f"boxes_{key}.json") if cache_dir else None
        self.entries: dict[str, list[float] | None] = {}
        self.hits = self.misses = 0
        if self.path is not None and self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                log.warning("box cache %s unreadable (%s); rebuilding it", self.path, exc)

    def get(self, sha: str) -> tuple[bool, FaceBox | None]:
        if sha in self.entries:
            self.hits += 1
            v = self.entries[sha]
            return True, (FaceBox.from_json(v) if v is not None else None)
        self.misses += 1
        return False, None

    def put(self, sha: str, fb: FaceBox | None) -> None:
        self.entries[sha] = fb.to_json() if fb is not None else None

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries))
        tmp.replace(self.path)


# Settings that do not change what a full-frame detection returns: the key ignores them, so scheduling options,
# thread counts or model folders added later do not throw the cache away.
NOT_DETECTION = {"schedule", "num_threads", "models_dir", "model_path"}


def detection_settings(cfg: object) -> str:
    """Canonical JSON of the settings that decide a full-frame detection (sorted keys)."""
    import json as _json

    d = cfg.model_dump(mode="json", exclude=NOT_DETECTION)  # type: ignore[attr-defined]
    return _json.dumps(d, sort_keys=True)


def default_detector() -> tuple[object, Path, str]:
    """The agent's default detector, exactly as the daemon builds it, with its model path and settings."""
    from edge_agent.detect.base import create_detector
    from edge_agent.detect.config import DetectorConfig

    cfg = DetectorConfig()
    det = create_detector(cfg)
    return det, Path(det.model_path), detection_settings(cfg)  # type: ignore[attr-defined]


def detect_boxes(
    items: list[tuple[str, Path, bool]],
    cache_dir: Path | None,
    detector: object | None = None,
    detector_path: Path | None = None,
    config_json: str = "",
) -> tuple[dict[str, FaceBox | None], Counter[str]]:
    """Boxes for (sha, path, pad_first) items, from the cache where present, else by running the detector.

    Returns sha → FaceBox (None where nothing was found) and counts: cached, detected, padded, not found.
    """
    if detector is None:
        detector, detector_path, config_json = default_detector()
    assert detector_path is not None
    cache = BoxCache(cache_dir, cache_key(detector_path, config_json))
    out: dict[str, FaceBox | None] = {}
    counts: Counter[str] = Counter()
    todo = []
    for sha, path, pad_first in items:
        hit, fb = cache.get(sha)
        if hit:
            out[sha] = fb
            counts["cached"] += 1
        else:
            todo.append((sha, path, pad_first))
    if todo:
        log.info("running the agent's detector over %d images (%d boxes cached)", len(todo), counts["cached"])
    for i, (sha, path, pad_first) in enumerate(todo, 1):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        fb = detect_one(detector, bgr, pad_first) if bgr is not None else None
        cache.put(sha, fb)
        out[sha] = fb
        counts["detected"] += 1
        if i % 2000 == 0:
            log.info("  detector: %d/%d images", i, len(todo))
            cache.save()
    if todo:
        cache.save()
    for fb in out.values():
        counts["not found" if fb is None else ("found on padded canvas" if fb.padded else "found as is")] += 1
    return out, counts
