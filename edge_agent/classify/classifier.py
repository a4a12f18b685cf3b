"""AttributeClassifier: detections in a frame → per-face Attributes, for the enabled heads only."""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

import numpy as np

from edge_agent.classify.model import AttributeModel
from edge_agent.classify.preprocess import crop_face, to_input
from edge_agent.records import Attributes, Detection, HeadResult

log = logging.getLogger(__name__)

ATTRIBUTE_HEADS: dict[str, tuple[str, ...]] = {"age": ("age", "age_years"), "gender": ("gender",), "race": ("race",)}


class AttributeClassifier:
    """Loads the model once; classifies any number of faces per frame without reloading."""

    def __init__(self, model_path: str | Path | None, enabled: tuple[str, ...] = ("age", "gender", "race"),
                 num_threads: int = 1) -> None:
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

    def set_enabled(self, enabled: tuple[str, ...]) -> None:
        """Switch attributes on or off at run time (remote reload); never enables a head the model lacks."""
        have = self.model.available_heads()
        self.enabled = tuple(a for a in enabled if a in ATTRIBUTE_HEADS and ATTRIBUTE_HEADS[a][0] in have)
        self.heads = tuple(h for a in self.enabled for h in ATTRIBUTE_HEADS[a] if h in have)

    def classify_crop(self, crop_bgr: np.ndarray) -> Attributes:
        """Classify an already-cropped face (size × size BGR)."""
        if not self.heads:
            return Attributes()
        t0 = time.perf_counter()
        out = self.model.predict(to_input(crop_bgr, self.model.meta.preprocess), self.heads)
        self.latency_ms.append((time.perf_counter() - t0) * 1000.0)
        labels = self.model.meta.labels

        def head(name: str) -> HeadResult | None:
            if name not in out:
                return None
            p = np.clip(out[name].astype(np.float64), 0.0, None)
            p = p / p.sum() if p.sum() > 0 else np.full(p.shape, 1.0 / p.size)
            return HeadResult(labels[name], tuple(float(v) for v in p))

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
