"""`python -m edge_agent.capture SOURCE`: open one source through a CameraWorker and print what it delivers.

A troubleshooting and measuring tool: is the camera delivering, at what rate, how many frames are dropped or bad,
and how much CPU does capture cost? Exit 0 if frames came, 1 if none did, 2 on a bad argument.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from edge_agent.capture.config import CameraConfig, SourceSpecError, source_from_string
from edge_agent.capture.worker import CameraWorker


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m edge_agent.capture", description=__doc__.splitlines()[0])
    p.add_argument("source", help="demo, a camera index, /dev/videoN, an rtsp:// or http:// URL, a file or a folder")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to read (default 10)")
    p.add_argument("--max-fps", type=float, default=15.0, help="analysis fps cap; 0 = none (default 15)")
    p.add_argument("--loop", action="store_true", help="loop a file or folder")
    p.add_argument("--json", action="store_true", help="print the final stats as one JSON line")
    return p.parse_args(argv)


def measure(cam: CameraConfig, seconds: float) -> dict[str, object]:
    """Run a worker for `seconds` with a consumer taking every frame; returns its stats plus cpu_percent."""
    with CameraWorker(cam) as w:
        t0, c0 = time.monotonic(), time.process_time()
        last_print = t0
        while time.monotonic() - t0 < seconds and not w.finished:
            w.latest(0.5)
            if time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                st = w.stats()
                print(
                    f"{st['status']:8s} captured {st['captured']:6d}  delivered {st['delivered']:6d}  "
                    f"dropped {st['dropped']:6d}  capture {st['capture_fps']:6.1f} fps",
                    file=sys.stderr,
                )
        elapsed = max(time.monotonic() - t0, 1e-6)
        stats = w.stats()
        stats["cpu_percent"] = round(100.0 * (time.process_time() - c0) / elapsed, 1)
        stats["seconds"] = round(elapsed, 1)
    return stats


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        src = source_from_string(a.source)
    except SourceSpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.loop and hasattr(src, "loop"):
        src = src.model_copy(update={"loop": True})
    stats = measure(CameraConfig(id="probe", source=src, max_fps=a.max_fps), a.seconds)
    if a.json:
        print(json.dumps(stats))
    else:
        for k, v in stats.items():
            print(f"{k:16s} {v}")
    return 0 if stats["delivered"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
