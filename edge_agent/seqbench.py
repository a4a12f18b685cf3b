"""Sequence benchmark: the daemon's camera loop replayed over a sequence, scheduled against every-frame.

Each frame goes through daemon.camera.CameraRunner.process with the daemon's own builders, exactly as a
camera's frames do, with the frames' clocks set to the sequence's own times (so the sampler's rates and the
scheduler's intervals play out as they would live, without sleeping). CPU % of one core = process CPU time
spent in process() / the sequence's duration at that fps. Messages are collected instead of published (the
outbox commit is timed by `edge-agent bench`). Figures are printed, never asserted.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_agent.config.model import AgentConfig
from edge_agent.daemon.sinks import Outgoing
from edge_agent.records import Box, Frame

log = logging.getLogger(__name__)

CAMERA_ID = "seq"
MATCH_IOU = 0.3
ENTERED = 0.9  # a person has "entered" once this much of the face box is inside the frame
FrameIter = Iterable[tuple[float, np.ndarray, list[Any]]]  # (t, image, ground truth or [])


def every_frame(cfg: AgentConfig) -> AgentConfig:
    """The same config with a full scan on every frame and every big-enough face classified (the baseline)."""
    det = cfg.detector.model_copy(update={"schedule": cfg.detector.schedule.model_copy(update={"mode": "every_frame"})})
    trk = cfg.tracking.model_copy(update={"sampling": cfg.tracking.sampling.model_copy(update={"mode": "every_frame"})})
    return cfg.model_copy(update={"detector": det, "tracking": trk})


@dataclass
class Observed:
    """What one replay produced, frame by frame (only boxes and ids, never pixels)."""

    frames: int = 0
    cpu_s: float = 0.0
    frame_ms: list[float] = field(default_factory=list)
    tracks: list[list[tuple[str, Box]]] = field(default_factory=list)  # confirmed present tracks per frame
    seen: list[list[tuple[str, Box, float]]] = field(default_factory=list)  # every track with its last-seen time
    truth: list[list[Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    ends: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)


class Replayer:
    """Builds one camera's pipeline from `cfg` (shared interpreters, a fresh tracker) and replays frames."""

    def __init__(self, cfg: AgentConfig) -> None:
        from edge_agent.daemon import builders
        from edge_agent.daemon.camera import CameraRunner, CameraStages, Timings
        from edge_agent.detect.guided import GuidedDetector

        self.cfg = cfg
        self.detector = builders.detector(cfg.detector)
        self.region = builders.region_finder(cfg.detector)
        self.classifier, self.meta = builders.classifier(cfg.attributes)
        self.analytics = builders.camera_analytics(
            CAMERA_ID, cfg.tracking, cfg.analytics, self.meta, cfg.attributes.enabled()
        )
        self.messages: list[Outgoing] = []
        self.ends: dict[str, Any] = {}  # track id -> TrackEnd (for the decision margin, which is not published)
        engine = self.analytics.engine
        for name in ("process", "flush"):
            setattr(engine, name, self._capture(getattr(engine, name)))
        self.guide = GuidedDetector(cfg.detector.schedule, self.detector, self.region)
        stages = CameraStages(self.detector, self.classifier, self.analytics, builders.pose_fn())
        self.runner = CameraRunner(CAMERA_ID, None, stages, Timings(), self.messages.append, guide=self.guide)  # type: ignore[arg-type]

    def _capture(self, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            for m in out:
                if m.event is not None and m.event.kind == "end":
                    self.ends[m.event.track_id] = m.event
            return out

        return wrapped

    def replay(self, frames: FrameIter, t0: float = 1_000.0) -> Observed:
        obs = Observed()
        tracker = self.analytics.engine.tracker
        for i, (t, image, truth) in enumerate(frames):
            frame = Frame(CAMERA_ID, i, 1.7e9 + t0 + t, t0 + t, image)
            c0, w0 = time.process_time(), time.perf_counter()
            self.runner.process(frame)
            obs.cpu_s += time.process_time() - c0
            obs.frame_ms.append((time.perf_counter() - w0) * 1e3)
            obs.frames += 1
            obs.times.append(t0 + t)
            obs.truth.append(truth)
            # Where the tracker believes each confirmed face is on this frame: its box moved on by its velocity
            # (for a frame where the face was detected, that is the detection itself).
            hints = tracker.hints(t0 + t)
            confirmed = {v.track_id for v in tracker.present()}
            obs.tracks.append([(h.track_id, h.box) for h in hints if h.track_id in confirmed])
            obs.seen.append([(h.track_id, h.box, h.last_seen) for h in hints])
        self.runner.flush("shutdown")
        obs.ends = [
            dict(m.payload, margin=getattr(self.ends.get(m.payload["track_id"]), "margin", None))
            for m in self.messages
            if m.payload.get("event") == "end"
        ]
        st = self.guide.stats()
        obs.counters = {
            "full_scans": st.full_scans,
            "full_by_reason": st.full_by_reason,
            "region_searches": st.region_searches,
            "region_misses": st.region_misses,
            "still_frames": st.still_frames,
            "classifications": self.runner.classified_total,
        }
        return obs

    def close(self) -> None:
        for part in (self.classifier, self.region, self.detector):
            if part is not None:
                part.close()


def _match(truth: list[Any], tracks: list[tuple[str, Box]]) -> dict[int, str]:
    """Greedy IoU matching of ground-truth faces to track boxes: person -> track id."""
    pairs = sorted(
        ((t.box.iou(b), t.person, tid) for t in truth for tid, b in tracks if t.box.iou(b) >= MATCH_IOU),
        key=lambda x: -x[0],
    )
    out: dict[int, str] = {}
    used: set[str] = set()
    for _, person, tid in pairs:
        if person not in out and tid not in used:
            out[person] = tid
            used.add(tid)
    return out


def score(obs: Observed, fps: float) -> dict[str, Any]:
    """CPU share, per-frame time, and (with ground truth) first-detection delay, track recall and id switches."""
    duration = obs.frames / fps
    ms = np.asarray(obs.frame_ms) if obs.frame_ms else np.zeros(1)
    out: dict[str, Any] = {
        "frames": obs.frames,
        "cpu_pct": round(100.0 * obs.cpu_s / duration, 2) if duration else None,
        "frame_ms": {
            "mean": round(float(ms.mean()), 3),
            "p50": round(float(np.percentile(ms, 50)), 3),
            "p95": round(float(np.percentile(ms, 95)), 3),
        },
        **obs.counters,
        "classifications_per_s": round(obs.counters.get("classifications", 0) / duration, 2) if duration else None,
    }
    gt_frames = sum(len(t) for t in obs.truth)
    if not gt_frames:
        return out
    hit, switches = 0, 0
    last_id: dict[int, str] = {}
    owner: dict[str, dict[int, int]] = {}
    first_seen: dict[int, float] = {}
    entered: dict[int, float] = {}
    for t, truth, tracks, seen in zip(obs.times, obs.truth, obs.tracks, obs.seen, strict=True):
        m = _match([x for x in truth if x.inside >= ENTERED], tracks)
        hit += len(m)
        for person, tid in m.items():
            if last_id.get(person, tid) != tid:
                switches += 1
            last_id[person] = tid
            owner.setdefault(tid, {}).setdefault(person, 0)
            owner[tid][person] += 1
        for x in truth:
            if x.inside >= ENTERED:
                entered.setdefault(x.person, t)
            if (
                x.person in entered
                and x.person not in first_seen
                and any(ls >= t - 1e-9 and x.box.iou(b) >= MATCH_IOU for _, b, ls in seen)
            ):
                first_seen[x.person] = t
    full = sum(1 for truth in obs.truth for x in truth if x.inside >= ENTERED)
    delays = [first_seen[p] - entered[p] for p in entered if p in first_seen]
    missed = [p for p in entered if p not in first_seen]
    out.update(
        track_recall=round(hit / full, 4) if full else None,
        id_switches=switches,
        first_detection_s=_pcts(delays),
        never_detected=len(missed),
        visit_owner={tid: max(c.items(), key=lambda kv: kv[1])[0] for tid, c in owner.items()},
    )
    return out


def _pcts(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3), "n": len(a)}


def visit_labels(obs: Observed, owners: dict[str, int] | None) -> dict[Any, dict[str, Any]]:
    """Per visit (ground-truth person, or the visit's order without ground truth): the label of each head, and
    the every-frame decision margin under `_margin`."""
    out: dict[Any, dict[str, Any]] = {}
    for k, end in enumerate(obs.ends):
        if end.get("short"):
            continue
        key: Any = k if owners is None else owners.get(end["track_id"])
        if key is None or key in out:
            continue
        attrs = end.get("attributes") or {}
        labels = {h: v["label"] for h, v in attrs.items() if isinstance(v, dict) and "label" in v}
        out[key] = {"minor": str(bool(end.get("minor"))), **labels, "_margin": end.get("margin")}
    return out


CLEAR_MARGIN = 0.05  # a baseline visit this far from flipping is "clear"; nearer, any resampling may flip it


def agreement(base: dict[Any, dict[str, Any]], new: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """Visits of the baseline whose labels (every head, and the minor flag) the scheduled run reproduced, overall
    and among the clear ones (the baseline's own decision margin >= CLEAR_MARGIN)."""

    def labels(v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else {k: x for k, x in v.items() if not k.startswith("_")}

    same = [k for k in base if labels(new.get(k)) == labels(base[k])]
    clear = [k for k in base if (base[k].get("_margin") or 0.0) >= CLEAR_MARGIN]
    clear_same = [k for k in clear if k in same]
    diff = {str(k): {"every_frame": base[k], "scheduled": new.get(k)} for k in base if k not in same}
    return {
        "visits": len(base),
        "same": len(same),
        "pct": round(100.0 * len(same) / len(base), 1) if base else None,
        "clear_visits": len(clear),
        "clear_same": len(clear_same),
        "clear_pct": round(100.0 * len(clear_same) / len(clear), 1) if clear else None,
        "differing": diff,
    }


def recall_vs(base: Observed, new: Observed) -> float | None:
    """Of the baseline's confirmed track boxes, the fraction the scheduled run also had a track on (IoU >= 0.3)."""
    total = hit = 0
    for b_tracks, n_tracks in zip(base.tracks, new.tracks, strict=True):
        for _, box in b_tracks:
            total += 1
            hit += any(box.iou(nb) >= MATCH_IOU for _, nb in n_tracks)
    return round(hit / total, 4) if total else None


def run_pair(cfg: AgentConfig, frames_for: Any, fps: float, name: str) -> dict[str, Any]:
    """Every-frame and scheduled on the same frames (`frames_for(fps)` yields them afresh), in one run."""
    result: dict[str, Any] = {"sequence": name, "fps": fps}
    labels, observed = {}, {}
    for mode, mode_cfg in (("every_frame", every_frame(cfg)), ("scheduled", cfg)):
        rep = Replayer(mode_cfg)
        try:
            obs = rep.replay(frames_for(fps))
        finally:
            rep.close()
        sc = score(obs, fps)
        owners = sc.pop("visit_owner", None)
        labels[mode] = visit_labels(obs, owners)
        result[mode] = sc
        observed[mode] = obs
    result["labels"] = agreement(labels["every_frame"], labels["scheduled"])
    result["recall_vs_every_frame"] = recall_vs(observed["every_frame"], observed["scheduled"])
    b, s = result["every_frame"], result["scheduled"]
    if b.get("track_recall") is not None and s.get("track_recall") is not None:
        result["recall_delta_pts"] = round(100.0 * (s["track_recall"] - b["track_recall"]), 2)
    return result


def video_frames(path: str, max_frames: int | None = None) -> Any:
    """A function fps -> frames of a video file (resampled to fps by frame time), with no ground truth."""
    import cv2

    def gen(fps: float) -> Iterator[tuple[float, np.ndarray, list[Any]]]:
        cap = cv2.VideoCapture(path)
        src_fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        step = max(1, round(src_fps / fps))
        i = k = 0
        try:
            while max_frames is None or k < max_frames:
                ok, img = cap.read()
                if not ok:
                    break
                if i % step == 0:
                    yield k / fps, img, []
                    k += 1
                i += 1
        finally:
            cap.release()

    return gen


def fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def packaged_walk_ins(visits: int = 6) -> list[Any]:
    """Walk-ins built from what the device install ships: the packaged face photo (mirrored for variety) on
    drawn rooms. `python -m benchmarks sequences` uses held-out dataset faces on photographs instead."""
    from edge_agent.bench import _room
    from edge_agent.capture.demo import load_face
    from edge_agent.sequences import FaceImage, walk_ins

    face = load_face()
    x1, y1, x2, y2 = 0.246, 0.346, 0.749, 0.849  # the default detector's box on the packaged photo, as fractions
    mirrored = np.ascontiguousarray(face[:, ::-1])
    faces = [FaceImage(face, (x1, y1, x2, y2), "demo_face"), FaceImage(mirrored, (1 - x2, y1, 1 - x1, y2), "mirror")]
    rooms = [_room(np.random.default_rng(i)) for i in range(6)]
    return walk_ins(faces, rooms, visits=visits)


def run_sequences_command(cfg: AgentConfig, fps: tuple[float, ...] = (30.0, 15.0), as_json: bool = False) -> str:
    """What `edge-agent bench --sequences` prints: scheduled vs every-frame per sequence (figures, no asserts)."""
    import json

    runs = [run_pair(cfg, s.frames, f, s.name) for f in fps for s in packaged_walk_ins() if s.name != "visits"]
    if as_json:
        return json.dumps(runs, indent=1, default=str)
    lines = [
        "edge-agent bench --sequences: synthetic walk-ins (packaged face, drawn rooms), 640x480, 1 thread;",
        "CPU = process CPU time in the camera loop / sequence duration",
        "",
        "| sequence | fps | CPU every-frame | CPU scheduled | full scans | region searches | still frames "
        "| classifications/s | track recall every/sched. | first detection p95 s | labels same |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in runs:
        b, s, lab = r["every_frame"], r["scheduled"], r["labels"]
        fd = (s.get("first_detection_s") or {}).get("p95")
        lines.append(
            f"| {r['sequence']} | {r['fps']:g} | {fmt(b['cpu_pct'])}% | {fmt(s['cpu_pct'])}% | {s['full_scans']} "
            f"| {s['region_searches']} | {s['still_frames']} | {fmt(s['classifications_per_s'])} "
            f"| {fmt(b.get('track_recall'))} / {fmt(s.get('track_recall'))} | {fmt(fd)} "
            f"| {lab['same']}/{lab['visits']} |"
        )
    return "\n".join(lines)
