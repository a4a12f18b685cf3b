"""Our contender built from the agent's own parts: the configured detector and the attribute classifier."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.dataset import GENDERS, age_group
from benchmarks.metrics import Prediction
from edge_agent.modelmeta import ModelMetadata, load_metadata
from edge_agent.records import Attributes, Detection

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "edge_agent" / "models" / "attributes_int8.tflite"


def detector(overrides: dict[str, Any] | None = None, threads: int = 1) -> Any:
    """The agent's detector from a [detector] section (defaults = the agent's default config)."""
    from edge_agent.detect.base import create_detector
    from edge_agent.detect.config import DetectorConfig

    known = {k: v for k, v in (overrides or {}).items() if k in DetectorConfig.model_fields}
    return create_detector(DetectorConfig(**{"num_threads": threads, **known}))


def classifier(model_path: Path, threads: int = 1) -> Any:
    """The agent's attribute classifier with every head the model has enabled."""
    from edge_agent.classify import AttributeClassifier

    meta = load_metadata(model_path)
    return AttributeClassifier(model_path, tuple(h for h in ("age", "gender", "race") if h in meta.heads), threads)


def nearest(dets: list[Detection], cx: float, cy: float) -> Detection | None:
    """The detection whose centre is nearest (cx, cy)."""
    if not dets:
        return None
    return min(dets, key=lambda d: (d.box.center[0] - cx) ** 2 + (d.box.center[1] - cy) ** 2)


@dataclass(frozen=True, slots=True)
class Decoder:
    """Maps our Attributes onto the benchmark's label indices using the model's own metadata."""

    meta: ModelMetadata

    def prediction(self, attrs: Attributes | None) -> Prediction:
        if attrs is None or attrs.gender is None:
            return Prediction(None, None, None)
        gender = GENDERS.index(attrs.gender.top[0].lower())
        grp = None
        if attrs.age is not None:
            i = int(np.argmax(attrs.age.probs))
            grp = age_group(self.meta.age_group_edges[i]) if self.meta.age_group_edges else i
        years = attrs.age_years
        return Prediction(gender, None if years is None else float(years), grp)


def decoder(model_path: Path) -> Decoder:
    return Decoder(load_metadata(model_path))
