"""Interval summaries (`cameras/<camera_id>/summary`): visits that ended in each interval, counted once.

Counting rule: a visit is counted, with its whole dwell and attention, in the interval in which its `end` record
is emitted (after `visit_gap_s`), so every visit is counted exactly once and a summary matches the `end`
records published during its interval. Visits still in progress at the interval end are reported only as
`present_at_end`. Minors (children gating) appear only as counts in `minors`; the other figures, dwell buckets
and attribute breakdowns cover the visits that are not minors. Intervals are aligned to multiples of
`interval_s` since the epoch, so summaries from several devices line up.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from edge_agent.analytics.config import SummaryConfig
from edge_agent.modelmeta import ModelMetadata
from edge_agent.timefmt import iso_ts
from edge_agent.track.events import UNKNOWN, HeadSpec, TrackEnd

log = logging.getLogger(__name__)

SCHEMA_SUMMARY = "edge-agent/summary/1"


@dataclass(frozen=True, slots=True)
class SummaryModel:
    """Which attribute model produced the numbers, so results of different models are never mixed silently."""

    name: str
    version: str
    sha256: str

    @classmethod
    def from_metadata(cls, meta: ModelMetadata) -> SummaryModel:
        return cls(name=meta.name, version=meta.version, sha256=meta.sha256)

    def payload(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def _split() -> dict[str, int]:
    return {"viewers": 0, "passers_by": 0}


class IntervalSummarizer:
    """Collects TrackEnd events; `tick(ts)` returns the payload of an interval once `ts` has passed its end."""

    def __init__(self, cfg: SummaryConfig, spec: HeadSpec, model: SummaryModel | None, min_age_years: int = 0) -> None:
        self._cfg = cfg
        self._spec = spec
        self._model = model
        # Under-age groups are never reported by label (a minor is only counted), so they are left out.
        mask = spec.minor_mask(min_age_years)
        self._labels = {
            head: tuple(lab for i, lab in enumerate(labels) if head != "age" or mask is None or not mask[i])
            for head, labels in spec.labels.items()
        }
        self._start: float | None = None
        self._ends: list[TrackEnd] = []

    def _align(self, ts: float) -> float:
        return math.floor(ts / self._cfg.interval_s) * self._cfg.interval_s

    def add(self, end: TrackEnd, ts: float) -> None:
        """Count a visit that ended (its record was emitted) at wall-clock `ts`."""
        if self._start is None:
            self._start = self._align(ts)
        self._ends.append(end)

    def tick(self, ts: float, present: int = 0) -> dict[str, Any] | None:
        """Close the current interval if `ts` is past its end; `present` = visits in progress right now."""
        if self._start is None:
            self._start = self._align(ts)
            return None
        end = self._start + self._cfg.interval_s
        if ts < end:
            return None
        payload = self.build(self._start, end, present, partial=False)
        skipped = int((ts - end) // self._cfg.interval_s)
        if skipped:
            log.info("no frames for %d summary interval(s); no summary is sent for them", skipped)
        self._start, self._ends = self._align(ts), []
        return payload

    def flush(self, ts: float, present: int = 0) -> dict[str, Any] | None:
        """Summary of the interval so far (marked partial), e.g. at shutdown; None if nothing was started."""
        if self._start is None:
            return None
        payload = self.build(self._start, max(ts, self._start), present, partial=True)
        self._start, self._ends = None, []
        return payload

    def build(self, start: float, end: float, present: int, partial: bool) -> dict[str, Any]:
        """The summary payload for the collected visits."""
        adults = [e for e in self._ends if not e.attributes.minor]
        minors = _split()
        for e in self._ends:
            if e.attributes.minor:
                minors["viewers" if e.viewer else "passers_by"] += 1
        viewers = sum(1 for e in adults if e.viewer)
        dwell = sum(e.dwell_s for e in adults)
        attention = sum(e.attention_s for e in adults)
        firsts = [e.time_to_first_glance_s for e in adults if e.viewer and e.time_to_first_glance_s is not None]
        out: dict[str, Any] = {
            "interval_start": iso_ts(start),
            "interval_end": iso_ts(end),
            "interval_s": self._cfg.interval_s,
            "partial": partial,
            "model": None if self._model is None else self._model.payload(),
            "heads": list(self._spec.heads),
            "opportunities_to_see": len(self._ends),
            "viewers": viewers,
            "passers_by": len(adults) - viewers,
            "short_visits": sum(1 for e in adults if e.short),
            "minors": minors,
            "present_at_end": present,
            "dwell_s": {"total": round(dwell, 3), "average": round(dwell / len(adults), 3) if adults else 0.0},
            "attention_s": {
                "total": round(attention, 3),
                "average": round(attention / len(adults), 3) if adults else 0.0,
                "average_per_viewer": round(attention / viewers, 3) if viewers else 0.0,
            },
            "time_to_first_glance_s": {"average": round(sum(firsts) / len(firsts), 3) if firsts else None},
            "dwell_buckets": self._buckets(adults),
        }
        for head, labels in self._labels.items():
            out[head] = self._by_label(head, labels, adults)
        return out

    def _buckets(self, adults: list[TrackEnd]) -> list[dict[str, Any]]:
        edges = [0.0, *self._cfg.dwell_buckets_s]
        uppers: list[float | None] = [*edges[1:], None]
        counts = [_split() for _ in edges]
        for e in adults:
            i = sum(1 for hi in self._cfg.dwell_buckets_s if e.dwell_s >= hi)
            counts[i]["viewers" if e.viewer else "passers_by"] += 1
        return [{"min_s": lo, "max_s": hi, **c} for lo, hi, c in zip(edges, uppers, counts, strict=True)]

    @staticmethod
    def _by_label(head: str, labels: tuple[str, ...], adults: list[TrackEnd]) -> dict[str, dict[str, int]]:
        counts = {lab: _split() for lab in (*labels, UNKNOWN)}
        for e in adults:
            est = e.attributes.heads().get(head)
            label = est.label if est is not None and est.label in counts else UNKNOWN
            counts[label]["viewers" if e.viewer else "passers_by"] += 1
        return counts
