"""Per-track attribute aggregation: a quality-weighted mean of class probabilities, `unknown` thresholds, minors.

Why a weighted *arithmetic* mean of probabilities and not log-probability averaging (a product of experts):
frames of one track are strongly correlated, so multiplying them as if independent makes the answer
over-confident within a second (p -> 1), which would make the `min_confidence` threshold meaningless; and one
bad frame (motion blur, a profile view) with p~0 for the true class would veto it. The mean stays a calibrated
"average belief" that a threshold can be put on, and bad frames are damped by their weight instead:
weight = detector score x min(1, face width / full_weight_face_px) x frontality (cos yaw, floored at 0.25).
Running sums keep the cost O(1) per sample and the memory O(labels) per track.
"""

from __future__ import annotations

import logging
import math

from edge_agent.records import Attributes, HeadResult, Pose
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import UNKNOWN, AttributeEstimate, HeadEstimate, HeadSpec

log = logging.getLogger(__name__)

_MIN_FRONTAL_WEIGHT = 0.25


def sample_weight(
    score: float, face_px: float, pose: Pose | None, full_weight_px: float, sharpness: float | None = None
) -> float:
    """Weight of one face sample in the track's average (0 < w <= 1 for a usable sample).

    `sharpness` (0-1, v / (v + ref) of track/sampling.py) is 0.5 at the reference blur; doubled and capped, so
    only faces blurrier than the reference lose weight.
    """
    w = min(1.0, max(0.0, float(score))) * min(1.0, face_px / full_weight_px)
    if pose is not None:
        w *= max(_MIN_FRONTAL_WEIGHT, math.cos(math.radians(min(abs(pose.yaw), 90.0))))
    if sharpness is not None:
        w *= min(1.0, 2.0 * max(0.0, sharpness))
    return w


class _HeadSum:
    """Running weighted sum of one head's probability vectors (plain lists: 2-9 labels beat numpy call overhead)."""

    __slots__ = ("labels", "sum", "weight")

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self.sum = [0.0] * len(labels)
        self.weight = 0.0

    def add(self, probs: tuple[float, ...], w: float) -> None:
        if min(probs) < 0.0 or max(probs) > 1.0:  # dequantized outputs can stray a step outside 0..1
            probs = tuple(min(1.0, max(0.0, p)) for p in probs)
        self.sum = [s + w * p for s, p in zip(self.sum, probs, strict=True)]
        self.weight += w

    def mean(self) -> list[float] | None:
        return [v / self.weight for v in self.sum] if self.weight > 0 else None


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


class AttributeAccumulator:
    """Accumulates one track's per-frame Attributes into one stable answer per enabled head."""

    def __init__(self, spec: HeadSpec, cfg: TrackerConfig) -> None:
        self._spec = spec
        self._cfg = cfg
        self._heads = {h: _HeadSum(labels) for h, labels in spec.labels.items()}
        self._age_sum = 0.0
        self._age_weight = 0.0
        self.samples = 0  # frames with attributes offered
        self.small = 0  # of those, rejected as too small
        self.rejected = 0  # heads skipped as malformed (wrong labels, NaN)
        mask = spec.minor_mask(cfg.min_age_years)
        self._minor_mask: list[bool] | None = None if mask is None else [bool(m) for m in mask]
        self._cache: dict[bool, AttributeEstimate] = {}  # by `detail`, cleared by add()

    def note_small(self) -> None:
        """A face of this track was too small to be classified at all (so `unknown` says `small_face`)."""
        self._cache.clear()
        self.small += 1

    def add(
        self, attrs: Attributes | None, face_px: float, score: float, pose: Pose | None, sharpness: float | None = None
    ) -> None:
        """Add one frame's attributes of this track's face (None = the classifier did not run on it)."""
        if attrs is None:
            return
        self._cache.clear()
        self.samples += 1
        if face_px < self._cfg.min_face_px:
            self.small += 1
            return
        w = sample_weight(score, face_px, pose, self._cfg.full_weight_face_px, sharpness)
        if w <= 0.0:
            return
        for head, acc in self._heads.items():
            result: HeadResult | None = getattr(attrs, head)
            if result is None:
                continue
            probs = result.probs
            if result.labels != acc.labels or len(probs) != len(acc.labels) or not math.isfinite(math.fsum(probs)):
                self.rejected += 1
                log.debug("skipping a malformed %s result (labels %s)", head, result.labels)
                continue
            acc.add(probs, w)
        if self._spec.age_years and attrs.age_years is not None and math.isfinite(attrs.age_years):
            self._age_sum += w * float(attrs.age_years)
            self._age_weight += w

    def _head(self, head: str, detail: bool) -> HeadEstimate:
        acc = self._heads[head]
        mean = acc.mean()
        if mean is None:
            reason = "small_face" if self.small > 0 else "no_samples"
            return HeadEstimate(label=UNKNOWN, p=None, probs=(), reason=reason)
        probs = tuple((lab, round(p, 4)) for lab, p in zip(acc.labels, mean, strict=True)) if detail else ()
        i = _argmax(mean)
        p = round(mean[i], 4)
        if p < self._cfg.min_confidence.for_head(head):
            return HeadEstimate(label=UNKNOWN, p=p, probs=probs, reason="low_confidence")
        return HeadEstimate(label=acc.labels[i], p=p, probs=probs, reason=None)

    def is_minor(self) -> bool | None:
        """True when the under-age groups carry at least `minor_probability` or hold the top class.

        None when it cannot be told (gating off, age head disabled, or no usable sample, in which case every
        head is `unknown` anyway because they share the face-size rule).
        """
        mask = self._minor_mask
        if mask is None:
            return None
        mean = self._heads["age"].mean()
        if mean is None:
            return None
        under = sum(p for p, m in zip(mean, mask, strict=True) if m)
        return mask[_argmax(mean)] or under >= self._cfg.minor_probability

    def decision_margin(self) -> float:
        """How far the visit's answer is from changing: the smallest gap, in probability, between what was
        decided and its alternative -- top class vs runner-up and top probability vs `min_confidence` for each
        head, under-age mass vs `minor_probability`. 0 before any usable sample (nothing is decided yet)."""
        gaps: list[float] = []
        for head, acc in self._heads.items():
            mean = acc.mean()
            if mean is None:
                return 0.0
            top = sorted(mean, reverse=True)
            gaps.append(top[0] - (top[1] if len(top) > 1 else 0.0))
            gaps.append(abs(top[0] - self._cfg.min_confidence.for_head(head)))
        mask = self._minor_mask
        mean = self._heads["age"].mean() if "age" in self._heads else None
        if mask is not None and mean is not None:
            gaps.append(abs(sum(p for p, m in zip(mean, mask, strict=True) if m) - self._cfg.minor_probability))
        return min(gaps) if gaps else 0.0

    def estimate(self, detail: bool = False) -> AttributeEstimate:
        """The track's answer so far (`detail`: with the averaged distributions); a minor gets only the flag."""
        cached = self._cache.get(detail)
        if cached is not None:
            return cached
        minor = self.is_minor()
        if minor:
            est = AttributeEstimate(minor=True)
        else:
            heads = {h: self._head(h, detail) for h in self._heads}
            age_years = round(self._age_sum / self._age_weight, 1) if self._age_weight > 0 else None
            est = AttributeEstimate(
                age=heads.get("age"),
                age_years=age_years,
                gender=heads.get("gender"),
                race=heads.get("race"),
                minor=minor,
            )
        self._cache[detail] = est
        return est
