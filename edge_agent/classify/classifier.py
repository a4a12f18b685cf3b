"""AttributeClassifier: detections in a frame → per-face Attributes, for the enabled heads only."""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

import numpy as np

from edge_agent.classify.model import AttributeModel, views_mean
from edge_agent.classify.preprocess import crop_face, to_input
from edge_agent.records import Attributes, Detection, HeadResult

log = logging.getLogger(__name__)

ATTRIBUTE_HEADS: dict[str, tuple[str, ...]] = {"age": ("age", "age_years"), "gender": ("gender",), "race": ("race",)}


def calibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Renormalised probabilities with the head's fitted temperature: softmax(log p / T), i.e. p^(1/T) / sum.

    A trained softmax is rarely calibrated: v2's is under-confident (smoothed and ordinal targets, heavy augmentation),
    so its fitted T < 1 sharpens it; an over-confident model gets T > 1. The toolchain fits T on validation; it makes
    `p` mean what it says, which the `unknown` thresholds and per-visit averaging rely on. With test-time flip on,
    T is applied to the flip-averaged probabilities, which is what `quantize --flip` fits it on.
    """
    p = np.clip(probs.astype(np.float64), 0.0, None)
    if temperature != 1.0:
        p = np.power(np.maximum(p, 1e-6), 1.0 / temperature)
    total = p.sum()
    return p / total if total > 0 else np.full(p.shape, 1.0 / p.size)


class AttributeClassifier:
    """Loads the model once; classifies any number of faces per frame without reloading."""

    def __init__(
        self, model_path: str | Path | None, enabled: tuple[str, ...] = ("age", "gender", "race"), num_threads: int = 1
    ) -> None:
        unknown = [a for a in enabled if a not in ATTRIBUTE_HEADS]
        if unknown:
            raise ValueError(f"unknown attribute(s) {', '.join(unknown)}; choose from {', '.join(ATTRIBUTE_HEADS)}")
        self.model = AttributeModel(model_path, num_threads=num_threads)
        have = self.model.available_heads()
        self.enabled = tuple(a for a in enabled if ATTRIBUTE_HEADS[a][0] in have)
        # A disabled attribute's output tensors are never read, dequantised, or stored.
        self.heads = tuple(h for a in self.enabled for h in ATTRIBUTE_HEADS[a] if h in have)
        self.latency_ms: deque[float] = deque(maxlen=2048)

    @property
    def metadata(self):  # type: ignore[no-untyped-def]
        return self.model.meta

    @property
    def views_per_face(self) -> int:
        """Model invocations per classified face: 2 with the metadata's test-time flip (the face and its mirror)."""
        return 2 if self.model.meta.flip else 1

    def set_enabled(self, enabled: tuple[str, ...]) -> None:
        """Switch attributes on or off at run time (remote reload); never enables a head the model lacks."""
        have = self.model.available_heads()
        self.enabled = tuple(a for a in enabled if a in ATTRIBUTE_HEADS and ATTRIBUTE_HEADS[a][0] in have)
        self.heads = tuple(h for a in self.enabled for h in ATTRIBUTE_HEADS[a] if h in have)

    def classify_crop(self, crop_bgr: np.ndarray) -> Attributes:
        """Classify an already-cropped face (size × size BGR)."""
        if not self.heads:
            return Attributes()
        meta = self.model.meta
        t0 = time.perf_counter()
        x = to_input(crop_bgr, meta.preprocess)
        # With the metadata's test-time flip on, the mean over the face and its mirror image.
        out = views_mean(lambda v: self.model.predict(v, self.heads), x, meta.flip)
        self.latency_ms.append((time.perf_counter() - t0) * 1000.0)
        labels = meta.labels

        def head(name: str) -> HeadResult | None:
            if name not in out:
                return None
            return HeadResult(
                labels[name], tuple(float(v) for v in calibrated(out[name], meta.temperature.get(name, 1.0)))
            )

        years = float(out["age_years"][0]) if "age_years" in out else None
        return Attributes(age=head("age"), age_years=years, gender=head("gender"), race=head("race"))

    def classify(self, image_bgr: np.ndarray, detections: list[Detection]) -> list[Attributes]:
        """One Attributes per detection, in order. No heads enabled → no inference at all."""
        if not self.heads:
            return [Attributes() for _ in detections]
        meta = self.model.meta
        return [self.classify_crop(crop_face(image_bgr, d.box, meta.crop, meta.preprocess.size)) for d in detections]

    def close(self) -> None:
        self.model.close()
