"""Per-camera analytics facade: faces in, ready-to-publish (topic, schema, payload) messages out.

The composition root owns one CameraAnalytics per camera and calls `process(faces, ts, mono)` for every
analysed frame (also frames with no face, so visits end and intervals close on time) and `flush(ts)` on stop or
pause. Topics are relative to `cameras/<camera_id>/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_agent.analytics.audience import SCHEMA_AUDIENCE, AudienceMonitor
from edge_agent.analytics.config import AnalyticsConfig
from edge_agent.analytics.summary import SCHEMA_SUMMARY, IntervalSummarizer, SummaryModel
from edge_agent.modelmeta import ModelMetadata
from edge_agent.records import Face, TrackHint
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import HeadSpec, TrackEnd, TrackEvent
from edge_agent.track.payloads import SCHEMA_TRACKS, track_payload
from edge_agent.track.tracker import Classify, Tracker


@dataclass(frozen=True, slots=True)
class AnalyticsMessage:
    """One message for the publisher: `topic` is "tracks", "audience" or "summary" under cameras/<camera_id>/."""

    topic: str
    schema: str
    payload: dict[str, Any] = field(compare=False)
    event: TrackEvent | None = field(default=None, compare=False)  # the track event behind a tracks message


class CameraAnalytics:
    """Tracker + interval summaries + live audience for one camera."""

    def __init__(
        self,
        tracking: TrackerConfig,
        analytics: AnalyticsConfig,
        spec: HeadSpec,
        model: SummaryModel | None = None,
    ) -> None:
        self.spec = spec
        self._analytics = analytics
        self.tracker = Tracker(tracking, spec, analytics.attention, analytics.visits)
        self._summary = IntervalSummarizer(analytics.summary, spec, model, tracking.min_age_years)
        self._audience = AudienceMonitor(analytics.audience)

    @classmethod
    def from_metadata(
        cls, tracking: TrackerConfig, analytics: AnalyticsConfig, meta: ModelMetadata | None, enabled: Iterable[str]
    ) -> CameraAnalytics:
        """Build from the attribute model's metadata and the enabled heads (None metadata: no attributes)."""
        spec = HeadSpec() if meta is None else HeadSpec.from_metadata(meta, enabled)
        model = None if meta is None else SummaryModel.from_metadata(meta)
        return cls(tracking, analytics, spec, model)

    def hints(self, t: float) -> list[TrackHint]:
        """The tracks' predicted boxes at monotonic time `t`, for detection scheduling."""
        return self.tracker.hints(t)

    def process(
        self, faces: Sequence[Face], ts: float, mono: float | None = None, classify: Classify | None = None
    ) -> list[AnalyticsMessage]:
        """One analysed frame -> messages to publish (track events, maybe a summary, maybe an audience)."""
        out: list[AnalyticsMessage] = []
        events = self.tracker.update(faces, ts, mono, classify)
        if self._analytics.summary.enabled:
            summary = self._summary.tick(ts, present=self.tracker.present_count())
            if summary is not None:
                out.append(AnalyticsMessage("summary", SCHEMA_SUMMARY, summary))
        out.extend(self._track_messages(events, ts))
        # While rate-limited nothing could be sent, so the views are not even built (the audience is the costliest
        # part per frame); a change is picked up by the first frame after the limit, exactly as before.
        if self._analytics.audience.enabled and self._audience.due(ts if mono is None else mono):
            audience = self._audience.update(self.tracker.present(), ts, mono)
            if audience is not None:
                out.append(AnalyticsMessage("audience", SCHEMA_AUDIENCE, audience))
        return out

    def flush(self, ts: float, reason: str = "shutdown") -> list[AnalyticsMessage]:
        """End every visit and send the partial summary and an empty audience (stop, pause)."""
        out = self._track_messages(self.tracker.flush(reason), ts)
        if self._analytics.summary.enabled:
            summary = self._summary.flush(ts)
            if summary is not None:
                out.append(AnalyticsMessage("summary", SCHEMA_SUMMARY, summary))
        if self._analytics.audience.enabled:
            audience = self._audience.update([], ts, force=True)
            if audience is not None:
                out.append(AnalyticsMessage("audience", SCHEMA_AUDIENCE, audience))
        return out

    def _track_messages(self, events: Sequence[TrackEvent], ts: float) -> list[AnalyticsMessage]:
        out = []
        for ev in events:
            if isinstance(ev, TrackEnd) and self._analytics.summary.enabled:
                self._summary.add(ev, ts)
            out.append(AnalyticsMessage("tracks", SCHEMA_TRACKS, track_payload(ev), ev))
        return out

    def stats(self) -> dict[str, int]:
        """Tracker counters plus audience messages held back by the rate limit."""
        return dict(self.tracker.stats(), audience_rate_limited=self._audience.suppressed)
