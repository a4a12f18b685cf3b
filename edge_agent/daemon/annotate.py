"""`edge-agent annotate`: draw what the agent sees on a video, the demo, a stream or images (output stays local).

Time comes from the source, never from the machine: a video's frame k is at k / fps, so dwell and attention
drawn on it are the clip's own, and the output is written at the source's frame rate with one output frame per
source frame. A folder is a set of independent photos (each drawn with its own result) unless `sequence`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_agent import imageio
from edge_agent.capture.config import IMAGE_EXTENSIONS
from edge_agent.config import AgentConfig, ConfigError
from edge_agent.daemon.analytics_adapter import AnalyticsAdapter
from edge_agent.daemon.annotate_out import Writer, draw, output_kind
from edge_agent.daemon.stills import Analyzer, StillsAnalytics
from edge_agent.records import Frame

log = logging.getLogger(__name__)
STILLS_FPS = 1.0  # independent photos have no frame rate: one per second is readable in a video or GIF
SEQUENCE_FPS = 10.0  # a folder of frames with no rate given


@dataclass(frozen=True, slots=True)
class AnnotateOptions:
    """What `annotate` was asked for beyond the source and the output."""

    max_frames: int | None = None
    fps: float | None = None  # frame rate of a folder of images (a video's own rate is always used)
    sequence: bool = False  # a folder's images are frames of one camera: track across them
    limits: imageio.ImageLimits = field(default_factory=imageio.ImageLimits)


@dataclass(frozen=True, slots=True)
class AnnotateResult:
    frames: int
    fps: float
    kind: str
    skipped: str  # the skip summary line, '' when nothing was skipped


@dataclass(frozen=True, slots=True)
class _Item:
    """One source frame: its time on the source's own clock, and for photos the file it came from."""

    ts: float
    image: np.ndarray
    name: str | None = None


class _Frames:
    """The source's frames with timestamps on its own clock, and its frame rate (known before the first frame)."""

    def __init__(self, cfg: AgentConfig, source: str, opts: AnnotateOptions, skips: imageio.SkipCounter) -> None:
        self.t0 = time.time()
        self.skips = skips
        self.opts = opts
        path = Path(source)
        self.paths: list[Path] | None = None
        if path.is_dir() or (path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS):
            self.paths = imageio.expand([path])
            if not self.paths:
                raise ConfigError(f"annotate: {source}: no images ({', '.join(IMAGE_EXTENSIONS)})")
            self.stills = not opts.sequence
            self.fps = opts.fps or (SEQUENCE_FPS if opts.sequence else STILLS_FPS)
            self.src = None
            return
        from edge_agent.capture.base import create_source
        from edge_agent.capture.iterate import unpaced
        from edge_agent.daemon.overrides import with_source

        self.stills = False
        src_cfg = unpaced(with_source(cfg, source).cameras[0].source)
        if src_cfg.type == "file":
            src_cfg = src_cfg.model_copy(update={"loop": False})
        self.src = create_source(src_cfg)
        self.src.open()  # SourceError: one line, exit 1
        interval = self.src.frame_interval
        self.fps = float(getattr(self.src, "fps", 0.0) or (1.0 / interval if interval > 0 else 25.0))
        if src_cfg.type == "demo" and opts.max_frames is None:  # the demo loops forever: one cycle
            cycle = int(getattr(self.src, "frames_per_cycle", 0)) or None
            self.opts = AnnotateOptions(cycle, opts.fps, opts.sequence, opts.limits)

    def __iter__(self) -> Iterator[_Item]:
        limit = self.opts.max_frames
        if self.paths is not None:
            yield from self._stills(limit)
        elif self.src is not None and hasattr(self.src, "render"):  # the demo: frame k is a pure function of k
            for k in range(limit or 0):
                yield _Item(self.t0 + k / self.fps, self.src.render(k))
        else:
            yield from self._stream(limit)

    def _stills(self, limit: int | None) -> Iterator[_Item]:
        assert self.paths is not None
        n = 0
        for i, path in enumerate(self.paths):
            if limit is not None and n >= limit:
                return
            try:
                image = imageio.read_bgr(path, self.opts.limits)
            except imageio.ImageSkip as exc:
                self.skips.skip(exc)
                continue
            n += 1
            yield _Item(self.t0 + i / self.fps, image, f"{i:04d}_{path.stem}")  # a.jpg and a.png stay apart

    def _stream(self, limit: int | None) -> Iterator[_Item]:
        from edge_agent.capture.base import BadFrame
        from edge_agent.capture.frames import normalize_frame

        src = self.src
        assert src is not None
        live = src.cfg.type in ("stream", "v4l2")
        k = n = failures = 0
        while limit is None or n < limit:
            if not src.grab():
                failures += 1
                if src.eof or failures >= 3:
                    return
                continue
            failures, ts = 0, (time.time() if live else self.t0 + k / self.fps)
            k += 1  # counts every source frame, so a skipped one still moves the clock
            try:
                norm = normalize_frame(src.retrieve())
            except BadFrame as bad:
                log.warning("annotate: frame %d skipped (%s): %s", k - 1, bad.reason, bad.detail)
                continue
            if norm.image is None:
                log.warning("annotate: frame %d skipped (%s)", k - 1, norm.skip)
                continue
            n += 1
            yield _Item(ts, norm.image)

    def close(self) -> None:
        if self.src is not None:
            self.src.close()


def annotate_source(
    cfg: AgentConfig, source: str, out: Path, opts: AnnotateOptions = AnnotateOptions()
) -> AnnotateResult:
    """Annotate every frame of `source` into `out` (format by extension)."""
    if source != "demo" and "://" not in source and not Path(source).exists() and not source.isdigit():
        raise ConfigError(f"annotate: source {source!r} does not exist")
    output_kind(out)  # an unknown extension is a usage error before any model is loaded
    skips = imageio.SkipCounter("annotate")
    frames = _Frames(cfg, source, opts, skips)
    try:
        writer = Writer(out, frames.fps)
        with Analyzer(cfg) as analyzer:
            make = StillsAnalytics if frames.stills else AnalyticsAdapter
            analytics = make("annotate", cfg.tracking, cfg.analytics, analyzer.meta, analyzer.heads)
            try:
                for index, item in enumerate(frames):
                    if writer.full:  # another frame came, but a GIF cannot hold it
                        writer.truncated = True
                        break
                    faces = analyzer.analyze(item.image)
                    # mono = ts too: the audience rate limit runs on the source's clock like everything else
                    analytics.update(faces, Frame("annotate", index, item.ts, item.ts, item.image))
                    views = (
                        analytics.views
                        if isinstance(analytics, StillsAnalytics)
                        else analytics.engine.tracker.present()
                    )
                    caption = item.name or f"t {item.ts - frames.t0:.2f}s  frame {index}"
                    writer.write(draw(item.image, faces, views, caption), item.name)
            finally:
                writer.close()
    finally:
        frames.close()
    return AnnotateResult(writer.count, frames.fps, writer.kind, skips.summary())
