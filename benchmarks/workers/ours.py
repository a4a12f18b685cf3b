"""Our contender in its own process (main venv): per-face classification, frame → attributes, peak RSS.

Run as `python -m benchmarks.workers.ours < job.json` from the repo root. One thread, the agent's default
detector configuration and the given attribute model.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.workers.common import peak_rss_mb, read_job, reply, time_calls


def job_speed(job: dict[str, Any]) -> dict[str, Any]:
    from benchmarks import ours

    t0 = time.perf_counter()
    det = ours.detector(job.get("detector") or {})
    clf = ours.classifier(Path(job["model"]))
    frame = np.load(job["frame"])[0]
    dets = det.detect(frame)
    load_s = time.perf_counter() - t0
    if not dets:
        return {"error": "our detector found no face in the speed frame"}
    one = [dets[0]]
    reps = int(job["repeats"])
    per_face = time_calls(lambda: clf.classify(frame, one), reps)
    detect = time_calls(lambda: det.detect(frame), reps)
    per_frame = time_calls(lambda: clf.classify(frame, det.detect(frame)), reps)
    return {
        "faces_found": len(dets),
        "load_s": load_s,
        "classify_ms": per_face,
        "detect_ms": detect,
        "frame_ms": per_frame,
        "peak_rss_mb": peak_rss_mb(),
    }


def job_bench(job: dict[str, Any]) -> dict[str, Any]:
    """`edge-agent bench` in a clean process, so its RSS is the agent's own."""
    from edge_agent.bench import run_bench

    config = None
    if job.get("config"):
        from edge_agent.config.loader import load_config

        config = load_config(job["config"])
    return run_bench(
        config,
        frames=int(job["frames"]),
        faces=tuple(job["faces"]),
        threads=int(job["threads"]),
        model_path=Path(job["model"]) if job.get("model") else None,
        paced_frames=int(job.get("paced_frames", 300)),
    )


JOBS = {"speed": job_speed, "bench": job_bench}


def main() -> int:
    job = read_job()
    try:
        reply(JOBS[job["job"]](job))
    except Exception as exc:  # noqa: BLE001 - the orchestrator reports it as one line
        reply({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
