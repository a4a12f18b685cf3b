"""IoU tracker with a short memory and a visit gap: faces become visits with random per-session ids.

Association per frame, greedy and in pure numpy (a handful of faces per frame, where greedy highest-IoU-first
equals the optimal assignment in practice and needs no SciPy on the device):
1. tracks seen within `max_missed_s` are matched to detections by IoU >= `iou_threshold`;
2. tracks still unmatched but seen within `visit_gap_s` are reconnected to a remaining detection whose centre is
   within `reconnect_distance` face widths and whose size is within 2x (an occlusion or missed detection);
3. the remaining detections start tentative tracks, published once seen `confirm_frames` times.
A track unseen for `visit_gap_s` ends. Its id (secrets.token_hex) is never reused or linked to a later visit.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Sequence

import numpy as np

from edge_agent.analytics.attention import AttentionMeter
from edge_agent.analytics.config import AttentionConfig, VisitConfig
from edge_agent.analytics.pose import estimate_pose
from edge_agent.records import Box, Face, Pose
from edge_agent.track.aggregate import AttributeAccumulator
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import HeadSpec, TrackEnd, TrackEvent, TrackNew, TrackUpdate, TrackView

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

    def dwell(self) -> float:
        return self.last_t - self.first_t


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) against every box in b (M, 4), boxes as x1, y1, x2, y2."""
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _greedy(score: np.ndarray, accept: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (row, col) taken best score first (higher is better), each row and column at most once."""
    pairs: list[tuple[int, int]] = []
    if score.size == 0:
        return pairs
    used_r: set[int] = set()
    used_c: set[int] = set()
    for flat in np.argsort(-score, axis=None, kind="stable"):
        r, c = divmod(int(flat), score.shape[1])
        if not accept[r, c] or r in used_r or c in used_c:
            continue
        pairs.append((r, c))
        used_r.add(r)
        used_c.add(c)
    return pairs


def _boxes(boxes: Sequence[Box]) -> np.ndarray:
    return np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], dtype=np.float64).reshape(-1, 4)


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
        if cfg.min_age_years > 0 and "age" not in spec.labels:
            log.warning("tracking.min_age_years = %d has no effect: the age head is disabled", cfg.min_age_years)

    def update(self, faces: Sequence[Face], ts: float, mono: float | None = None) -> list[TrackEvent]:
        """Feed one analysed frame (all its faces, possibly none); `mono` (time.monotonic) times durations if given."""
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
        events: list[TrackEvent] = list(self._expire(t, {id(tr) for tr, _ in matched}))
        for track, face in matched:
            self._observe(track, face, t, ts, events)
        return events

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

    def stats(self) -> dict[str, int]:
        """Counters since start (frames, faces, invalid faces, tracks started/ended, drops, reconnects)."""
        return dict(self._stats, active=sum(1 for tr in self._tracks if tr.confirmed))

    def _associate(self, faces: list[Face], t: float) -> list[tuple[_Track, Face]]:
        boxes = _boxes([f.detection.box for f in faces])
        pairs: list[tuple[_Track, Face]] = []
        free_faces = list(range(len(faces)))
        recent = [tr for tr in self._tracks if t - tr.last_t <= self._cfg.max_missed_s]
        if recent and faces:
            iou = _iou_matrix(_boxes([tr.box for tr in recent]), boxes)
            for r, c in _greedy(iou, iou >= self._cfg.iou_threshold):
                pairs.append((recent[r], faces[c]))
                free_faces.remove(c)
        taken = {id(tr) for tr, _ in pairs}
        lost = [tr for tr in self._tracks if id(tr) not in taken and t - tr.last_t < self._cfg.visit_gap_s]
        if lost and free_faces:
            for r, c in self._reconnect(lost, boxes[free_faces]):
                track, face = lost[r], faces[free_faces[c]]
                if t - track.last_t > self._cfg.max_missed_s:
                    track.reconnects += 1
                    self._stats["reconnects"] += 1
                pairs.append((track, face))
            used = {id(f) for _, f in pairs}
            free_faces = [i for i in free_faces if id(faces[i]) not in used]
        for i in free_faces:
            track = self._start(faces[i], t)
            pairs.append((track, faces[i]))
        return pairs

    def _reconnect(self, lost: list[_Track], boxes: np.ndarray) -> list[tuple[int, int]]:
        """Match lost tracks to detections by centre distance in face widths, sizes within a factor of 2."""
        tb = _boxes([tr.box for tr in lost])
        tc = (tb[:, :2] + tb[:, 2:]) / 2
        dc = (boxes[:, :2] + boxes[:, 2:]) / 2
        tw = tb[:, 2] - tb[:, 0]
        dw = boxes[:, 2] - boxes[:, 0]
        dist = np.linalg.norm(tc[:, None, :] - dc[None, :, :], axis=2) / np.maximum(tw[:, None], dw[None, :])
        ratio = np.maximum(tw[:, None], dw[None, :]) / np.maximum(np.minimum(tw[:, None], dw[None, :]), 1e-9)
        accept = (dist <= self._cfg.reconnect_distance) & (ratio <= 2.0)
        return _greedy(-dist, accept)

    def _start(self, face: Face, t: float) -> _Track:
        acc = AttributeAccumulator(self._spec, self._cfg)
        meter = AttentionMeter(self._attention, max_gap_s=self._cfg.max_missed_s)
        track = _Track(face, t, self._now_ts, acc, meter)
        self._tracks.append(track)
        return track

    def _observe(self, track: _Track, face: Face, t: float, ts: float, events: list[TrackEvent]) -> None:
        det = face.detection
        pose = face.pose if face.pose is not None else estimate_pose(det.keypoints)
        if pose is None:
            self._stats["pose_unknown"] += 1
        face_px = face.face_px if face.face_px > 0 else det.box.width
        track.box, track.score, track.pose = det.box, det.score, pose
        track.last_t, track.last_ts = t, ts
        track.hits += 1
        track.acc.add(face.attributes, face_px, det.score, pose)
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
        )
