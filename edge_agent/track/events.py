"""Frozen records the tracker emits: per-visit events and the aggregated (or provisional) attribute estimate."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from edge_agent.modelmeta import ModelMetadata
from edge_agent.records import Box, Pose

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class HeadSpec:
    """The enabled heads of the loaded model: their labels (from the model metadata) and the age-group edges."""

    labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # enabled class heads only
    age_group_edges: tuple[int, ...] = ()  # lower bound in years of each age label
    age_years: bool = False  # the age_years regression is reported (it comes with the age head)

    @classmethod
    def from_metadata(cls, meta: ModelMetadata, enabled: Iterable[str]) -> HeadSpec:
        """Keep only the heads that are both in the model and enabled in config."""
        on = set(enabled)
        labels = {h: meta.labels[h] for h in meta.labels if h in on}
        edges = meta.age_group_edges if "age" in labels else ()
        return cls(labels=labels, age_group_edges=tuple(edges), age_years="age" in labels)

    @property
    def heads(self) -> tuple[str, ...]:
        return tuple(self.labels)

    def minor_mask(self, min_age_years: int) -> np.ndarray | None:
        """Boolean mask over the age labels of the groups treated as under age, None when gating is impossible."""
        if min_age_years <= 0 or "age" not in self.labels or not self.age_group_edges:
            return None
        return np.asarray(self.age_group_edges) < min_age_years


@dataclass(frozen=True, slots=True)
class HeadEstimate:
    """One head's answer for a visit: the top label (or `unknown`) with the averaged distribution behind it."""

    label: str  # a label from the model metadata, or "unknown"
    p: float | None  # averaged probability of the top class (None when there was no usable sample)
    probs: tuple[tuple[str, float], ...] = ()  # averaged distribution, label order of the model
    reason: str | None = None  # why unknown: "low_confidence", "small_face" or "no_samples"


@dataclass(frozen=True, slots=True)
class AttributeEstimate:
    """Aggregated attributes of a visit. A disabled head is None; a minor carries no attributes at all."""

    age: HeadEstimate | None = None
    age_years: float | None = None
    gender: HeadEstimate | None = None
    race: HeadEstimate | None = None
    minor: bool | None = None  # None when it cannot be told (age head disabled or no usable sample)

    def heads(self) -> dict[str, HeadEstimate]:
        """The class heads that are present, by name."""
        out = {"age": self.age, "gender": self.gender, "race": self.race}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True, slots=True)
class TrackNew:
    """A visit was confirmed (seen in `confirm_frames` detections); `ts` is when it was first seen."""

    track_id: str
    ts: float
    box: Box
    score: float

    kind = "new"


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """Progress of a visit, at most once per `update_interval_s`; attributes are provisional."""

    track_id: str
    ts: float
    start_ts: float
    box: Box
    dwell_s: float
    looking: bool
    pose: Pose | None
    attention_s: float
    glances: int
    attributes: AttributeEstimate

    kind = "update"


@dataclass(frozen=True, slots=True)
class TrackEnd:
    """A visit ended (gone for `visit_gap_s`, or flushed); `ts` is the last time the face was seen."""

    track_id: str
    ts: float
    start_ts: float
    dwell_s: float
    samples: int
    attention_s: float
    glances: int
    time_to_first_glance_s: float | None
    viewer: bool  # looked (a glance of at least min_glance_s) and not a passer-by by dwell/samples
    short: bool  # below min_dwell_s or min_samples
    reconnects: int  # gaps bridged inside the visit
    attributes: AttributeEstimate
    reason: str  # "gone" or what flushed it ("shutdown", "paused", ...)
    classified: int = 0  # faces of the visit that were classified
    margin: float = 0.0  # how far its labels were from flipping (AttributeAccumulator.decision_margin); not sent

    kind = "end"


TrackEvent = TrackNew | TrackUpdate | TrackEnd


@dataclass(frozen=True, slots=True)
class TrackView:
    """A track present right now, for the live audience."""

    track_id: str
    start_ts: float
    dwell_s: float
    looking: bool
    attention_s: float
    box: Box
    attributes: AttributeEstimate
