"""`edge-agent bench`: the agent's own per-frame path timed on synthetic 640x480 frames with 1-3 real faces.

Frames are built once, before timing (decoding is excluded), by pasting the packaged public-domain face
photo (capture/demo_face.jpg) at several sizes onto a drawn room. Each frame goes through exactly what the
daemon runs per frame (daemon.camera.CameraRunner.process): detect → classify every face → pose →
track/analytics → Publisher.submit into a temporary outbox. The publisher is never started, so nothing
reaches a broker; submit() cost is the outbox commit the daemon pays. Figures are printed, never asserted.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_agent.procstats import peak_rss_mb
from edge_agent.records import Frame

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 640, 480
CAMERA_ID = "bench"
PACKAGED_MODEL = Path(__file__).with_name("models") / "attributes_int8.tflite"


def _room(rng: np.random.Generator) -> np.ndarray:
    """A calm drawn background (gradient and blurred blocks), like the demo source's."""
    top, bottom = rng.uniform(90, 200, 3), rng.uniform(40, 140, 3)
    ramp = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    bg = (top * (1 - ramp) + bottom * ramp).astype(np.float32) * np.ones((1, WIDTH, 1), np.float32)
    for _ in range(6):
        x1, y1 = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
        x2, y2 = x1 + int(rng.integers(WIDTH // 10, WIDTH // 3)), y1 + int(rng.integers(HEIGHT // 10, HEIGHT // 3))
        cv2.rectangle(bg, (x1, y1), (x2, y2), tuple(float(v) for v in rng.uniform(30, 220, 3)), -1)
    return np.clip(cv2.GaussianBlur(bg, (0, 0), sigmaX=8), 0, 255).astype(np.uint8)


def _render(face: np.ndarray, room: np.ndarray, k: int, step: int) -> np.ndarray:
    """One frame with k faces, each in its own lane, moved slightly with `step`."""
    from edge_agent.capture.demo import Placement, paste

    frame = room.copy()
    lane = WIDTH / k
    for j in range(k):
        # The patch may overlap its neighbours' feathered margins: the face is only its middle ~45%.
        size = float(min(lane * 1.2, 260 + 30 * np.sin(1.3 * j + k)))
        x = j * lane + (lane - size) / 2 + 6 * np.sin(step * 0.3 + j)
        y = (HEIGHT - size) / 2 + 4 * np.cos(step * 0.2 + j)
        paste(frame, face if (k + j) % 2 == 0 else np.ascontiguousarray(face[:, ::-1]), Placement(x, y, size))
    return frame


def make_frames(n: int, faces: Sequence[int] = (1, 2, 3), seed: int = 0, pool: int = 5) -> list[tuple[np.ndarray, int]]:
    """n BGR 640x480 frames (image, faces pasted), holding each face count of `faces` for 30 frames (1 s at 30 fps).

    Only `pool` distinct frames per face count are rendered and then played back and forth, so the frames held
    in memory (pool x counts x 0.9 MB) barely touch the peak-RSS figure; faces move a few pixels between frames,
    so the tracker sees people stay.
    """
    from edge_agent.capture.demo import load_face

    rng = np.random.default_rng(seed)
    face = load_face()
    counts = sorted({int(k) for k in faces})
    rendered = {k: [_render(face, _room(rng), k, s) for s in range(pool)] for k in counts}
    cycle = list(range(pool)) + list(range(pool - 2, 0, -1))  # ping-pong: 0..4..1
    out = []
    for i in range(n):
        k = int(faces[(i // 30) % len(faces)])
        out.append((rendered[k][cycle[i % len(cycle)]], k))
    return out


def _with_threads(cfg: Any, threads: int, model_path: Path | None) -> Any:
    """A copy of cfg with every interpreter at `threads` threads and, optionally, another attribute model."""
    attributes: dict[str, Any] = {"num_threads": threads} if "num_threads" in type(cfg.attributes).model_fields else {}
    model = (
        model_path or getattr(cfg.attributes, "model", None) or (PACKAGED_MODEL if PACKAGED_MODEL.is_file() else None)
    )
    if model is not None:
        attributes["model"] = Path(model)
    update: dict[str, Any] = {
        "detector": cfg.detector.model_copy(update={"num_threads": threads}),
        "attributes": cfg.attributes.model_copy(update=attributes),
    }
    return cfg.model_copy(update=update)


class _NoFeed:
    """A frame feed that never delivers: the bench pushes frames into CameraRunner.process itself."""

    finished = True

    @property
    def status(self) -> Any:
        from edge_agent.capture.status import CaptureStatus

        return CaptureStatus("online", time.time())

    def latest(self, timeout: float | None = None) -> None:
        return None

    def snapshot(self) -> Any:
        from edge_agent.capture.status import CaptureSnapshot

        return CaptureSnapshot("online", 0, 0, 0, 0, 0.0)


class _Pipeline:
    """The daemon's per-camera path, built by the daemon's own builders, with a never-started publisher."""

    def __init__(self, cfg: Any, state_dir: Path) -> None:
        from edge_agent.daemon import builders
        from edge_agent.daemon.camera import CameraRunner, CameraStages, Timings
        from edge_agent.daemon.sinks import Sink

        self.detector = builders.detector(cfg.detector)
        self.classifier, meta = builders.classifier(cfg.attributes)
        self.publisher = builders.publisher(cfg.mqtt, cfg.outbox, CAMERA_ID, state_dir)
        self.sink = Sink(self.publisher)
        self.timings = Timings()
        self.reset_timings()
        heads = cfg.attributes.enabled()
        analytics = builders.camera_analytics(CAMERA_ID, cfg.tracking, cfg.analytics, meta, heads)
        stages = CameraStages(self.detector, self.classifier, analytics, builders.pose_fn())
        # frames are handed to runner.process() directly, so the runner's frame feed is never read
        self.runner = CameraRunner(CAMERA_ID, _NoFeed(), stages, self.timings, self.sink.send)
        self.index = 0

    def reset_timings(self) -> None:
        from edge_agent.daemon.stats import LatencyWindow

        for name in vars(self.timings):  # keep every sample, not the daemon's rolling window
            setattr(self.timings, name, LatencyWindow(size=1_000_000))

    def process(self, image: np.ndarray) -> None:
        self.index += 1
        self.runner.process(Frame(CAMERA_ID, self.index, time.time(), time.monotonic(), image))

    def close(self) -> None:
        for part in (self.publisher, self.classifier, self.detector):
            if part is not None:
                try:
                    part.close()
                except Exception as exc:  # noqa: BLE001 - teardown continues
                    log.warning("bench: closing %s failed: %s", type(part).__name__, exc)


def _percentiles(window: Any) -> dict[str, float | None]:
    p = window.percentiles()
    return {"p50": p.p50, "p95": p.p95, "n": p.n}


def _paced(pipe: _Pipeline, frames: list[np.ndarray], n: int, fps: float) -> dict[str, Any]:
    """CPU time of this process / wall time while a paced `fps` source delivers n one-face frames."""
    period = 1.0 / fps
    cpu0, wall0 = time.process_time(), time.monotonic()
    late = 0
    for i in range(n):
        due = wall0 + i * period
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        else:
            late += 1
        pipe.process(frames[i % len(frames)])
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    return {
        "fps": fps,
        "frames": n,
        "wall_s": round(wall, 2),
        "cpu_share_pct": round(100.0 * cpu / wall, 2),
        "late_frames": late,
    }


def run_bench(
    config: Any = None,
    frames: int = 600,
    faces: Sequence[int] = (1, 2, 3),
    threads: int = 1,
    model_path: Path | None = None,
    paced_frames: int = 300,
    paced_fps: float = 30.0,
) -> dict[str, Any]:
    """Time the agent's per-frame path; returns per-stage p50/p95 (ms), fps, peak RSS and the paced CPU share."""
    from edge_agent.config.model import AgentConfig

    cfg = _with_threads(config if config is not None else AgentConfig(), threads, model_path)
    work = make_frames(frames, faces)
    one_face = [img for img, _ in make_frames(8, (1,), seed=1)]
    distinct = {id(img): img.nbytes for img, _ in work} | {id(img): img.nbytes for img in one_face}
    with tempfile.TemporaryDirectory(prefix="edge-agent-bench-") as tmp:
        pipe = _Pipeline(cfg, Path(tmp))
        try:
            for img, _ in work[:10]:  # warm-up: interpreter allocation and first-call costs are not per-frame
                pipe.process(img)
            pipe.reset_timings()
            result = _timed_run(pipe, work)
            pipe.reset_timings()
            result["paced"] = _paced(pipe, one_face, paced_frames, paced_fps)
            result["paced"]["capture_to_publish"] = _percentiles(pipe.timings.capture_to_publish)
            result["published"] = {"submitted": pipe.sink.submitted, "failed": pipe.sink.failed}
        finally:
            pipe.close()
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["frames_mb"] = round(sum(distinct.values()) / 2**20, 1)  # pre-built frames held during the run
    result["setup"] = _describe(cfg, frames, faces, threads)
    return result


def _timed_run(pipe: _Pipeline, work: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    """Every frame as fast as possible; the daemon's own stage timers record each stage."""
    t0 = time.perf_counter()
    for img, _ in work:
        pipe.process(img)
    wall = time.perf_counter() - t0
    tm = pipe.timings
    return {
        "frames": len(work),
        "faces_pasted": int(sum(k for _, k in work)),
        "faces_found": pipe.runner.faces_total,
        "fps": round(len(work) / wall, 1) if wall > 0 else None,
        "stages": {
            "detect": _percentiles(tm.detect),
            "classify_face": _percentiles(tm.classify_face),
            "classify_frame": _percentiles(tm.classify),
            "pose": _percentiles(tm.pose),
            "track_analytics": _percentiles(tm.analytics),
            "publish_submit": _percentiles(tm.publish),
            "total": _percentiles(tm.total),
        },
        "capture_to_publish": _percentiles(tm.capture_to_publish),
        "bad_frames": pipe.runner.bad_total,
    }


def _describe(cfg: Any, frames: int, faces: Sequence[int], threads: int) -> dict[str, Any]:
    from edge_agent.runtime import runtime_version

    det = cfg.detector
    return {
        "frames": frames,
        "faces_per_frame": list(faces),
        "threads": threads,
        "frame_size": f"{WIDTH}x{HEIGHT}",
        "detector": f"{det.model}, input_width={getattr(det, 'input_width', None)}"
        + (f", refine<{det.refine_below_px:g}px" if getattr(det, "refine_below_px", 0) else ""),
        "attribute_model": str(getattr(cfg.attributes, "model", "")),
        "runtime": runtime_version(),
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def summary(result: dict[str, Any]) -> str:
    """The measured figures as plain lines for the terminal (targets and report tables: benchmarks/targets.py)."""
    s, p, c2p = result["setup"], result["paced"], result["capture_to_publish"]
    lines = [
        f"edge-agent bench: {s['frames']} frames {s['frame_size']}, faces per frame {s['faces_per_frame']}, "
        f"{s['threads']} thread(s), detector {s['detector']}, {s['runtime']}",
        f"model {s['attribute_model']}",
    ]
    lines += [
        f"  {name:<16} p50 {_fmt(st['p50'])} ms  p95 {_fmt(st['p95'])} ms  n={st['n']}"
        for name, st in result["stages"].items()
    ]
    lines += [
        f"end-to-end {_fmt(result['fps'])} frames/s; faces found {result['faces_found']} of {result['faces_pasted']}",
        f"peak RSS {_fmt(result['peak_rss_mb'])} MB ({_fmt(result.get('frames_mb'))} MB of it pre-built bench frames)",
        f"CPU at a paced {p['fps']:g} fps source, 1 face: {_fmt(p['cpu_share_pct'])}% of one core",
        f"capture -> publish submit p50 {_fmt(c2p['p50'])} ms, p95 {_fmt(c2p['p95'])} ms",
    ]
    return "\n".join(lines)


def run_bench_command(
    config: Any, frames: int = 600, faces: Sequence[int] = (1, 2, 3), threads: int = 1, as_json: bool = False
) -> str:
    """What `edge-agent bench` prints: the figures as plain lines, or JSON (targets: `python -m benchmarks bench`)."""
    import json

    result = run_bench(config, frames=frames, faces=faces, threads=threads)
    return json.dumps(result, indent=1, default=str) if as_json else summary(result)
