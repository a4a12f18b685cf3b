"""Region search: re-find a known face with the short-range graph at its native 128 px on a square around it.

A full-frame scan costs the same whatever is in the picture; a region search costs one small inference per
visitor, whatever the frame size, because the square follows the face (side = `region_context` face widths,
centred on the track's predicted box, shifted to stay inside the frame like the second look's crop).
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
        self._runner = ModelRunner(short_range_path(cfg), SHORT_RANGE.with_input(self._input, self._input), cfg.num_threads)
        log.info("region search: short range at %dx%d, squares of %.1f face widths", self._input, self._input, self._context)

    def square(self, box: Box, width: int, height: int) -> tuple[int, int, int, int]:
        """The searched region (x0, y0, w, h) in frame pixels for a predicted face box."""
        return refine_region(np.array([box.x1, box.y1, box.x2, box.y2], np.float32), self._context, width, height)

    def search(self, image: np.ndarray, hints: Sequence[TrackHint]) -> tuple[list[Detection], set[str]]:
        """The best face overlapping each hint's predicted box (if any); boxes in frame pixels, best score first."""
        h, w = image.shape[:2]
        runner = self._runner
        if runner is None:
            raise RuntimeError("RegionFinder used after close()")
        found: list[tuple[float, Detection]] = []
        ids: set[str] = set()
        for hint in hints:
            region = self.square(hint.box, w, h)
            cands = runner.run(image, fit(region, self._input, self._input), self._min_logit)
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
        if self._runner is not None:
            self._runner.close()
            self._runner = None


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
