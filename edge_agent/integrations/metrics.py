"""The Prometheus endpoint (`[metrics] listen`): the `stats` figures, live publisher state and latency histograms.

Counters come from the totals of the latest `stats` message (they run since the process started, which is what
Prometheus counters mean), so the endpoint adds no bookkeeping to the pipeline. The publisher's connection and
outbox figures are read live at each scrape. Inference latencies are real histograms: every sample a stage
records in its latency window is also observed into a `prometheus_client.Histogram`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, PlatformCollector, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from edge_agent.config.errors import ConfigError
from edge_agent.integrations.config import MetricsConfig, is_loopback

log = logging.getLogger(__name__)

NS = "edge_agent"
# 0.5 ms … 2 s: a face classification is ~1.5 ms, a frame ~10 ms on a Pi-class CPU, a stall is seconds
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, float("inf"))
CAMERA_COUNTERS = {
    "frames_captured": "Frames read from the camera.",
    "frames_processed": "Frames analysed to the end.",
    "frames_dropped": "Frames never analysed (inference busy, or paused).",
    "frames_bad": "Unusable frames (bad input).",
    "reopens": "Times the camera was reopened after a stall or an error.",
}
PUBLISH_COUNTERS = {
    "published": "Messages handed to the broker.",
    "acked": "Messages acknowledged by the broker (PUBACK).",
    "refused": "Messages the broker refused (PUBACK reason code >= 0x80).",
    "superseded": "Queued retained messages replaced by a newer one.",
    "reconnects": "Reconnections after a lost connection.",
    "connect_failures": "Failed connection attempts.",
}

StatsSource = Callable[[], Mapping[str, Any]]


class ObservedWindow:
    """Wraps a stage's latency window (anything with `add_ms`) so each sample also feeds one histogram (seconds).

    A wrapper rather than a subclass, so this package does not import the daemon that imports it.
    """

    def __init__(self, window: Any, histogram: Any) -> None:
        self._window = window
        self._histogram = histogram

    def add_ms(self, ms: float) -> None:
        self._window.add_ms(ms)
        self._histogram.observe(ms / 1000.0)

    def __getattr__(self, name: str) -> Any:  # percentiles(), count, ...: the window's own
        return getattr(self._window, name)


class StatsCollector(Collector):
    """Yields the latest `stats` totals and the live publisher figures at every scrape."""

    def __init__(self, device_id: str, publisher_stats: StatsSource) -> None:
        self.device_id = device_id
        self._publisher_stats = publisher_stats
        self._lock = threading.Lock()
        self._stats: Mapping[str, Any] = {}
        self._info: Mapping[str, str] = {}

    def update(self, stats: Mapping[str, Any] | None = None, info: Mapping[str, str] | None = None) -> None:
        with self._lock:
            if stats is not None:
                self._stats = stats
            if info is not None:
                self._info = info

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            stats, info = self._stats, self._info
        if info:
            fam = InfoMetricFamily(f"{NS}_build", "Software and model of this agent.")
            fam.add_metric([], {"device_id": self.device_id, **info})
            yield fam
        yield from _camera_metrics(stats.get("cameras") or {})
        try:
            pub = dict(self._publisher_stats())
        except Exception:  # a scrape must never fail the agent; the figures are just absent
            log.exception("metrics: publisher stats unavailable")
            pub = dict(stats.get("publish") or {})
        yield from _publish_metrics(pub)
        if "uptime_s" in stats:
            yield GaugeMetricFamily(f"{NS}_uptime_seconds", "Seconds since the agent started.", stats["uptime_s"])


def _camera_metrics(cameras: Mapping[str, Any]) -> Iterator[Metric]:
    for key, doc in CAMERA_COUNTERS.items():
        fam = CounterMetricFamily(f"{NS}_camera_{key}", doc, labels=["camera"])
        for cam, c in cameras.items():
            if isinstance(c.get(key), int | float):
                fam.add_metric([cam], c[key])
        yield fam
    up = GaugeMetricFamily(f"{NS}_camera_up", "1 while the camera delivers frames (status online).", labels=["camera"])
    fps = GaugeMetricFamily(f"{NS}_camera_fps", "Frame rates over the last stats interval.", labels=["camera", "kind"])
    for cam, c in cameras.items():
        up.add_metric([cam], 1.0 if c.get("status") == "online" else 0.0)
        for kind in ("capture", "processed", "dropped"):
            if isinstance(c.get(f"{kind}_fps"), int | float):
                fps.add_metric([cam, kind], c[f"{kind}_fps"])
    yield up
    yield fps


def _publish_metrics(pub: Mapping[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        f"{NS}_mqtt_connected", "1 while connected to the broker.", 1.0 if pub.get("connected") else 0.0
    )
    for key, help_ in (
        ("queue_depth", "Messages waiting in the outbox."),
        ("queue_bytes", "Payload bytes waiting in the outbox."),
        ("inflight", "Messages sent and not yet acknowledged."),
    ):
        if isinstance(pub.get(key), int | float):
            yield GaugeMetricFamily(f"{NS}_outbox_{key}", help_, pub[key])
    if pub.get("oldest_queued_age_s") is not None:
        yield GaugeMetricFamily(
            f"{NS}_outbox_oldest_age_seconds", "Age of the oldest queued message.", pub["oldest_queued_age_s"]
        )
    for key, help_ in PUBLISH_COUNTERS.items():
        if isinstance(pub.get(key), int | float):
            yield CounterMetricFamily(f"{NS}_mqtt_{key}", help_, pub[key])
    dropped = CounterMetricFamily(f"{NS}_outbox_dropped", "Messages dropped, by reason.", labels=["reason"])
    for reason, n in (pub.get("dropped") or {}).items():
        dropped.add_metric([reason], n)
    yield dropped
    for key, help_ in (("epoch", "The outbox sequence epoch."), ("last_seq", "The last seq accepted.")):
        if isinstance(pub.get(key), int):
            yield GaugeMetricFamily(f"{NS}_outbox_{key}", help_, pub[key])


class MetricsServer:
    """The HTTP endpoint and its registry; `instrument(timings)` must run before the pipeline starts."""

    def __init__(self, cfg: MetricsConfig, device_id: str, publisher_stats: StatsSource) -> None:
        address = cfg.address
        assert address is not None
        self.host, self.port = address
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.collector = StatsCollector(device_id, publisher_stats)
        self.registry.register(self.collector)
        self.latency = Histogram(
            f"{NS}_stage_latency_seconds",
            "Per-stage processing time (detect, classify per frame and per face, pose, analytics, publish, frame).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        try:
            self._server, self._thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"metrics.listen = '{cfg.listen}': cannot listen there ({exc.strerror or exc})") from None
        if not is_loopback(self.host):
            log.warning("metrics: %s:%d is reachable from the network and has no authentication", self.host, self.port)
        log.info("metrics: Prometheus endpoint on http://%s:%d/metrics", self.host, self._server.server_port)

    @property
    def bound_port(self) -> int:
        return int(self._server.server_port)

    def instrument(self, timings: object) -> None:
        """Wrap each latency window attribute of `timings` (the daemon's Timings) so it also feeds the histogram."""
        for name, window in list(vars(timings).items()):
            if callable(getattr(window, "add_ms", None)) and not isinstance(window, ObservedWindow):
                setattr(timings, name, ObservedWindow(window, self.latency.labels(stage=name)))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)
