"""The composition root: builds every stage from config, runs the loop, tears down in reverse order."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from edge_agent.commands import CommandQueue
from edge_agent.config import AgentConfig, ConfigError
from edge_agent.daemon import builders, messages
from edge_agent.daemon.camera import CameraRunner, Timings
from edge_agent.daemon.overrides import check_startup, device_id, state_dir
from edge_agent.daemon.reload import ReloadMixin
from edge_agent.daemon.sinks import Outgoing, Sink
from edge_agent.systemd import Notifier

log = logging.getLogger(__name__)
MAIN_TICK_S = 0.25
STOP_BUDGET_S = 4.0  # SIGTERM → exit within 5 s, with margin for interpreter shutdown


class Agent(ReloadMixin):
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
        self.device_id = device_id(cfg)
        self.print_events = print_events
        self.timings = Timings()
        self.commands = CommandQueue()
        self.paused = False
        self.started_mono = time.monotonic()
        self.started_ts = time.time()
        self.heartbeat = time.monotonic()
        self.stats_prev = (time.monotonic(), time.process_time())
        self.ready_sent = False
        self._last_ping = -1e9
        self.stop = threading.Event()
        self.runners: list[CameraRunner] = []
        self._closers: list[tuple[str, Any]] = []
        self.publisher: Any = None
        self.detector: Any = None
        self.classifier: Any = None
        self.meta: Any = None
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
        self.detector = builders.detector(self.cfg)
        self._closers.append(("detector", self.detector))
        self.classifier, self.meta = builders.classifier(self.cfg)
        if self.classifier is not None:
            self._closers.append(("classifier", self.classifier))
        self.publisher = builders.publisher(self.cfg, self.device_id, sdir)
        self._closers.append(("publisher", self.publisher))
        self.sink = Sink(self.publisher, self.print_events)
        self.publisher.start()
        self.sink.send(messages.info(self))
        for cam in (c for c in self.cfg.cameras if c.enabled):
            self._add_camera(cam)
        builders.subscribe_commands(self.publisher, self.commands.on_message)

    def _add_camera(self, cam: Any) -> None:
        worker = builders.camera_worker(cam, self._on_camera_status)
        analytics = builders.camera_analytics(self.cfg, cam.id, self.meta)
        runner = CameraRunner(
            cam.id, worker, analytics, self.detector, self.classifier, builders.pose_fn(), self.timings, self.sink.send
        )
        self.runners.append(runner)
        self._closers.append((f"camera {cam.id}", worker))
        worker.start()

    def _on_camera_status(self, camera_id: str, status: Any) -> None:
        """Called from capture threads on every status change: retained `cameras/<id>/status`."""
        self.sink.send(messages.camera_status(self, camera_id, status))

    def _teardown(self) -> None:
        """Reverse build order: capture stops first, open visits are flushed, the publisher goes last (offline)."""
        self.notifier.stopping()
        for name, part in reversed(self._closers):
            if name == "publisher":
                for runner in self.runners:
                    runner.flush("shutdown")
                if self.runners:
                    self.sink.send(messages.stats(self))  # final figures, also for runs shorter than one interval
                self._close(name, part, timeout=True)
            else:
                self._close(name, part)
        self._closers.clear()

    @staticmethod
    def _close(name: str, part: Any, timeout: bool = False) -> None:
        try:
            if timeout:
                part.close(STOP_BUDGET_S / 2)
            elif name.startswith("camera "):
                part.close(1.0)  # a read stuck in a driver/stream is left to time out on its own (daemon thread)
            else:
                part.close()
        except Exception as exc:  # noqa: BLE001 - keep tearing down the rest
            log.error("closing %s failed: %s", name, exc)

    # ----- run -----------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> int:
        """Build, process until `stop` is set (signal, --duration, every camera ended), tear down. Returns 0."""
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
        try:
            self._main_loop(worker)
        finally:
            stop.set()
            worker.join(timeout=STOP_BUDGET_S / 2)
            if worker.is_alive():
                log.error("pipeline thread did not stop in time (wedged inference?); closing anyway")
            self._teardown()
        log.info("stopped")
        return 0

    def _main_loop(self, worker: threading.Thread) -> None:
        next_stats = time.monotonic() + self.cfg.agent.stats_interval_s
        while not self.stop.wait(MAIN_TICK_S):
            now = time.monotonic()
            if not worker.is_alive():
                log.error("pipeline thread ended unexpectedly; stopping")
                break
            if not self.ready_sent and any(r.processed_total for r in self.runners):
                self.ready_sent = True
                self.notifier.ready("first frame analysed")
                log.info("first frame analysed; ready")
            self.watchdog_tick(now)
            if now >= next_stats:
                next_stats = now + self.cfg.agent.stats_interval_s
                self.sink.send(messages.stats(self))
            if self.duration_s is not None and now - self.started_mono >= self.duration_s:
                log.info("--duration %.1f s reached; stopping", self.duration_s)
                break
            if all(builders.camera_finished(r.worker) for r in self.runners):
                log.info("every camera has ended; stopping")
                break

    def making_progress(self, now: float) -> bool:
        """The pipeline loop is turning (each turn waits at most ~0.2 s for a frame), i.e. nothing is wedged."""
        return now - self.heartbeat < self.cfg.agent.watchdog_stall_s

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
        return messages.status_summary(self)

    def _republish_camera_status(self) -> None:
        for runner in self.runners:
            self.sink.send(messages.camera_status(self, runner.camera_id, builders.camera_status_of(runner.worker)))
