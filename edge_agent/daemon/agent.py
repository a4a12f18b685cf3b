"""The composition root: builds every stage from config, runs the loop, tears down in reverse order."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.commands import CommandQueue
from edge_agent.config import AgentConfig, ConfigError, config_hash, load_config
from edge_agent.daemon import builders, messages, reload
from edge_agent.daemon.camera import CameraRunner, CameraStages, Timings
from edge_agent.daemon.logsetup import set_level
from edge_agent.daemon.overrides import check_startup, device_id, state_dir
from edge_agent.daemon.sinks import Outgoing, Sink
from edge_agent.daemon.stats import ProcessSnapshot, StatsReporter, StatsSnapshot
from edge_agent.integrations.hooks import start as start_integrations
from edge_agent.systemd import Notifier

if TYPE_CHECKING:
    from edge_agent.capture.config import CameraConfig
    from edge_agent.capture.status import CaptureStatus
    from edge_agent.capture.worker import CameraWorker
    from edge_agent.classify import AttributeClassifier
    from edge_agent.detect.base import FaceDetector
    from edge_agent.detect.region import RegionFinder
    from edge_agent.modelmeta import ModelMetadata
    from edge_agent.publish.mqtt import Publisher

log = logging.getLogger(__name__)
MAIN_TICK_S = 0.25
STOP_BUDGET_S = 4.0  # SIGTERM → exit within 5 s, with margin for interpreter shutdown


class Agent:
    """`Agent(cfg).run(stop)`: one shared stop event; signals only set it (see pipeline.run_agent)."""

    def __init__(
        self,
        cfg: AgentConfig,
        *,
        config_path: Path | None = None,
        source_override: str | None = None,
        print_events: bool = False,
        duration_s: float | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        if not cfg.cameras or not any(c.enabled for c in cfg.cameras):
            raise ConfigError("cameras: no enabled camera; add a [[cameras]] table or pass --source")
        self.cfg = cfg
        self.config_path = config_path
        self.source_override = source_override
        self.duration_s = duration_s
        self.notifier = notifier or Notifier()
        self._own_notifier = notifier is None  # the socket it opened is closed at teardown; a given one is the caller's
        self.device_id = device_id(cfg)
        self.print_events = print_events
        self.timings = Timings()
        self.commands = CommandQueue()
        self.paused = False
        self.started_mono = time.monotonic()
        self.started_ts = time.time()
        self.heartbeat = time.monotonic()
        self.reporter = StatsReporter(ProcessSnapshot.now())
        self.ready_sent = False
        self._last_ping = -1e9
        self.stop = threading.Event()
        self.reload_requested = threading.Event()  # set by SIGHUP (daemon.signals)
        self.runners: list[CameraRunner] = []
        self.workers: dict[str, CameraWorker] = {}
        self._unhealthy: set[str] = set()
        self._closers: list[tuple[str, Callable[[], None]]] = []
        self.publisher: Publisher | None = None
        self.detector: FaceDetector | None = None
        self.region: RegionFinder | None = None
        self.classifier: AttributeClassifier | None = None
        self.meta: ModelMetadata | None = None
        self.sink = Sink(None, print_events)

    # ----- build and tear down -------------------------------------------------------------------------------
    def _build(self) -> None:
        """Build in dependency order; every built part is registered for reverse-order teardown."""
        check_startup(self.cfg)
        sdir = state_dir(self.cfg)
        try:
            sdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"agent.state_dir = '{sdir}': cannot create it ({exc.strerror})") from None
        self.detector = detector = builders.detector(self.cfg.detector)
        self._closers.append(("detector", detector.close))
        self.region = region = builders.region_finder(self.cfg.detector)
        if region is not None:
            self._closers.append(("region search", region.close))
        self.classifier, self.meta = builders.classifier(self.cfg.attributes)
        # the classifier may be replaced by a reload, so the closer reads the attribute at teardown
        self._closers.append(("classifier", lambda: self.classifier.close() if self.classifier else None))
        self.publisher = pub = builders.publisher(self.cfg.mqtt, self.cfg.outbox, self.device_id, sdir)
        self._closers.append(("publisher", lambda: pub.close(STOP_BUDGET_S / 2)))
        hooks = start_integrations(self.cfg, self.device_id, pub, self.timings)  # opt-in: HA discovery, Prometheus
        self._closers.append(("integrations", hooks.close))
        self.sink = Sink(hooks.tap(pub), self.print_events)
        pub.start()
        self.sink.send(messages.info(self.cfg, self.meta, self.started_ts))
        for cam in (c for c in self.cfg.cameras if c.enabled):
            self._add_camera(cam, detector)
        pub.subscribe("cmd/#", self.commands.on_message)

    def _add_camera(self, cam: CameraConfig, detector: FaceDetector) -> None:
        worker = builders.camera_worker(cam, self._on_camera_status)
        analytics = builders.camera_analytics(
            cam.id,
            self.cfg.tracking,
            self.cfg.analytics,
            self.meta,
            self.cfg.attributes.enabled(),
            stills=builders.is_stills(self.cfg.cameras, cam.id),
        )
        stages = CameraStages(detector, self.classifier, analytics, builders.pose_fn())
        guide = builders.guided_detector(self.cfg.detector, cam, detector, self.region)
        runner = CameraRunner(
            cam.id,
            worker,
            stages,
            self.timings,
            self.sink.send,
            unhealthy_after_s=self.cfg.agent.watchdog_stall_s,
            guide=guide,
        )
        self.runners.append(runner)
        self.workers[cam.id] = worker
        # a read stuck in a driver/stream is left to time out on its own (daemon thread)
        self._closers.append((f"camera {cam.id}", lambda: worker.close(1.0)))
        worker.start()

    def _on_camera_status(self, camera_id: str, status: CaptureStatus) -> None:
        """Called from capture threads on every status change: retained `cameras/<id>/status`."""
        self._send_camera_status(camera_id, status)

    def camera_report(self, runner: CameraRunner, status: CaptureStatus | None = None) -> messages.CameraReport:
        now = time.monotonic()
        return messages.CameraReport(
            camera_id=runner.camera_id,
            status=status or runner.feed.status,
            paused=self.paused,
            healthy=runner.healthy(now),
            error=runner.errors.last,
            processed_total=runner.processed_total,
        )

    def _send_camera_status(self, camera_id: str, status: CaptureStatus | None = None) -> None:
        runner = next((r for r in self.runners if r.camera_id == camera_id), None)
        if runner is None:  # a status change while the camera is still being added
            if status is None:
                return
            report = messages.CameraReport(camera_id, status, paused=self.paused)
        else:
            report = self.camera_report(runner, status)
        kind = next((c.source.type for c in self.cfg.cameras if c.id == camera_id), None)
        self.sink.send(messages.camera_status(report, kind))

    def stats_message(self) -> Outgoing:
        """The next `stats` message (the reporter keeps the previous snapshot for the interval rates)."""
        now = time.monotonic()
        publish: dict[str, Any] = {"connected": False, "queue_depth": 0, "dropped": {}}
        if self.publisher is not None:
            try:
                publish = self.publisher.stats()
            except Exception:
                log.exception("publisher stats unavailable")
        snap = StatsSnapshot(
            process=ProcessSnapshot.now(),
            uptime_s=now - self.started_mono,
            cameras=tuple(r.snapshot(now) for r in self.runners),
            timings=self.timings.snapshot(),
            publish=publish,
        )
        payload = self.reporter.report(snap)
        payload["commands"] = self.commands.stats()
        warnings = self.commands.warnings.snapshot()
        if self.publisher is not None:
            warnings.update(self.publisher.warnings.snapshot())
        payload["warnings"] = warnings
        return messages.stats(payload)

    def _teardown(self) -> None:
        """Reverse build order: capture stops first, open visits are flushed, the publisher goes last (offline)."""
        self.notifier.stopping()
        for name, close in reversed(self._closers):
            if name == "publisher":
                for runner in self.runners:
                    runner.flush("shutdown")
                if self.runners:
                    self.sink.send(self.stats_message())  # final figures, also for runs shorter than one interval
            try:
                close()
            except Exception:
                log.exception("closing %s failed", name)
        self._closers.clear()
        if self._own_notifier:
            self.notifier.close()

    # ----- run -----------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> int:
        """Build, process until `stop` is set (signal, --duration, every camera ended), tear down.

        Returns 0, or 1 when the pipeline thread died: a failure exit, so systemd's Restart=on-failure restarts it.
        """
        self.stop = stop
        try:
            self._build()
        except BaseException:
            self._teardown()
            raise
        worker = threading.Thread(target=self._process_loop, name="pipeline", daemon=True)
        worker.start()
        log.info(
            "edge-agent %s running as device %s with %d camera(s)", messages.VERSION, self.device_id, len(self.runners)
        )
        rc = 1
        try:
            rc = self._main_loop(worker)
        finally:
            stop.set()
            worker.join(timeout=STOP_BUDGET_S / 2)
            if worker.is_alive():
                log.error("pipeline thread did not stop in time (wedged inference?); closing anyway")
            self._teardown()
        log.info("stopped" if rc == 0 else f"stopped; exit status {rc}")
        return rc

    def _main_loop(self, worker: threading.Thread) -> int:
        """Supervise until a stop; 1 if the pipeline thread died (its exception was printed by threading), else 0."""
        next_stats = time.monotonic() + self.cfg.agent.stats_interval_s
        while not self.stop.wait(MAIN_TICK_S):
            now = time.monotonic()
            if not worker.is_alive():
                log.error("pipeline thread ended unexpectedly; stopping")
                return 1
            if not self.ready_sent and any(r.processed_total for r in self.runners):
                self.ready_sent = True
                self.notifier.ready("first frame analysed")
                log.info("first frame analysed; ready")
            self._check_health(now)
            if self.reload_requested.is_set():  # SIGHUP: run as a command, between frames, with a result
                self.reload_requested.clear()
                self.commands.request("reload", "SIGHUP")
            self.watchdog_tick(now)
            if now >= next_stats:
                next_stats = now + self.cfg.agent.stats_interval_s
                self.sink.send(self.stats_message())
            if self.duration_s is not None and now - self.started_mono >= self.duration_s:
                log.info("--duration %.1f s reached; stopping", self.duration_s)
                break
            if all(r.feed.finished for r in self.runners):
                log.info("every camera has ended; stopping")
                break
        return 0

    def making_progress(self, now: float) -> bool:
        """The pipeline loop is turning (each turn waits at most ~0.2 s for a frame) and no camera fails every frame."""
        publisher_ok = self.publisher is None or self.publisher.healthy(now)  # network thread alive, on schedule
        return now - self.heartbeat < self.cfg.agent.watchdog_stall_s and not self._unhealthy and publisher_ok

    def _check_health(self, now: float) -> None:
        """Report a camera turning unhealthy (every frame fails) or recovering, once per change."""
        for runner in self.runners:
            healthy = runner.healthy(now)
            if healthy == (runner.camera_id not in self._unhealthy):
                continue
            if healthy:
                self._unhealthy.discard(runner.camera_id)
                log.warning("camera %s: frames are analysed again; healthy", runner.camera_id)
            else:
                self._unhealthy.add(runner.camera_id)
                why = runner.errors.last
                log.error("camera %s: every frame fails (%s); unhealthy, watchdog pings stop", runner.camera_id, why)
            self._send_camera_status(runner.camera_id)

    def watchdog_tick(self, now: float) -> bool:
        """Send WATCHDOG=1 when due and only while the pipeline makes progress; True if a ping was sent."""
        interval = self.notifier.watchdog_interval_s
        if not interval or not self.ready_sent:  # systemd arms the watchdog once READY=1 has been sent
            return False
        if now - self._last_ping < interval or not self.making_progress(now):
            return False
        self._last_ping = now
        return self.notifier.watchdog()

    def _process_loop(self) -> None:
        """The single analysis thread: one detector and one classifier interpreter serve every camera in turn."""
        per_camera = 0.2 / max(1, len(self.runners))
        while not self.stop.is_set():
            self.heartbeat = time.monotonic()
            self.commands.drain(self, self._send_result)
            for runner in self.runners:
                if self.stop.is_set():
                    break
                runner.poll(per_camera, self.paused)

    def _send_result(self, topic_suffix: str, payload: dict[str, Any]) -> None:
        self.sink.send(Outgoing(topic_suffix, payload, messages.CMD_RESULT_SCHEMA))

    # ----- remote controls (run in the pipeline thread, between frames) ---------------------------------------
    def pause(self) -> dict[str, Any]:
        if not self.paused:
            self.paused = True
            for runner in self.runners:
                runner.flush("paused")
            self._republish_camera_status()
            log.info("analysis paused by remote command")
        return {"paused": True}

    def resume(self) -> dict[str, Any]:
        if self.paused:
            self.paused = False
            self._republish_camera_status()
            log.info("analysis resumed by remote command")
        return {"paused": False}

    def status(self) -> dict[str, Any]:
        reports = [self.camera_report(r) for r in self.runners]
        return messages.status_summary(self.cfg, self.paused, time.monotonic() - self.started_mono, reports)

    def _republish_camera_status(self) -> None:
        for runner in self.runners:
            self._send_camera_status(runner.camera_id)

    # ----- live reconfigure (cmd/reload; runs in the pipeline thread, between frames) -----------------------------
    def reload(self) -> dict[str, Any]:
        """Re-read the config file, apply what can change live, report what needs a restart."""
        if self.config_path is None:
            raise ValueError("the agent was started without --config: there is no file to reload")
        new = load_config(self.config_path)  # ConfigError (a ValueError) → error result, agent keeps running
        if self.source_override:
            from edge_agent.daemon.overrides import with_source

            new = with_source(new, self.source_override)
        result = reload.plan(self.cfg, new)
        if result.live:
            self.apply_config(result.config, result.live)
        log.info("config reloaded: %d change(s) applied, %d need a restart", len(result.live), len(result.restart))
        return {
            "applied": list(result.live),
            "restart_required": list(result.restart),
            "config_hash": config_hash(self.cfg),
        }

    def apply_config(self, cfg: AgentConfig, live: tuple[str, ...]) -> None:
        """Make `cfg` the running config: log level, health limit, and (if changed) classifier and analytics."""
        old, self.cfg = self.cfg, cfg
        if cfg.agent.log_level != old.agent.log_level:
            set_level(cfg.agent.log_level)
        for runner in self.runners:
            runner.unhealthy_after_s = cfg.agent.watchdog_stall_s
        if reload.pipeline_changed(live):
            heads = cfg.attributes.enabled()
            if heads != old.attributes.enabled():
                self._swap_classifier(cfg)
            for runner in self.runners:
                stills = builders.is_stills(self.cfg.cameras, runner.camera_id)
                analytics = builders.camera_analytics(
                    runner.camera_id, cfg.tracking, cfg.analytics, self.meta, heads, stills=stills
                )
                runner.reconfigure(self.classifier, analytics)
        self.sink.send(messages.info(cfg, self.meta, self.started_ts))

    def _swap_classifier(self, cfg: AgentConfig) -> None:
        heads = cfg.attributes.enabled()
        if self.classifier is not None and heads:
            self.classifier.set_enabled(heads)  # same interpreter, other output heads read
            return
        new_classifier, self.meta = builders.classifier(cfg.attributes)
        if self.classifier is not None:
            self.classifier.close()
        self.classifier = new_classifier
