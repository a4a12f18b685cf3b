"""Per-camera analytics wiring: the analytics engine's messages become outgoing `cameras/<id>/…` messages."""

from __future__ import annotations

import time
from collections.abc import Sequence

from edge_agent.analytics.config import AnalyticsConfig
from edge_agent.analytics.engine import AnalyticsMessage, CameraAnalytics
from edge_agent.daemon.sinks import Outgoing
from edge_agent.modelmeta import ModelMetadata
from edge_agent.records import Face, Frame, TrackHint
from edge_agent.track.config import TrackerConfig
from edge_agent.track.tracker import Classify


class AnalyticsAdapter:
    """Wraps analytics.engine.CameraAnalytics for one camera; `update()` turns one analysed frame into messages."""

    def __init__(
        self,
        camera_id: str,
        tracking: TrackerConfig,
        analytics: AnalyticsConfig,
        meta: ModelMetadata | None,
        enabled_heads: Sequence[str],
    ) -> None:
        self.camera_id = camera_id
        self.engine = CameraAnalytics.from_metadata(tracking, analytics, meta, enabled_heads)
        self._last_ts = 0.0

    def _wrap(self, messages: Sequence[AnalyticsMessage]) -> list[Outgoing]:
        return [Outgoing(f"cameras/{self.camera_id}/{m.topic}", m.payload, m.schema, self.camera_id) for m in messages]

    def hints(self, t: float) -> list[TrackHint]:
        return self.engine.hints(t)

    def update(self, faces: list[Face], frame: Frame, classify: Classify | None = None) -> list[Outgoing]:
        self._last_ts = frame.ts
        return self._wrap(self.engine.process(faces, frame.ts, frame.mono, classify))

    def flush(self, reason: str) -> list[Outgoing]:
        """End every open visit (shutdown, pause, reload), with the partial summary and an empty audience."""
        return self._wrap(self.engine.flush(max(self._last_ts, time.time()), reason))

    def stats(self) -> dict[str, int]:
        return self.engine.stats()
