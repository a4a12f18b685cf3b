"""Region search: re-find a known face with the short-range graph at its native 128 px on a square around it.

A full-frame scan costs the same whatever is in the picture; a region search costs one small inference per
visitor, whatever the frame size, because the square follows the face (centred on the track's predicted box,
shifted to stay inside the frame like the second look's crop).

The square is sized so the face is seen *at the scale the full scan sees it* (side = region_input / the full
scan's input scale, e.g. 128 / 0.35 = 366 px on a 640x480 frame at input_width 224), and a face the full scan
would give a second look (narrower than `refine_below_px`) gets exactly that second look's geometry
(`refine_context` face widths at `refine_input` px). BlazeFace's box regression depends on the scale it sees a
face at, and the attribute model's crop on the box: seen at the same scale, a re-found face gets the box, and
so the attributes, a full scan would have given it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_agent import models_store
from edge_agent.detect.anchors import SHORT_RANGE
from edge_agent.detect.blazeface import MODEL_NAMES, ModelRunner
from edge_agent.detect.config import DetectorConfig
from edge_agent.detect.letterbox import fit
from edge_agent.detect.postprocess import Candidates, logit
from edge_agent.detect.refine import best_overlap, refine_region
from edge_agent.records import Box, Detection, TrackHint

log = logging.getLogger(__name__)

ANCHOR_192 = 192  # full_range's fixed input side
_MATCH_IOU = 0.2  # a re-found face overlaps the prediction at least this much (the prediction is approximate)


def short_range_path(cfg: DetectorConfig) -> Path:
    """The short-range graph: the configured model file if it is short range, else the pinned store copy."""
    if cfg.model == "short_range" and cfg.model_path:
        return Path(cfg.model_path)
    return models_store.resolve(MODEL_NAMES["short_range"], cfg.models_dir)


class RegionFinder:
    """`search(image, hints)` -> (detections, ids of the tracks re-found); one inference per hint."""

    def __init__(self, cfg: DetectorConfig) -> None:
        sched = cfg.schedule
        self._cfg = cfg
        self._input = sched.region_input
        self._context = sched.region_context
        self._min_logit = logit(sched.region_threshold)
        path = short_range_path(cfg)
        self._runner: ModelRunner | None = ModelRunner(
            path, SHORT_RANGE.with_input(self._input, self._input), cfg.num_threads
        )
        self._small: ModelRunner | None = None
        if cfg.refine_below_px > 0:
            side = cfg.refine_input
            self._small = ModelRunner(path, SHORT_RANGE.with_input(side, side), cfg.num_threads)
        self._full_long = cfg.resolved_input_width() or ANCHOR_192  # full scan input along the frame's long side
        log.info(
            "region search: short range at %dx%d (faces below %.0f px: %dx%d)",
            self._input,
            self._input,
            cfg.refine_below_px,
            cfg.refine_input,
            cfg.refine_input,
        )

    def plan(self, box: Box, width: int, height: int) -> tuple[tuple[int, int, int, int], ModelRunner, int]:
        """The searched region (x0, y0, w, h), the runner and its input side, for a predicted face box."""
        arr = np.array([box.x1, box.y1, box.x2, box.y2], np.float32)
        if self._small is not None and box.width < self._cfg.refine_below_px:
            return refine_region(arr, self._cfg.refine_context, width, height), self._small, self._cfg.refine_input
        if self._runner is None:
            raise RuntimeError("RegionFinder used after close()")
        scale = self._full_long / max(width, height)  # the full scan's input pixels per frame pixel
        context = max(self._context, self._input / scale / max(box.width, box.height, 1.0))
        return refine_region(arr, context, width, height), self._runner, self._input

    def search(self, image: np.ndarray, hints: Sequence[TrackHint]) -> tuple[list[Detection], set[str]]:
        """The best face overlapping each hint's predicted box (if any); boxes in frame pixels, best score first."""
        h, w = image.shape[:2]
        if self._runner is None:
            raise RuntimeError("RegionFinder used after close()")
        found: list[tuple[float, Detection]] = []
        ids: set[str] = set()
        for hint in hints:
            region, runner, side = self.plan(hint.box, w, h)
            cands = runner.run(image, fit(region, side, side), self._min_logit)
            pred = np.array([hint.box.x1, hint.box.y1, hint.box.x2, hint.box.y2], np.float32)
            j = best_overlap(cands, pred, _MATCH_IOU)
            if j < 0:
                continue
            det = _detection(cands, j)
            if det.box.width < self._cfg.min_detection_px:
                continue
            ids.add(hint.track_id)
            found.append((det.score, det))
        return _dedupe([d for _, d in sorted(found, key=lambda x: -x[0])], self._cfg.nms_iou), ids

    def close(self) -> None:
        for runner in (self._runner, self._small):
            if runner is not None:
                runner.close()
        self._runner = self._small = None


def _detection(c: Candidates, j: int) -> Detection:
    b = c.boxes[j]
    return Detection(Box(*(float(v) for v in b)), float(c.scores[j]), c.keypoints[j].astype(np.float32))


def _dedupe(dets: list[Detection], iou: float) -> list[Detection]:
    """Two tracks' squares can re-find the same face: keep the better-scoring copy (input is best first)."""
    out: list[Detection] = []
    for d in dets:
        if all(d.box.iou(k.box) < iou for k in out):
            out.append(d)
    return out
