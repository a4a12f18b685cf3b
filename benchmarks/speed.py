"""Speed and memory, ours against the peer: per-face classification, frame → attributes, peak RSS.

Both contenders run in their own fresh process on the same 640x480 frame with one held-out face (about 150 px
wide, so dlib's HOG, whose smallest face is ~80 px, finds it too). One thread each, each with its own
recommended settings: ours = the agent's default detector config + the int8 model in ai-edge-litert; the
peer = `AgeAndGender()` defaults (HOG without upsampling, ONNX Runtime with 1 thread as its manifest pins).
"Per face" for the peer is `predict(frame, boxes=[its HOG box])`: landmarks, alignment, both networks.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import synth_frames as sf
from benchmarks import venvs

log = logging.getLogger(__name__)

FACE_WIDTH = 150.0


def speed_frame(utk_dir: Path | None, seed: int = 3) -> tuple[np.ndarray, list[float]]:
    """One 640x480 frame with one held-out face near the centre; returns it with the true face box."""
    rng = np.random.default_rng(seed)
    crop = sf.face_crops(utk_dir, 1, seed=seed)[0]
    bg = sf.load_backgrounds(["coffee"])[0]
    frame, boxes = sf.make_frame(rng, [crop], [FACE_WIDTH], bg)
    b = boxes[0]
    return frame, [b.x1, b.y1, b.x2, b.y2]


def compare(utk_dir: Path | None, model: Path, repeats: int = 200, with_peer: bool = True) -> dict[str, Any]:
    frame, box = speed_frame(utk_dir)
    out: dict[str, Any] = {"box": box}
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        path = Path(tmp) / "frame.npy"
        np.save(path, frame[None])
        job = {"job": "speed", "frame": str(path), "box": box, "repeats": repeats, "model": str(model)}
        out["ours"] = _run(sys.executable, "benchmarks.workers.ours", job)
        py = venvs.ensure_venv("peer") if with_peer else None
        out["peer"] = _run(py, "benchmarks.workers.peer", job) if py else {"skipped": "peer venv unavailable"}
    return out


def _run(python: Any, module: str, job: dict[str, Any]) -> dict[str, Any]:
    try:
        return venvs.run_worker(python, module, job)
    except venvs.WorkerError as exc:
        return {"skipped": str(exc)}


def ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows: measure, ours, peer, ours / peer (lower is better for all three), peer / ours speed-up."""
    rows = []
    ours, peer = result.get("ours", {}), result.get("peer", {})
    for label, key in (
        ("classification per face, ms (p50)", "classify_ms"),
        ("frame → attributes, 640x480, 1 face, ms (p50)", "frame_ms"),
    ):
        a, b = ours.get(key, {}).get("p50"), peer.get(key, {}).get("p50")
        rows.append(_row(label, a, b))
        # The fastest call is the least disturbed by other load on a shared machine.
        rows.append(_row(label.replace("(p50)", "(min)"), ours.get(key, {}).get("min"), peer.get(key, {}).get("min")))
    rows.append(_row("peak RSS, MB", ours.get("peak_rss_mb"), peer.get("peak_rss_mb")))
    return rows


def _row(label: str, a: float | None, b: float | None) -> dict[str, Any]:
    both = a is not None and b is not None and a > 0 and b > 0
    return {
        "measure": label,
        "ours": a,
        "peer": b,
        "ours / peer": a / b if both else None,
        "peer / ours": b / a if both else None,
    }
