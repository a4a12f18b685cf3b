"""Intel's age-gender-recognition-retail-0013 (OpenVINO IR) on given face boxes, run in its own venv.

Run as `<openvino venv>/bin/python -m benchmarks.workers.intel < job.json` from the repo root. The crop follows
Intel's interactive face detection demo: the detector box enlarged 1.2x about its centre, resized to 62x62 BGR 0-255.
Outputs: `age_conv3` (age / 100) and `prob` (softmax over [female, male]).
"""

from __future__ import annotations

import sys
from typing import Any

import cv2
import numpy as np

from benchmarks.workers.common import peak_rss_mb, read_job, reply

ENLARGE = 1.2
SIZE = 62


def crop(img: np.ndarray, box: list[float]) -> np.ndarray:
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = (x2 - x1) * ENLARGE, (y2 - y1) * ENLARGE
    a, b = round(cx - w / 2), round(cy - h / 2)
    c, d = round(cx + w / 2), round(cy + h / 2)
    H, W = img.shape[:2]
    pad = max(0, -a, -b, c - W, d - H)
    if pad:
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        a, b, c, d = a + pad, b + pad, c + pad, d + pad
    return cv2.resize(img[b:d, a:c], (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def job_accuracy(job: dict[str, Any]) -> dict[str, Any]:
    import openvino as ov

    core = ov.Core()
    model = core.compile_model(job["xml"], "CPU", {"INFERENCE_NUM_THREADS": 1})
    req = model.create_infer_request()
    rows = []
    for item in job["items"]:
        img = cv2.imread(item["path"], cv2.IMREAD_COLOR)
        if img is None:
            rows.append({"path": item["path"], "error": "unreadable"})
            continue
        x = crop(img, item["box"]).transpose(2, 0, 1)[None].astype(np.float32)
        out = req.infer({"data": x})
        vals = {k.get_any_name(): v for k, v in out.items()}
        prob = vals["prob"].reshape(-1)  # [female, male]
        rows.append(
            {
                "path": item["path"],
                "age": float(vals["age_conv3"].reshape(-1)[0] * 100.0),
                "gender": "male" if prob[1] >= prob[0] else "female",
            }
        )
    return {"rows": rows, "peak_rss_mb": peak_rss_mb()}


def main() -> int:
    job = read_job()
    try:
        reply(job_accuracy(job))
    except Exception as exc:  # noqa: BLE001 - the orchestrator reports it as one line
        reply({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
