"""Attribute sampling per visit: which tracked faces are worth a classification on this frame.

A visit's attributes do not change while it lasts, and consecutive frames of one face are nearly the same
picture, so classifying every face on every frame mostly buys the same answer again. Per visit, the sampler:
- never classifies a face narrower than `tracking.min_face_px` (its result would be discarded anyway);
- classifies a track at most `max_rate_hz` times per second, and at most `max_per_frame` faces per frame, the
  best-quality faces first;
- prefers good frames: a face is taken when its quality reaches `quality_ratio` of the best the track has shown
  (or after `max_wait_s` without a sample), quality being detector score x size x frontality (pose) x sharpness;
- stops once the aggregated answer is settled -- every decision it rests on (top class against runner-up, top
  probability against `min_confidence`, under-age mass against `minor_probability`) at least `stop_margin` from
  flipping, after `min_samples` -- or after `max_samples`. A visit near a boundary is sampled longest, which is
  where more samples change the published answer; a clear one stops after a handful.
The sample's weight in the visit's average is the tracker's usual score x size x frontality (track/aggregate.py),
so a sampled visit estimates the same average as one classified on every frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.records import Box, Face
from edge_agent.track.aggregate import sample_weight
from edge_agent.track.config import SamplingConfig, TrackerConfig

_SHARP_SIDE = 32  # px of the grey face patch the Laplacian is measured on (scale-free across face sizes)


def laplacian_variance(image_bgr: np.ndarray, box: Box) -> float:
    """Blur measure of the face in `box`: the variance of the Laplacian of a 32x32 grey patch of it.

    Motion blur and defocus remove the high frequencies the Laplacian responds to; measuring on a fixed-size
    patch makes a far face and a near one comparable (sharp faces measure 600-2800). About 40 us per face.
    """
    h, w = image_bgr.shape[:2]
    x1, y1 = max(0, int(box.x1)), max(0, int(box.y1))
    x2, y2 = min(w, math.ceil(box.x2)), min(h, math.ceil(box.y2))
    if x2 - x1 < 4 or y2 - y1 < 4:
        return 0.0
    patch = cv2.resize(image_bgr[y1:y2, x1:x2], (_SHARP_SIDE, _SHARP_SIDE), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY) if patch.ndim == 3 else patch
    v = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    return v if math.isfinite(v) else 0.0


def sharpness_score(variance: float | None, ref: float) -> float | None:
    """Laplacian variance -> 0-1 as v / (v + ref): 0.5 at the reference blur. None stays None (not measured)."""
    if variance is None:
        return None
    return variance / (variance + ref) if variance > 0 else 0.0


def face_sharpness(image_bgr: np.ndarray, box: Box, ref: float) -> float:
    """0-1 sharpness of the face in `box` (laplacian_variance mapped by sharpness_score)."""
    return sharpness_score(laplacian_variance(image_bgr, box), ref) or 0.0


def visible_fraction(box: Box, width: int, height: int, margin: float = 0.25) -> float:
    """Fraction of the square around the face (the classifier's crop, roughly) that lies inside the frame."""
    sq = box.expand_square(margin)
    inside = sq.clip(width, height).area
    return inside / sq.area if sq.area > 0 else 0.0


def face_quality(face: Face, full_weight_px: float, sharp_ref: float) -> float:
    """Quality of one face sample, 0-1: score x size x frontality x in-frame fraction, x sharpness if measured.

    A face cut by the frame edge is classified on replicated border pixels, so it ranks low (squared fraction).
    """
    face_px = face.face_px if face.face_px > 0 else face.detection.box.width
    sharp = sharpness_score(face.sharpness, sharp_ref)
    return sample_weight(face.detection.score, face_px, face.pose, full_weight_px, sharp) * face.visible**2


@dataclass(slots=True)
class SampleState:
    """One track's sampling history (mutable, lives with the track)."""

    samples: int = 0
    last_t: float = -math.inf
    best_quality: float = 0.0
    done: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """A tracked face on this frame that might be classified."""

    index: int  # position in the frame's face list
    state: SampleState
    quality: float
    face_px: float


class AttributeSampler:
    """Chooses the faces to classify on one frame and keeps each visit's sampling state up to date."""

    def __init__(self, tracking: TrackerConfig) -> None:
        self._cfg: SamplingConfig = tracking.sampling
        self._tracking = tracking
        self.chosen = 0  # classifications asked for
        self.too_small = 0  # faces never classified because they were under min_face_px
        self.held_back = 0  # big-enough faces not classified this frame (rate, quality, budget or done)

    @property
    def every_frame(self) -> bool:
        return self._cfg.mode == "every_frame"

    def choose(self, t: float, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates to classify now, best quality first; updates each track's best quality seen."""
        big = [c for c in candidates if c.face_px >= self._tracking.min_face_px]
        self.too_small += len(candidates) - len(big)
        if self.every_frame:
            picked = list(big)
        else:
            eligible = [c for c in big if self._eligible(t, c)]
            eligible.sort(key=lambda c: -c.quality)
            picked = eligible[: self._cfg.max_per_frame]
        for c in big:
            c.state.best_quality = max(c.state.best_quality, c.quality)
        self.held_back += len(big) - len(picked)
        self.chosen += len(picked)
        return picked

    def _eligible(self, t: float, c: Candidate) -> bool:
        cfg, st = self._cfg, c.state
        if st.done or st.samples >= cfg.max_samples:
            return False
        since = t - st.last_t
        # A thousandth of a period of slack: frame times are floats, and 3 Hz at 30 fps is every 10th frame.
        if since < (1.0 - 1e-3) / cfg.max_rate_hz:
            return False
        return st.samples == 0 or since >= cfg.max_wait_s or c.quality >= cfg.quality_ratio * st.best_quality

    def sampled(self, state: SampleState, t: float, margin: float) -> None:
        """A classification of this track was added at `t`; `margin` is the visit's decision margin after it
        (AttributeAccumulator.decision_margin). Decide whether the visit needs more."""
        state.samples += 1
        state.last_t = t
        if self.every_frame:
            return
        settled = state.samples >= self._cfg.min_samples and margin >= self._cfg.stop_margin
        state.done = state.samples >= self._cfg.max_samples or settled
