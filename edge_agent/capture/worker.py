"""CameraWorker: one capture thread per camera with a one-slot latest-frame buffer, an fps cap and a stall watchdog."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Self

from edge_agent.capture.backoff import Backoff
from edge_agent.capture.base import BadFrame, FrameSource, SourceError, create_source
from edge_agent.capture.config import CameraConfig
from edge_agent.capture.frames import normalize_frame
from edge_agent.capture.status import CaptureCounters, CaptureSnapshot, CaptureStatus, State, StatusBox
from edge_agent.ratelog import RateLimitedLog
from edge_agent.records import Frame

log = logging.getLogger(__name__)

StatusCallback = Callable[[str, CaptureStatus], None]
_RETRY_PAUSE_S = 0.02  # between single failed reads, so a dead device is not polled in a tight loop
_BAD_STREAK = 10  # after this many bad frames in a row, pause before each next one (a looping folder of junk)
_BAD_PAUSE_S = 0.1
_DUE_SLACK = 0.25  # accept a frame this fraction of an interval early, so jitter does not skip frames at fps == cap


class CameraWorker:
    """Reads one camera on its own thread; the consumer calls latest() and always gets the newest frame, once.

    Live and paced sources never wait for the consumer: a frame not taken before the next one arrives is dropped
    (counted). Unpaced sources (file with realtime=false, folder with fps=0) are read only once the previous frame
    was taken, so nothing is dropped. The max_fps cap is applied before decoding, so capped frames cost no decode.
    A watchdog thread declares the camera stalled after `stall_timeout_s` without a frame and has it reopened with
    exponential backoff; a source that cannot be opened is retried the same way and never stops the pipeline.
    """

    def __init__(
        self,
        cfg: CameraConfig,
        on_status: StatusCallback | None = None,
        *,
        source: FrameSource | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.camera_id = cfg.id
        self._source = source if source is not None else create_source(cfg.source)
        self._on_status = on_status
        wd = cfg.watchdog
        self._backoff = Backoff(wd.backoff_min_s, wd.backoff_max_s, wd.backoff_jitter, rng)
        self._stop = threading.Event()
        self._source.stop_event = self._stop
        self._cond = threading.Condition()  # guards the slot and the counters
        self._slot: Frame | None = None
        self._counters = CaptureCounters()
        self._status = StatusBox(CaptureStatus("offline", time.time(), "starting"))
        self._rlog = RateLimitedLog(30.0)
        self._interval = 1.0 / cfg.max_fps if cfg.max_fps > 0 else 0.0
        self._next_due = 0.0
        self._opened = False
        self._ended = False
        self._failures = 0  # consecutive failed reads
        self._bad_streak = 0  # consecutive skipped frames
        self._last_activity = time.monotonic()  # last successful grab (or open / end of a wait for the consumer)
        self._waiting_consumer = False
        self._decoding = False  # inside retrieve/normalise: our own work, not a silent source
        self._reopen = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- consumer API -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the capture and watchdog threads (returns self)."""
        if self._threads:
            return self
        for name, target in (("capture", self._capture_loop), ("watchdog", self._watch_loop)):
            t = threading.Thread(target=target, name=f"{name}-{self.camera_id}", daemon=True)
            self._threads.append(t)
            t.start()
        log.info("camera %s: started (%s, max_fps=%g)", self.camera_id, self._source.description, self.cfg.max_fps)
        return self

    def latest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet returned, waiting up to `timeout` s (None: until one comes or the camera ends)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._slot is None:
                if self._ended or self._stop.is_set():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            self._counters.note_delivery(time.monotonic())
            self._cond.notify_all()  # an unpaced source may be waiting for the slot to empty
            return frame

    @property
    def status(self) -> CaptureStatus:
        return self._status.get()

    @property
    def finished(self) -> bool:
        """True once a finite source (non-looping file/folder/demo) ended and its last frame was taken, or closed."""
        with self._cond:
            return self._stop.is_set() or (self._ended and self._slot is None)

    def stats(self) -> dict[str, object]:
        """Counters and rates for the `stats` message; `dropped` = dropped_rate_cap + dropped_stale."""
        st = self.status
        with self._cond:
            d = self._counters.as_dict(time.monotonic())
            pending = self._slot is not None
        return {
            "camera_id": self.camera_id,
            "source": self._source.description,
            "status": st.state,
            "since": st.since,
            "reason": st.reason,
            "pending": pending,
            **d,
        }

    def snapshot(self) -> CaptureSnapshot:
        """The counters as a frozen record (what the daemon's stats reporter reads)."""
        state = self.status.state
        with self._cond:
            return self._counters.snapshot(state, time.monotonic())

    def close(self, timeout: float = 3.0) -> None:
        """Stop the threads and release the source; a read blocked in the driver is left to time out on its own."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)
        if any(t.is_alive() for t in self._threads):
            log.warning("camera %s: capture thread still inside a read; it exits when the read returns", self.camera_id)
        elif not self._threads:
            self._source.close()
        if self.status.state != "offline":
            self._set_status("offline", "closed")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- capture thread -----------------------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._opened:
                    if not self._try_open():
                        self._stop.wait(self._backoff.next_delay())
                    continue
                self._step()
                if self._source.eof:
                    self._finish_eof()
                    return
        finally:
            self._source.close()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _try_open(self) -> bool:
        try:
            self._source.open()
        except SourceError as exc:
            msg = str(exc)
        except Exception as exc:  # noqa: BLE001 - a driver/library surprise must not kill the thread
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        else:
            self._opened = True
            self._failures = 0
            self._last_activity = time.monotonic()
            return True
        with self._cond:
            self._counters.open_failures += 1
            n = self._counters.open_failures
        if n == 1:
            log.error("camera %s: %s; retrying with backoff", self.camera_id, msg)
        else:
            self._rlog.warn("open", log, "camera %s: still cannot open (%d attempts): %s", self.camera_id, n, msg)
        self._set_status("stalled", f"open failed: {msg}")
        return False

    def _step(self) -> None:
        """One grab (and maybe decode) from the open source."""
        src = self._source
        if self._reopen.is_set():
            self._reopen.clear()
            if time.monotonic() - self._last_activity >= self._stall_limit():  # not if a frame just came after all
                self._drop_source(f"no frame for {self._stall_limit():.0f}s")
                self._stop.wait(self._backoff.next_delay())
                return
        if not src.paced and not self._wait_for_consumer():
            return
        try:
            ok = src.grab()
        except Exception as exc:  # noqa: BLE001 - same as a failed read: count, log once, carry on
            self._rlog.warn("grab", log, "camera %s: read error: %s", self.camera_id, exc)
            ok = False
        now, ts = time.monotonic(), time.time()  # capture time = when the grab returned, before any decoding
        if self._stop.is_set():
            return
        if not ok:
            if not src.eof:
                self._on_read_failure()
            return
        self._failures = 0
        self._last_activity = now
        with self._cond:
            self._counters.note_grab(now)
            if src.paced and self._interval and now < self._next_due - _DUE_SLACK * self._interval:
                self._counters.dropped_rate_cap += 1
                return
        self._decode_and_publish(now, ts)

    def _wait_for_consumer(self) -> bool:
        """Unpaced sources: wait until the slot is empty and the fps cap allows a frame; False if stopping."""
        self._waiting_consumer = True
        try:
            with self._cond:
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.5)
            delay = self._next_due - time.monotonic() if self._interval else 0.0
            if delay > 0:
                self._stop.wait(delay)
        finally:
            self._last_activity = time.monotonic()
            self._waiting_consumer = False
        return not self._stop.is_set()

    def _decode_and_publish(self, now: float, ts: float) -> None:
        self._decoding = True
        try:
            self._decode_and_publish_inner(now, ts)
        finally:
            self._decoding = False
            self._last_activity = time.monotonic()

    def _decode_and_publish_inner(self, now: float, ts: float) -> None:
        try:
            raw = self._source.retrieve()
        except BadFrame as bad:
            self._skip(bad.reason, bad.detail, bad.item)
            return
        except Exception as exc:  # noqa: BLE001 - one bad frame never stops the loop
            self._skip("decode_error", f"{type(exc).__name__}: {exc}".splitlines()[0])
            return
        if raw is None:
            self._skip("decode_failed", "the source returned no image")
            return
        lim = self.cfg.limits
        norm = normalize_frame(raw, lim.max_side, lim.min_side)
        if norm.image is None:
            self._skip(
                norm.skip or "bad_frame", f"shape {getattr(raw, 'shape', None)}, dtype {getattr(raw, 'dtype', None)}"
            )
            return
        with self._cond:
            for fix in norm.fixes:
                self._counters.normalised[fix] += 1
            if self._slot is not None:
                self._counters.dropped_stale += 1
            self._slot = Frame(self.camera_id, self._counters.captured - 1, ts, now, norm.image)
            self._counters.decoded += 1
            self._cond.notify_all()
        for fix in norm.fixes:
            self._rlog.warn(
                f"fix-{fix}",
                log,
                "camera %s: frame normalised (%s), shape %s",
                self.camera_id,
                fix,
                raw.shape,
                level=logging.INFO,
            )
        self._advance_due(now)
        self._bad_streak = 0
        self._backoff.reset()
        self._set_status("online", "")

    def _advance_due(self, now: float) -> None:
        if not self._interval:
            return
        # From this frame, not from the schedule: a late frame must not let the next one follow it closely.
        self._next_due = now + self._interval

    def _skip(self, reason: str, detail: str, item: str | None = None) -> None:
        with self._cond:
            self._counters.skipped[reason] += 1
        self._bad_streak += 1
        if self._bad_streak > _BAD_STREAK:
            self._stop.wait(_BAD_PAUSE_S)  # nothing but bad frames: don't spin a core on them
        # Per file for file-backed sources, so every bad image is named once (a looping folder still rate-limits).
        key = f"skip-{reason}" if item is None else f"skip-{reason}-{item}"
        self._rlog.warn(key, log, "camera %s: skipped a bad frame (%s): %s", self.camera_id, reason, detail)

    def _on_read_failure(self) -> None:
        with self._cond:
            self._counters.read_failures += 1
        self._failures += 1
        if self._failures < self.cfg.watchdog.max_read_failures:
            self._stop.wait(_RETRY_PAUSE_S)
            return
        self._drop_source("read failed")
        self._stop.wait(self._backoff.next_delay())

    def _drop_source(self, reason: str) -> None:
        """Close the source so the loop reopens it, and say the camera is stalled."""
        self._rlog.warn(
            "drop",
            log,
            "camera %s: %s; reopening %s with backoff",
            self.camera_id,
            reason,
            self._source.description,
        )
        self._source.close()
        self._opened = False
        self._failures = 0
        with self._cond:
            self._counters.reopens += 1
        self._set_status("stalled", reason)

    def _finish_eof(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()
            n = self._counters.captured
        log.info("camera %s: source finished after %d frames", self.camera_id, n)
        self._set_status("offline", "eof")

    # ---- watchdog thread ----------------------------------------------------------------------------------------

    def _stall_limit(self) -> float:
        # A slowly paced source (a folder at 0.2 fps) is not stalled between two of its own frames.
        return max(self.cfg.watchdog.stall_timeout_s, 3.0 * self._source.frame_interval)

    def _watch_loop(self) -> None:
        tick = min(1.0, max(0.05, self.cfg.watchdog.stall_timeout_s / 5.0))
        while not self._stop.wait(tick):
            if self._ended:
                return
            if not self._opened or self._waiting_consumer or self._decoding or self._reopen.is_set():
                continue
            idle = time.monotonic() - self._last_activity
            if idle > self._stall_limit():
                self._set_status("stalled", f"no frame for {idle:.0f}s")
                self._reopen.set()

    # ---- status -------------------------------------------------------------------------------------------------

    def _set_status(self, state: State, reason: str) -> None:
        new = self._status.set(state, reason, time.time())
        if new is None:
            return
        level = logging.WARNING if state == "stalled" else logging.INFO
        log.log(level, "camera %s: %s%s", self.camera_id, state, f" ({reason})" if reason else "")
        if self._on_status is not None:
            try:
                self._on_status(self.camera_id, new)
            except Exception as exc:  # noqa: BLE001 - the publisher's problem must not stop capture
                log.error("camera %s: status callback failed: %s", self.camera_id, exc)
