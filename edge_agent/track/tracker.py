"""IoU tracker with a short memory and a visit gap: faces become visits with random per-session ids.

Association per frame, greedy and in plain Python (a handful of faces per frame, where greedy highest-IoU-first
equals the optimal assignment in practice and needs no SciPy on the device):
1. tracks seen within `max_missed_s` are matched to detections by IoU >= `iou_threshold`;
2. tracks still unmatched but seen within `visit_gap_s` are reconnected to a remaining detection whose centre is
   within `reconnect_distance` face widths and whose size is within 2x (an occlusion or missed detection);
3. the remaining detections start tentative tracks, published once seen `confirm_frames` times.
Then, given a `classify` callback, the sampler (track/sampling.py) picks which matched faces are classified.
Pose comes computed on each Face (once per face, by the camera loop); the tracker never recomputes it.
A track unseen for `visit_gap_s` ends. Its id (secrets.token_hex) is never reused or linked to a later visit.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from edge_agent.records import Attributes, Box, Face, Pose, TrackHint
from edge_agent.track.aggregate import AttributeAccumulator
from edge_agent.track.attention import AttentionMeter
from edge_agent.track.config import AttentionConfig, TrackerConfig, VisitConfig
from edge_agent.track.events import HeadSpec, TrackEnd, TrackEvent, TrackNew, TrackUpdate, TrackView
from edge_agent.track.sampling import AttributeSampler, Candidate, SampleState, face_quality

# Classifies the given faces of one frame (one Attributes per face, in order).
Classify = Callable[[Sequence[Face]], Sequence[Attributes]]
_MAX_SPEED_WIDTHS = 4.0  # predicted motion is capped at this many face widths per second

log = logging.getLogger(__name__)


class _Track:
    """Mutable state of one visit (internal; the outside world sees the frozen events)."""

    def __init__(self, face: Face, t: float, ts: float, acc: AttributeAccumulator, meter: AttentionMeter) -> None:
        self.id = secrets.token_hex(8)
        self.first_t, self.first_ts = t, ts
        self.last_t, self.last_ts = t, ts
        self.box = face.detection.box
        self.score = face.detection.score
        self.hits = 0
        self.confirmed = False
        self.reconnects = 0
        self.last_update_t = -math.inf
        self.pose: Pose | None = None
        self.acc = acc
        self.meter = meter
        self.vx = self.vy = 0.0  # centre velocity, px/s, smoothed
        self.sampling = SampleState()

    def dwell(self) -> float:
        return self.last_t - self.first_t

    def move(self, box: Box, t: float) -> None:
        """Take the new box and update the smoothed velocity (for predicting where to look next)."""
        dt = t - self.last_t
        if dt > 0 and self.hits > 0:
            (px, py), (cx, cy) = self.box.center, box.center
            cap = _MAX_SPEED_WIDTHS * max(box.width, 1.0)
            vx = max(-cap, min(cap, (cx - px) / dt))
            vy = max(-cap, min(cap, (cy - py) / dt))
            k = 1.0 if self.hits == 1 else 0.7  # quick to follow a walk-off; noise is a pixel or two
            self.vx += k * (vx - self.vx)
            self.vy += k * (vy - self.vy)
        self.box = box

    def predicted(self, t: float, horizon: float) -> Box:
        dt = min(max(0.0, t - self.last_t), horizon)
        return self.box.translate(self.vx * dt, self.vy * dt)


def _greedy(candidates: list[tuple[float, int, int]]) -> list[tuple[int, int]]:
    """(score, row, col) candidates taken best score first (higher is better), each row and column at most once."""
    pairs: list[tuple[int, int]] = []
    used_r: set[int] = set()
    used_c: set[int] = set()
    for _, r, c in sorted(candidates, key=lambda x: -x[0]):  # stable: ties keep row/column order
        if r in used_r or c in used_c:
            continue
        pairs.append((r, c))
        used_r.add(r)
        used_c.add(c)
    return pairs


def _reconnect_score(track: Box, det: Box, max_dist: float) -> float | None:
    """Minus the centre distance in face widths if the detection is near enough and of similar size, else None."""
    wt, wd = track.width, det.width
    if min(wt, wd) <= 0 or max(wt, wd) / min(wt, wd) > 2.0:
        return None
    (tx, ty), (dx, dy) = track.center, det.center
    dist = math.hypot(tx - dx, ty - dy) / max(wt, wd)
    return -dist if dist <= max_dist else None


def _valid(face: Face) -> bool:
    b = face.detection.box
    kp = np.asarray(face.detection.keypoints)
    return (
        all(math.isfinite(v) for v in (b.x1, b.y1, b.x2, b.y2, face.detection.score))
        and b.width > 0
        and b.height > 0
        and kp.shape == (6, 2)
        and bool(np.isfinite(kp).all())
    )


class Tracker:
    """Turns per-frame faces into visit events: `update(faces, ts)` -> [TrackEnd..., TrackNew..., TrackUpdate...]."""

    def __init__(
        self,
        cfg: TrackerConfig,
        spec: HeadSpec,
        attention: AttentionConfig | None = None,
        visits: VisitConfig | None = None,
    ) -> None:
        self._cfg = cfg
        self._spec = spec
        self._attention = attention or AttentionConfig()
        self._visits = visits or VisitConfig()
        self._sampler = AttributeSampler(cfg)
        self._tracks: list[_Track] = []
        self._now: float | None = None
        self._now_ts = 0.0
        self._stats = dict.fromkeys(
            (
                "frames",
                "faces",
                "invalid_faces",
                "clock_backwards",
                "tracks_started",
                "tracks_ended",
                "tentative_dropped",
                "reconnects",
                "pose_unknown",
            ),
            0,
        )
        if cfg.min_age_years > 0 and spec.labels and "age" not in spec.labels:
            # Without an age estimate nobody can be gated; other heads are still reported for everyone.
            log.warning("tracking.min_age_years = %d has no effect: the age head is disabled", cfg.min_age_years)

    def update(
        self, faces: Sequence[Face], ts: float, mono: float | None = None, classify: Classify | None = None
    ) -> list[TrackEvent]:
        """Feed one analysed frame (all its faces, possibly none); `mono` (time.monotonic) times durations if given.

        With `classify`, the faces come without attributes and the sampler decides which to classify; without
        it, each face's own `attributes` are used (None: not classified on this frame).
        """
        t = ts if mono is None else mono
        if self._now is not None and t < self._now:
            self._stats["clock_backwards"] += 1
            log.warning("frame time went backwards by %.3f s; frame skipped", self._now - t)
            return []
        self._now, self._now_ts = t, ts
        self._stats["frames"] += 1
        valid = [f for f in faces if _valid(f)]
        if len(valid) != len(faces):
            self._stats["invalid_faces"] += len(faces) - len(valid)
            log.debug("skipped %d faces with a non-finite or empty box/keypoints", len(faces) - len(valid))
        self._stats["faces"] += len(valid)
        matched = self._associate(valid, t)
        if classify is not None and matched:
            matched = self._classify(matched, t, classify)
        events: list[TrackEvent] = list(self._expire(t, {id(tr) for tr, _ in matched}))
        for track, face in matched:
            self._observe(track, face, t, ts, events, sampled=classify is not None)
        return events

    def _classify(self, matched: list[tuple[_Track, Face]], t: float, classify: Classify) -> list[tuple[_Track, Face]]:
        """Classify the faces the sampler picks (a switched-off model: none), and carry their attributes."""
        if not self._spec.labels:
            return matched
        full_px, ref = self._cfg.full_weight_face_px, self._cfg.sampling.sharp_ref
        cands = [
            Candidate(i, tr.sampling, face_quality(f, full_px, ref), f.face_px or f.detection.box.width)
            for i, (tr, f) in enumerate(matched)
        ]
        picked = self._sampler.choose(t, cands)
        if not picked:
            return matched
        results = classify([matched[c.index][1] for c in picked])
        out = list(matched)
        for c, attrs in zip(picked, results, strict=True):
            track, face = out[c.index]
            out[c.index] = (track, replace(face, attributes=attrs))
        return out

    def hints(self, t: float) -> list[TrackHint]:
        """Each track seen within `max_missed_s`, with its box predicted for time `t` (for detection scheduling)."""
        horizon = self._cfg.max_missed_s
        return [
            TrackHint(tr.id, tr.predicted(t, horizon), tr.last_t, math.hypot(tr.vx, tr.vy) / max(tr.box.width, 1.0))
            for tr in self._tracks
            if self._now is None or self._now - tr.last_t <= horizon
        ]

    def flush(self, reason: str = "shutdown") -> list[TrackEnd]:
        """End every visit now (shutdown, pause); tentative tracks are dropped."""
        ends = [self._end(tr, reason) for tr in self._tracks if tr.confirmed]
        self._stats["tentative_dropped"] += sum(1 for tr in self._tracks if not tr.confirmed)
        self._tracks = []
        return ends

    def present(self) -> list[TrackView]:
        """Confirmed tracks seen within `max_missed_s` of the latest frame, oldest first."""
        if self._now is None:
            return []
        return [
            TrackView(
                track_id=tr.id,
                start_ts=tr.first_ts,
                dwell_s=tr.dwell(),
                looking=tr.meter.looking,
                attention_s=tr.meter.attention_s,
                box=tr.box,
                attributes=tr.acc.estimate(),
            )
            for tr in self._tracks
            if tr.confirmed and self._now - tr.last_t <= self._cfg.max_missed_s
        ]

    def present_count(self) -> int:
        """len(present()) without building the views."""
        if self._now is None:
            return 0
        return sum(1 for tr in self._tracks if tr.confirmed and self._now - tr.last_t <= self._cfg.max_missed_s)

    def stats(self) -> dict[str, int]:
        """Counters since start (frames, faces, invalid faces, tracks started/ended, drops, reconnects)."""
        sampler = self._sampler
        return dict(
            self._stats,
            active=sum(1 for tr in self._tracks if tr.confirmed),
            classifications=sampler.chosen,
            classify_too_small=sampler.too_small,
            classify_held_back=sampler.held_back,
        )

    def _associate(self, faces: list[Face], t: float) -> list[tuple[_Track, Face]]:
        # Plain Python: a frame holds a handful of faces, where numpy's per-call overhead dominates.
        cfg = self._cfg
        pairs: list[tuple[_Track, Face]] = []
        recent = [tr for tr in self._tracks if t - tr.last_t <= cfg.max_missed_s]
        cand = [
            (iou, r, c)
            for r, tr in enumerate(recent)
            for c, f in enumerate(faces)
            if (iou := tr.box.iou(f.detection.box)) >= cfg.iou_threshold
        ]
        for r, c in _greedy(cand):
            pairs.append((recent[r], faces[c]))
        taken_t = {id(tr) for tr, _ in pairs}
        taken_f = {id(f) for _, f in pairs}
        lost = [tr for tr in self._tracks if id(tr) not in taken_t and t - tr.last_t < cfg.visit_gap_s]
        free = [f for f in faces if id(f) not in taken_f]
        if lost and free:
            cand = [
                (score, r, c)
                for r, tr in enumerate(lost)
                for c, f in enumerate(free)
                if (score := _reconnect_score(tr.box, f.detection.box, cfg.reconnect_distance)) is not None
            ]
            for r, c in _greedy(cand):
                track, face = lost[r], free[c]
                if t - track.last_t > cfg.max_missed_s:
                    track.reconnects += 1
                    self._stats["reconnects"] += 1
                pairs.append((track, face))
                taken_f.add(id(face))
        for face in faces:
            if id(face) not in taken_f:
                pairs.append((self._start(face, t), face))
        return pairs

    def _start(self, face: Face, t: float) -> _Track:
        acc = AttributeAccumulator(self._spec, self._cfg)
        meter = AttentionMeter(self._attention, max_gap_s=self._cfg.max_missed_s)
        track = _Track(face, t, self._now_ts, acc, meter)
        self._tracks.append(track)
        return track

    def _observe(
        self, track: _Track, face: Face, t: float, ts: float, events: list[TrackEvent], sampled: bool = False
    ) -> None:
        det = face.detection
        pose = face.pose
        if pose is None:
            self._stats["pose_unknown"] += 1
        face_px = face.face_px if face.face_px > 0 else det.box.width
        track.move(det.box, t)
        track.score, track.pose = det.score, pose
        track.last_t, track.last_ts = t, ts
        track.hits += 1
        if sampled and face_px < self._cfg.min_face_px:
            track.acc.note_small()
        # Sharpness picks which frames are classified, not how much a result weighs: both modes then estimate
        # the same average.
        track.acc.add(face.attributes, face_px, det.score, pose)
        if sampled and face.attributes is not None:
            self._sampler.sampled(track.sampling, t, track.acc.decision_margin())
        track.meter.observe(t, pose)
        if not track.confirmed and track.hits >= self._cfg.confirm_frames:
            track.confirmed = True
            self._stats["tracks_started"] += 1
            events.append(TrackNew(track_id=track.id, ts=track.first_ts, box=det.box, score=det.score))
            track.last_update_t = t
        elif (
            track.confirmed
            and self._cfg.update_interval_s > 0
            and t - track.last_update_t >= self._cfg.update_interval_s
        ):
            track.last_update_t = t
            events.append(self._update_event(track))

    def _update_event(self, tr: _Track) -> TrackUpdate:
        return TrackUpdate(
            track_id=tr.id,
            ts=tr.last_ts,
            start_ts=tr.first_ts,
            box=tr.box,
            dwell_s=tr.dwell(),
            looking=tr.meter.looking,
            pose=tr.pose,
            attention_s=tr.meter.attention_s,
            glances=tr.meter.glances,
            attributes=tr.acc.estimate(),
        )

    def _expire(self, t: float, matched: set[int]) -> list[TrackEnd]:
        """End confirmed tracks unseen for visit_gap_s; drop tentative ones unseen for max_missed_s."""
        ends: list[TrackEnd] = []
        keep: list[_Track] = []
        for tr in self._tracks:
            gone = t - tr.last_t
            if id(tr) in matched:
                keep.append(tr)
            elif tr.confirmed and gone >= self._cfg.visit_gap_s:
                ends.append(self._end(tr, "gone"))
            elif not tr.confirmed and gone > self._cfg.max_missed_s:
                self._stats["tentative_dropped"] += 1
            else:
                keep.append(tr)
        self._tracks = keep
        return ends

    def _end(self, tr: _Track, reason: str) -> TrackEnd:
        tr.meter.finish()
        dwell = tr.dwell()
        short = dwell < self._visits.min_dwell_s or tr.hits < self._visits.min_samples
        first = tr.meter.first_glance()
        self._stats["tracks_ended"] += 1
        return TrackEnd(
            track_id=tr.id,
            ts=tr.last_ts,
            start_ts=tr.first_ts,
            dwell_s=dwell,
            samples=tr.hits,
            attention_s=tr.meter.attention_s,
            glances=tr.meter.glances,
            time_to_first_glance_s=None if first is None else first - tr.first_t,
            viewer=not short and tr.meter.glances > 0,
            short=short,
            reconnects=tr.reconnects,
            attributes=tr.acc.estimate(),
            reason=reason,
            classified=tr.acc.samples,
            margin=round(tr.acc.decision_margin(), 4),
        )
