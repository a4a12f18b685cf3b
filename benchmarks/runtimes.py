"""Runtimes: our int8 and float attribute models in ai-edge-litert, tflite-runtime 2.14 (own venv) and tf.lite.

Each runtime runs in its own process; inputs are random tensors of the model's input type (latency does not
depend on pixel values for these graphs). Median (p50) ms per invoke at 1 and 2 threads.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from benchmarks import venvs

log = logging.getLogger(__name__)

THREADS = (1, 2)


def _models(int8: Path, float_model: Path | None, detector: Path | None) -> dict[str, str]:
    models = {"attributes int8": str(int8)}
    if float_model is not None and float_model.is_file():
        models["attributes float32"] = str(float_model)
    if detector is not None and detector.is_file():
        models["BlazeFace short range"] = str(detector)
    return models


def compare(
    int8: Path,
    float_model: Path | None,
    detector: Path | None,
    repeats: int = 200,
    with_tflr: bool = True,
    with_tf: bool = True,
) -> dict[str, Any]:
    """runtime -> {"runtime": version, "results": {"<model>@<threads>": {"ms": {...}} | {"error": ...}}}."""
    models = _models(int8, float_model, detector)
    job = {"runtime": "", "models": models, "threads": list(THREADS), "repeats": repeats}
    plan: list[tuple[str, str, Any]] = [("ai-edge-litert", "litert", sys.executable)]
    if with_tflr:
        plan.append(("tflite-runtime", "tflite-runtime", venvs.ensure_venv("tflr")))
    if with_tf:
        plan.append(("tf.lite", "tf", sys.executable if _has_tensorflow() else None))
    out: dict[str, Any] = {"models": list(models), "threads": list(THREADS)}
    for label, runtime, python in plan:
        if python is None:
            out[label] = {"skipped": "runtime not installed"}
            continue
        try:
            out[label] = venvs.run_worker(python, "benchmarks.workers.runtime", {**job, "runtime": runtime})
        except venvs.WorkerError as exc:
            out[label] = {"skipped": str(exc)}
    return out


def _has_tensorflow() -> bool:
    from importlib.util import find_spec

    return find_spec("tensorflow") is not None


def ratio_rows(result: dict[str, Any], base: str = "ai-edge-litert") -> list[dict[str, Any]]:
    """One row per model and thread count: ms in each runtime and other / base ratios."""
    rows = []
    ref = result.get(base, {}).get("results", {})
    for model in result["models"]:
        for t in result["threads"]:
            key = f"{model}@{t}"
            row: dict[str, Any] = {"model": model, "threads": t}
            base_ms = ref.get(key, {}).get("ms", {}).get("p50")
            for rt in ("ai-edge-litert", "tflite-runtime", "tf.lite"):
                r = result.get(rt, {})
                cell = r.get("results", {}).get(key, {})
                if "skipped" in r:
                    row[rt] = "skipped"
                elif "error" in cell:
                    row[rt] = f"cannot load: {cell['error']}"
                else:
                    ms = cell.get("ms", {}).get("p50")
                    row[rt] = ms
                    if rt != base and ms and base_ms:
                        row[f"{rt} / {base}"] = ms / base_ms
            rows.append(row)
    return rows
