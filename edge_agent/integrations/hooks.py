"""The one object the daemon holds for the integrations: it taps submitted messages and closes everything."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from edge_agent.config import AgentConfig

if TYPE_CHECKING:
    from edge_agent.integrations.home_assistant import DiscoveryPublisher
    from edge_agent.integrations.metrics import MetricsServer
    from edge_agent.publish.mqtt import Publisher

log = logging.getLogger(__name__)


class TappedPublisher:
    """Forwards `submit` to the real publisher, then shows the payload to the integrations (never failing it)."""

    def __init__(self, publisher: Publisher, integrations: Integrations) -> None:
        self._publisher = publisher
        self._integrations = integrations

    def submit(
        self,
        topic_suffix: str,
        payload: dict[str, Any],
        *,
        schema: str,
        camera_id: str | None = None,
        retain: bool = False,
    ) -> str:
        msg_id = self._publisher.submit(topic_suffix, payload, schema=schema, camera_id=camera_id, retain=retain)
        self._integrations.observe(topic_suffix, payload)
        return msg_id


class Integrations:
    """What the config enabled; `tap(publisher)` for the daemon's sink, `close()` at teardown."""

    def __init__(self, metrics: MetricsServer | None = None, discovery: DiscoveryPublisher | None = None) -> None:
        self.metrics = metrics
        self.discovery = discovery

    @property
    def enabled(self) -> bool:
        return self.metrics is not None or self.discovery is not None

    def tap(self, publisher: Publisher) -> Any:
        """The publisher for the sink: the real one when nothing needs to watch the traffic."""
        return TappedPublisher(publisher, self) if self.metrics is not None else publisher

    def observe(self, topic_suffix: str, payload: dict[str, Any]) -> None:
        if self.metrics is None:
            return
        if topic_suffix == "stats":
            self.metrics.collector.update(stats=payload)
        elif topic_suffix == "info":
            models = payload.get("models") or {}
            attrs = models.get("attributes") or {}
            self.metrics.collector.update(
                info={
                    "version": str((payload.get("software") or {}).get("version", "")),
                    "attribute_model": str(attrs.get("name", "")),
                    "attribute_model_version": str(attrs.get("version", "")),
                }
            )

    def close(self) -> None:
        for part in (self.discovery, self.metrics):
            if part is not None:
                part.close()


def start(cfg: AgentConfig, device_id: str, publisher: Publisher, timings: object) -> Integrations:
    """Build and start what the config enables (raises ConfigError, e.g. for a port already in use)."""
    metrics = discovery = None
    if cfg.metrics.listen is not None:
        from edge_agent.integrations.metrics import MetricsServer

        metrics = MetricsServer(cfg.metrics, device_id, publisher.stats)
        metrics.instrument(timings)
    if cfg.integrations.home_assistant.enabled:
        from edge_agent.integrations.home_assistant import DiscoveryPublisher

        discovery = DiscoveryPublisher(cfg, device_id)
        discovery.start()
    return Integrations(metrics, discovery)
