"""MediaPipe BlazeFace (short and full range) through the runtime loader, with numpy decoding and NMS."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent import models_store
from edge_agent.detect.anchors import FULL_RANGE, SHORT_RANGE, AnchorSpec, anchor_count, generate_anchors
from edge_agent.detect.base import FaceDetector, check_image, register
from edge_agent.detect.config import DetectorConfig
from edge_agent.detect.letterbox import Letterbox, fit, render
from edge_agent.detect.postprocess import Candidates, decode, logit, nms, sigmoid_scores
from edge_agent.detect.refine import best_overlap, refine_region
from edge_agent.records import Box, Detection
from edge_agent.runtime import ModelLoadError, load_interpreter

log = logging.getLogger(__name__)

MODEL_NAMES = {"short_range": "face_detection_short_range", "full_range": "face_detection_full_range"}
ANCHOR_SPECS = {"short_range": SHORT_RANGE, "full_range": FULL_RANGE}
# A view is a region of the frame as fractions (x0, y0, x1, y1) and the model input width to run it at
# (None: the config's); the whole frame is one view.
Region = tuple[float, float, float, float]
View = tuple[Region, int | None]
FULL_FRAME: Region = (0.0, 0.0, 1.0, 1.0)
FULL_VIEW: View = (FULL_FRAME, None)
MAX_RUNNERS = 4  # interpreters kept for distinct input sizes


def _ceil16(x: float) -> int:
    return max(16, int(-(-round(x) // 16) * 16))


class ModelRunner:
    """One interpreter at one input size, with its anchors in input pixels and a reusable input buffer."""

    def __init__(self, path: Path, spec: AnchorSpec, num_threads: int) -> None:
        self.interp = load_interpreter(path, num_threads=num_threads)
        inp = self.interp.get_input_details()[0]
        self._in_index = inp["index"]
        if tuple(inp["shape"][1:3]) != (spec.input_height, spec.input_width):
            try:
                self.interp.resize_tensor_input(self._in_index, [1, spec.input_height, spec.input_width, 3])
                self.interp.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                size = f"{spec.input_width}x{spec.input_height}"
                raise ModelLoadError(f"{path.name} cannot run at input {size}: {str(exc).splitlines()[0]}") from exc
        self._box_index, self._score_index = self._output_indices(path)
        self.spec = spec
        n = anchor_count(spec)
        shape = self.interp.get_output_details()
        rows = {d["index"]: int(np.prod(d["shape"][:-1])) for d in shape}
        if rows[self._box_index] != n:
            raise ModelLoadError(f"{path.name} has {rows[self._box_index]} boxes, anchors expect {n}")
        self.anchors_px = generate_anchors(spec) * np.array([spec.input_width, spec.input_height], np.float32)
        self.buffer = np.empty((1, spec.input_height, spec.input_width, 3), np.float32)

    def _output_indices(self, path: Path) -> tuple[int, int]:
        # Output names differ between the two graphs; the regressor is the one with 16 values per anchor.
        box = score = None
        for d in self.interp.get_output_details():
            if d["shape"][-1] == 16:
                box = d["index"]
            elif d["shape"][-1] == 1:
                score = d["index"]
        if box is None or score is None:
            raise ModelLoadError(f"{path.name} is not a BlazeFace model (no (N,16) regressor and (N,1) score outputs)")
        return box, score

    def run(self, image_bgr: np.ndarray, lb: Letterbox, min_logit: float) -> Candidates:
        """Candidates above the raw-score threshold, in frame pixels (before NMS)."""
        render(image_bgr, lb, self.buffer[0])
        self.interp.set_tensor(self._in_index, self.buffer)
        self.interp.invoke()
        raw_scores = self.interp.get_tensor(self._score_index).reshape(-1)
        # Threshold on logits first: decoding 2-3 candidates instead of 896-2304 rows.
        keep = np.flatnonzero(raw_scores > min_logit)
        if keep.size == 0:
            return Candidates.empty()
        raw_boxes = self.interp.get_tensor(self._box_index).reshape(-1, 16)[keep]
        c = decode(raw_boxes, self.anchors_px[keep], sigmoid_scores(raw_scores[keep]))
        corners = lb.to_frame(c.boxes.reshape(-1, 2, 2)).reshape(-1, 4)
        return Candidates(corners, c.scores, lb.to_frame(c.keypoints))

    def close(self) -> None:
        self.interp = None


def view_region(view: Region, width: int, height: int) -> tuple[int, int, int, int]:
    """Fractional view -> integer pixel region (x0, y0, w, h) inside the frame."""
    x0 = round(view[0] * width)
    y0 = round(view[1] * height)
    x1 = max(x0 + 1, min(width, round(view[2] * width)))
    y1 = max(y0 + 1, min(height, round(view[3] * height)))
    return x0, y0, x1 - x0, y1 - y0


class BlazeFaceDetector(FaceDetector):
    """BlazeFace over one or more views of the frame; all candidates meet in one NMS, in frame pixels."""

    def __init__(
        self,
        config: DetectorConfig,
        views: tuple[View, ...] = (FULL_VIEW,),
    ) -> None:
        self.config = config
        self.views = views
        name = MODEL_NAMES[config.model]
        self.model_path = (
            Path(config.model_path) if config.model_path else models_store.resolve(name, config.models_dir)
        )
        self._base_spec = ANCHOR_SPECS[config.model]
        self._input_width = config.resolved_input_width()
        self._runners: dict[tuple[int, int], ModelRunner] = {}
        self._refiner: ModelRunner | None = None
        if config.refine_below_px > 0:
            self._refiner = self._refine_runner()
        first = config.score_threshold
        if config.refine_below_px > 0:
            first = min(first, config.candidate_threshold)
        self._min_logit = logit(first)
        self.refine_runs = 0  # second looks taken
        self.refine_skipped = 0  # small faces dropped unchecked because max_refine was reached
        self._runner(*self.input_size(640, 480))  # fail at start-up, not at frame 1

    def _runner(self, in_w: int, in_h: int) -> ModelRunner:
        runner = self._runners.pop((in_w, in_h), None)
        if runner is None:
            runner = ModelRunner(self.model_path, self._base_spec.with_input(in_h, in_w), self.config.num_threads)
            log.info("BlazeFace %s at input %dx%d (%d anchors)", self.config.model, in_w, in_h, len(runner.anchors_px))
            # A folder of mixed-size images must not grow one interpreter per size: keep the most recent few.
            while len(self._runners) >= MAX_RUNNERS:
                self._runners.pop(next(iter(self._runners))).close()
        self._runners[(in_w, in_h)] = runner  # most recently used last
        return runner

    def _refine_runner(self) -> ModelRunner:
        # The second look always uses the short-range graph: it accepts any square input size.
        cfg = self.config
        if cfg.model == "short_range":
            path = self.model_path
        else:
            path = models_store.resolve(MODEL_NAMES["short_range"], cfg.models_dir)
        spec = SHORT_RANGE.with_input(cfg.refine_input, cfg.refine_input)
        return ModelRunner(path, spec, cfg.num_threads)

    def input_size(self, region_w: int, region_h: int, width: int | None = None) -> tuple[int, int]:
        """Model input (w, h) for a region: input_width along its longer side, the aspect kept (multiples of 16).

        Along the longer side, so a portrait or odd-shaped frame costs no more than a landscape one.
        Full range has one fixed square input.
        """
        long = width or self._input_width
        if long is None:
            return self._base_spec.input_width, self._base_spec.input_height
        if region_w >= region_h:
            return long, min(long, _ceil16(long * region_h / region_w))
        return min(long, _ceil16(long * region_w / region_h)), long

    def candidates(self, image_bgr: np.ndarray) -> Candidates:
        """All views' candidates above the score threshold, in frame pixels, before NMS."""
        return self._candidates(check_image(image_bgr))

    def _candidates(self, image: np.ndarray) -> Candidates:
        h, w = image.shape[:2]
        parts = []
        for fractions, view_width in self.views:
            region = view_region(fractions, w, h)
            in_w, in_h = self.input_size(region[2], region[3], view_width)
            parts.append(self._runner(in_w, in_h).run(image, fit(region, in_w, in_h), self._min_logit))
        return Candidates.concat(parts)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        cfg = self.config
        image = check_image(image_bgr)
        kept = nms(self._candidates(image), cfg.nms_iou, weighted=cfg.nms == "weighted")
        if cfg.refine_below_px > 0 and len(kept):
            kept = self._refine(image, kept)
        out: list[Detection] = []
        for box, score, kps in zip(kept.boxes, kept.scores, kept.keypoints, strict=True):
            if box[2] - box[0] < cfg.min_detection_px or box[2] <= box[0] or box[3] <= box[1]:
                continue
            out.append(Detection(Box(*(float(v) for v in box)), float(score), kps.astype(np.float32)))
            if len(out) >= cfg.max_faces:
                break
        return out

    def _refine(self, image: np.ndarray, kept: Candidates) -> Candidates:
        """Second look at small faces on an upscaled crop: keep the sharper box, drop what is not a face.

        Small faces are where the whole-frame pass is least sure and where its false positives live; at 2-3x
        the resolution a real face scores high and a textured blob does not (docs/detection.md has the figures).
        Larger faces are kept on their first-pass score (score_threshold).
        """
        cfg = self.config
        h, w = image.shape[:2]
        widths = kept.boxes[:, 2] - kept.boxes[:, 0]
        keep = (widths >= cfg.refine_below_px) & (kept.scores >= cfg.score_threshold)
        boxes, scores, kps = kept.boxes.copy(), kept.scores.copy(), kept.keypoints.copy()
        small = np.flatnonzero(widths < cfg.refine_below_px)  # in score order, best first
        if small.size > cfg.max_refine:
            self.refine_skipped += int(small.size - cfg.max_refine)
            small = small[: cfg.max_refine]
        runner = self._refiner
        assert runner is not None
        min_logit = logit(cfg.refine_threshold)
        for i in small:
            region = refine_region(kept.boxes[i], cfg.refine_context, w, h)
            found = runner.run(image, fit(region, cfg.refine_input, cfg.refine_input), min_logit)
            self.refine_runs += 1
            j = best_overlap(found, kept.boxes[i], 0.3)
            if j >= 0:
                keep[i] = True
                boxes[i], scores[i], kps[i] = found.boxes[j], found.scores[j], found.keypoints[j]
        refined = Candidates(boxes, scores, kps).take(np.flatnonzero(keep))
        # Refined boxes moved; two first-pass boxes may now be the same face.
        out = nms(refined, cfg.nms_iou, weighted=False)
        return out.take(np.argsort(-out.scores, kind="stable"))

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()
        if self._refiner is not None:
            self._refiner.close()
            self._refiner = None


@register("blazeface")
def _build(config: DetectorConfig) -> Any:
    return BlazeFaceDetector(config)
