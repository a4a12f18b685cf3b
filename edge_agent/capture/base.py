"""FrameSource base class, the `type` → class registry, and the pacing clock shared by file-like sources."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Self, TypeVar

import numpy as np

from edge_agent.capture.config import SourceConfig, describe_source


class SourceError(RuntimeError):
    """A source cannot be opened (one-line reason). The worker logs it and retries with backoff."""


class BadFrame(Exception):
    """This one frame is unusable (the loop goes on). `reason` is a short counter key such as 'empty_file'."""

    def __init__(self, reason: str, detail: str = "", item: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.item = item  # the file it came from, when a source has files (each bad file is logged once)


class FrameSource(ABC):
    """One frame producer. Not thread-safe: a source is used by a single capture thread.

    `grab()` advances one frame cheaply and `retrieve()` decodes the grabbed one, so the worker can skip decoding
    frames the analysis-fps cap would drop anyway. `read()` is both.
    """

    #: Live and paced sources deliver frames on their own clock, so the worker drops what the consumer misses.
    #: Unpaced sources (a file with realtime=false, a folder with fps=0) are instead read only when the consumer
    #: has taken the previous frame, so nothing is dropped and the pipeline runs as fast as it can.
    paced: bool = True

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.eof = False  # set by a finite source (non-looping file/folder/demo) once it has delivered everything
        self.stop_event: threading.Event | None = None  # set by the worker so pacing sleeps end at close()

    @property
    def frame_interval(self) -> float:
        """Seconds between frames when the source paces itself (0 if unknown); stall timeouts never go below 3x."""
        return 0.0

    @property
    def description(self) -> str:
        return describe_source(self.cfg)

    @abstractmethod
    def open(self) -> None:
        """Open the device/stream/file; raise SourceError with a one-line reason on failure."""

    @abstractmethod
    def grab(self) -> bool:
        """Advance to the next frame without decoding it; False on a failed read or at the end (then `eof`)."""

    @abstractmethod
    def retrieve(self) -> np.ndarray | None:
        """Decode the last grabbed frame (any shape/dtype; the worker normalises it).

        Returns None if it cannot be decoded; raises BadFrame(reason) to have a specific reason counted.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the device; safe to call twice."""

    def read(self) -> np.ndarray | None:
        """Grab and decode the next frame; None on a failed read, an unusable frame (BadFrame) or at the end (`eof`).

        Use grab()/retrieve() (as CameraWorker and iter_frames do) to learn why a frame was unusable.
        """
        if not self.grab():
            return None
        try:
            return self.retrieve()
        except BadFrame:
            return None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_REGISTRY: dict[str, type[FrameSource]] = {}
S = TypeVar("S", bound=type[FrameSource])


def register_source(kind: str) -> Callable[[S], S]:
    """Class decorator: make a FrameSource available under the config `type` literal `kind`."""

    def deco(cls: S) -> S:
        _REGISTRY[kind] = cls
        return cls

    return deco


def source_types() -> tuple[str, ...]:
    _load_builtin_sources()
    return tuple(sorted(_REGISTRY))


def create_source(cfg: SourceConfig) -> FrameSource:
    """Build (not open) the source for a source config."""
    _load_builtin_sources()
    try:
        cls = _REGISTRY[cfg.type]
    except KeyError:
        raise SourceError(f"unknown source type {cfg.type!r} (known: {', '.join(sorted(_REGISTRY))})") from None
    return cls(cfg)


def _load_builtin_sources() -> None:
    # Imported lazily so `base` has no import cycle with the modules that register themselves here.
    from edge_agent.capture import demo, files, opencv_sources  # noqa: F401


class Pacer:
    """Sleeps so that successive ticks are `1/fps` apart on a fixed schedule (no drift, no catch-up bursts)."""

    def __init__(self, fps: float | None) -> None:
        self.interval = 1.0 / fps if fps else 0.0
        self._next = 0.0

    def reset(self) -> None:
        self._next = 0.0

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Sleep until the next tick; False (at once) when `stop` is set, so the caller delivers nothing more."""
        if self.interval <= 0:
            return not (stop is not None and stop.is_set())
        now = time.monotonic()
        if self._next == 0.0 or now - self._next > 4 * self.interval:
            # First tick, or we fell far behind (slow decode, paused process): restart the schedule from now.
            self._next = now
        elif self._next > now:
            if stop is not None:
                stop.wait(self._next - now)
            else:
                time.sleep(self._next - now)
        self._next += self.interval
        return not (stop is not None and stop.is_set())
