"""iter_frames: every frame of a source in order, normalised, for offline tools.

Used by annotate, classify and bench — no worker, no drops.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

import numpy as np

from edge_agent.capture.base import BadFrame, create_source
from edge_agent.capture.config import FileSourceConfig, FolderSourceConfig, FrameLimits, SourceConfig
from edge_agent.capture.frames import normalize_frame
from edge_agent.ratelog import RateLimitedLog

log = logging.getLogger(__name__)


def unpaced(cfg: SourceConfig) -> SourceConfig:
    """The same source read as fast as it decodes (files and folders); other sources are returned unchanged."""
    if isinstance(cfg, FileSourceConfig):
        return cfg.model_copy(update={"realtime": False})
    if isinstance(cfg, FolderSourceConfig):
        return cfg.model_copy(update={"fps": 0.0})
    return cfg


def iter_frames(
    cfg: SourceConfig,
    limits: FrameLimits | None = None,
    skipped: Counter[str] | None = None,
    max_failures: int = 3,
) -> Iterator[np.ndarray]:
    """Yield BGR uint8 HxWx3 frames until the source ends (or fails `max_failures` reads in a row).

    Opening raises SourceError (one line). Bad frames are skipped, logged (rate-limited) and counted in `skipped`.
    Files and folders are read unpaced; pass a looping source only if you will stop iterating yourself.
    """
    lim = limits or FrameLimits()
    counts = skipped if skipped is not None else Counter()
    rlog = RateLimitedLog(30.0)
    src = create_source(unpaced(cfg))
    src.open()
    failures = 0
    try:
        while True:
            if not src.grab():
                failures += 1
                if src.eof or failures >= max_failures:
                    return
                continue
            failures = 0
            try:
                raw = src.retrieve()
            except BadFrame as bad:
                counts[bad.reason] += 1
                rlog.warn(bad.reason, log, "skipped a bad frame (%s): %s", bad.reason, bad.detail)
                continue
            norm = normalize_frame(raw, lim.max_side, lim.min_side)
            if norm.image is None:
                reason = norm.skip or "decode_failed"
                counts[reason] += 1
                rlog.warn(reason, log, "skipped a bad frame (%s)", reason)
                continue
            yield norm.image
    finally:
        src.close()
