"""Per-camera analytics wiring: the analytics engine's messages become outgoing `cameras/<id>/…` messages."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from edge_agent.daemon.sinks import Outgoing
from edge_agent.records import Face, Frame


class CameraAnalytics:
    """Wraps analytics.engine.CameraAnalytics for one camera; `update()` turns one analysed frame into messages."""

    def __init__(self, camera_id: str, cfg: Any, meta: Any, enabled_heads: Sequence[str]) -> None:
        from edge_agent.analytics.engine import CameraAnalytics as Engine

        self.camera_id = camera_id
        self.engine = Engine.from_metadata(cfg.tracking, cfg.analytics, meta, enabled_heads)
        self._last_ts = 0.0

    def _wrap(self, messages: Sequence[Any]) -> list[Outgoing]:
        return [Outgoing(f"cameras/{self.camera_id}/{m.topic}", m.payload, m.schema, self.camera_id) for m in messages]

    def update(self, faces: list[Face], frame: Frame) -> list[Outgoing]:
        self._last_ts = frame.ts
        return self._wrap(self.engine.process(faces, frame.ts, frame.mono))

    def flush(self, reason: str) -> list[Outgoing]:
        """End every open visit (shutdown, pause, reload), with the partial summary and an empty audience."""
        return self._wrap(self.engine.flush(max(self._last_ts, time.time()), reason))

    def stats(self) -> dict[str, Any]:
        return dict(self.engine.stats())
