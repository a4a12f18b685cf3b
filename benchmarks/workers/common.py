"""Stdlib + numpy helpers shared by every worker; must import in any venv (peer, tflite-runtime).

Of edge_agent only `edge_agent.procstats` is used: it needs the standard library alone (workers run with the repo
on PYTHONPATH), and it is the one peak-RSS implementation that stays right after execve.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge_agent.procstats import peak_rss_mb

__all__ = ["peak_rss_mb", "read_job", "reply"]


def read_job() -> dict[str, Any]:
    return json.loads(sys.stdin.read())


def reply(result: dict[str, Any]) -> None:
    """The worker's answer: one JSON line, the last on stdout."""
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def summarize_ms(samples_s: list[float]) -> dict[str, float]:
    a = np.asarray(samples_s, dtype=np.float64) * 1000.0
    if a.size == 0:
        return {"n": 0}
    return {
        "n": int(a.size),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "mean": float(a.mean()),
        "min": float(a.min()),
    }


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Latency of fn() over `repeats` calls after `warmup` untimed ones, in ms."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return summarize_ms(samples)


def paced_cpu_share(fn: Callable[[int], Any], n_frames: int, fps: float = 30.0) -> dict[str, float]:
    """Run fn(i) once per tick of a paced `fps` source; CPU time of this process / wall time (1.0 = one core)."""
    period = 1.0 / fps
    cpu0, wall0 = time.process_time(), time.monotonic()
    late = 0
    for i in range(n_frames):
        due = wall0 + i * period
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        else:
            late += 1
        fn(i)
    wall = time.monotonic() - wall0
    return {"cpu_share": (time.process_time() - cpu0) / wall, "frames": n_frames, "late_frames": late, "wall_s": wall}
