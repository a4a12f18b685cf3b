"""Motion gating: a cheap change detector on a small grey copy of the frame, blind to global lighting changes.

The frame is sampled to about 80x60 (every 8th pixel of the green channel, which carries most of the luma:
a few microseconds, no resize), compared with a running background, and the absolute difference is averaged
over a coarse grid of cells (the averaging, not the sampling, is what beats sensor noise). Two things keep
lighting out of it:
- a *gain* between background and frame is estimated as the median of their per-cell ratios and divided out
  first. A change of illumination or exposure multiplies linear light, and a power-law (gamma) encoding keeps it
  a pure multiplication, so a brightness step or mains flicker leaves the gain-corrected difference near zero;
  the median ignores a person covering less than half the picture;
- what survives the gain (clipping, a white-balance jump, a light switched on in one corner) usually changes most
  cells at once: that is reported as `global_change`, the background is rebased, and the caller can afford one
  full detection instead of treating it as motion.
The background follows the scene with a time constant (`background_s`), so something that stops moving is
absorbed within a couple of seconds and stops costing detections.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_agent.detect.schedule_config import MotionConfig
from edge_agent.records import Box

log = logging.getLogger(__name__)

_MIN_LEVEL = 8.0  # cells darker than this say nothing about gain (black); with none left the gain is 1


@dataclass(frozen=True, slots=True)
class Motion:
    """What changed in one frame, on a grid of cells; `cell_w`/`cell_h` are one cell's size in frame pixels."""

    moving: bool  # at least `min_cells` cells changed (and it was not a global change)
    global_change: bool  # most of the picture changed at once (lighting, exposure, camera moved): background rebased
    cells: np.ndarray = field(repr=False, compare=False)  # bool (rows, cols), True where the scene changed
    cell_w: float = 0.0
    cell_h: float = 0.0

    @property
    def changed_cells(self) -> int:
        return int(self.cells.sum())

    def boxes(self) -> list[Box]:
        """Each changed cell as a box in frame pixels."""
        rows, cols = np.nonzero(self.cells)
        return [
            Box(c * self.cell_w, r * self.cell_h, (c + 1) * self.cell_w, (r + 1) * self.cell_h)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
        ]

    def outside(self, zones: Sequence[Box]) -> bool:
        """True when motion is present and some changed cell's centre lies in none of `zones` (frame pixels)."""
        if not self.moving:
            return False
        rows, cols = np.nonzero(self.cells)
        xs = (cols + 0.5) * self.cell_w
        ys = (rows + 0.5) * self.cell_h
        free = np.ones(xs.shape, bool)
        for z in zones:
            free &= ~((xs >= z.x1) & (xs <= z.x2) & (ys >= z.y1) & (ys <= z.y2))
        return bool(free.any())


STILL = Motion(moving=False, global_change=False, cells=np.zeros((0, 0), bool))


class MotionGate:
    """`update(image_bgr, t)` -> Motion, comparing the frame with a running background of the scene."""

    def __init__(self, cfg: MotionConfig) -> None:
        self._cfg = cfg
        self._bg: np.ndarray | None = None
        self._shape: tuple[int, int] = (0, 0)  # frame (h, w) the background belongs to
        self._t = 0.0
        self._recent: deque[tuple[float, np.ndarray]] = deque()  # recent small frames, for `settle_s`
        self.frames = 0
        self.moving_frames = 0
        self.global_changes = 0

    def reset(self) -> None:
        """Forget the background (a source reopened, analysis resumed): the next frame only seeds it."""
        self._bg = None

    def _small(self, image: np.ndarray) -> np.ndarray:
        step = self._step(image.shape[:2])
        # A strided view of one channel: ~5 us where a resize costs 20-70 us (and threads, under load).
        plane = image[::step, ::step, 1] if image.ndim == 3 else image[::step, ::step]
        return plane.astype(np.float32)

    def _step(self, shape: tuple[int, ...]) -> int:
        return max(1, round(int(shape[1]) / self._cfg.width))

    def update(self, image: np.ndarray, t: float) -> Motion:
        """The change between this frame and the background; the background then moves towards this frame."""
        cfg = self._cfg
        grey = self._small(image)
        self.frames += 1
        if self._bg is None or self._shape != image.shape[:2] or t < self._t:
            self._seed(grey, image.shape[:2], t)
            return STILL
        bg = self._bg
        gain = self._gain(grey, bg)
        diff = np.abs(grey - gain * bg)
        cells = self._cell_means(diff) > cfg.threshold
        dt = t - self._t
        self._t = t
        if cells.mean() >= cfg.global_fraction:
            self.global_changes += 1
            self._bg = grey
            log.debug("motion: %.0f%% of the picture changed at once; background rebased", 100 * cells.mean())
            return Motion(False, True, cells, *self._cell_size(image.shape[:2], cells.shape))
        alpha = 1.0 - math.exp(-max(dt, 0.0) / cfg.background_s)
        new_bg = gain * bg + alpha * (grey - gain * bg)
        cells = self._still_changes(grey, cells, new_bg, t)
        self._bg = new_bg
        moving = int(cells.sum()) >= cfg.min_cells
        self.moving_frames += moving
        return Motion(moving, False, cells, *self._cell_size(image.shape[:2], cells.shape))

    def _still_changes(self, grey: np.ndarray, cells: np.ndarray, bg: np.ndarray, t: float) -> np.ndarray:
        """Cells that differ from the background but not from the picture `settle_s` ago are a change that
        has stopped (a light switched on, something put down): taken into the background at once (in `bg`, in
        place) and not reported as motion. Moving things differ from the recent picture too."""
        if self._cfg.settle_s <= 0:
            return cells
        recent = self._recent
        recent.append((t, grey))
        while len(recent) > 1 and t - recent[1][0] >= self._cfg.settle_s:
            recent.popleft()
        past_t, past = recent[0]
        if t - past_t < self._cfg.settle_s or not cells.any():
            return cells
        gain = self._gain(grey, past)
        moved = self._cell_means(np.abs(grey - gain * past)) > self._cfg.threshold
        settled = cells & ~moved
        if settled.any():
            c = self._cfg.cell
            mask = np.kron(settled, np.ones((c, c), bool))
            h, w = mask.shape
            bg[:h, :w][mask] = grey[:h, :w][mask]
        return cells & moved

    def _gain(self, grey: np.ndarray, bg: np.ndarray) -> float:
        """Median over cells of frame / background brightness (cells too dark to tell are left out)."""
        g, b = self._cell_means(grey), self._cell_means(bg)
        ok = b >= _MIN_LEVEL
        if not ok.any():
            return 1.0
        ratios = g[ok] / b[ok]
        k = ratios.size // 2
        gain = float(np.partition(ratios, k)[k])  # the (upper) median, without np.median's overhead
        return gain if math.isfinite(gain) and gain > 0 else 1.0

    def _seed(self, grey: np.ndarray, shape: tuple[int, int], t: float) -> None:
        self._recent.clear()
        self._recent.append((t, grey))
        self._bg = grey
        self._shape = (int(shape[0]), int(shape[1]))
        self._t = t

    def _cell_means(self, diff: np.ndarray) -> np.ndarray:
        """Mean of `diff` over cells of `cell` x `cell` samples (a partial last row/column is dropped)."""
        c = self._cfg.cell
        rows, cols = diff.shape[0] // c, diff.shape[1] // c
        # INTER_AREA at an integer factor is exactly the block mean, at a sixth of numpy's reshape-mean cost.
        return cv2.resize(diff[: rows * c, : cols * c], (cols, rows), interpolation=cv2.INTER_AREA)

    def _cell_size(self, shape: tuple[int, int], grid: tuple[int, ...]) -> tuple[float, float]:
        side = float(self._cfg.cell * self._step(shape))
        return side, side
