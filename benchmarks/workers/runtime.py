"""Time one TFLite runtime (ai-edge-litert, tflite-runtime or tf.lite) on our models at several thread counts.

Run as `python -m benchmarks.workers.runtime < job.json` in a venv that has that runtime. Each model is
loaded with the runtime's own Interpreter and its default delegates (XNNPACK where the runtime applies it).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from benchmarks.workers.common import peak_rss_mb, read_job, reply, time_calls


def _interpreter_class(runtime: str) -> tuple[Any, str]:
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, f"ai-edge-litert {version('ai-edge-litert')}"
    if runtime == "tflite-runtime":
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, f"tflite-runtime {version('tflite-runtime')}"
    if runtime == "tf":
        import tensorflow as tf

        try:
            v = version("tensorflow")
        except PackageNotFoundError:
            v = tf.__version__
        return tf.lite.Interpreter, f"tf.lite (tensorflow {v})"
    raise ValueError(f"unknown runtime {runtime!r}")


def _time_model(cls: Any, path: str, threads: int, repeats: int) -> dict[str, Any]:
    try:
        interp = cls(model_path=path, num_threads=threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        return {"error": (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]}
    inp = interp.get_input_details()[0]
    rng = np.random.default_rng(0)
    if np.issubdtype(inp["dtype"], np.integer):
        info = np.iinfo(inp["dtype"])
        x = rng.integers(info.min, info.max, size=inp["shape"], endpoint=True).astype(inp["dtype"])
    else:
        x = rng.uniform(-1, 1, size=inp["shape"]).astype(inp["dtype"])
    interp.set_tensor(inp["index"], x)
    try:
        return {"ms": time_calls(interp.invoke, repeats, warmup=5)}
    except (ValueError, RuntimeError) as exc:
        return {"error": "invoke failed: " + (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]}


def job_runtimes(job: dict[str, Any]) -> dict[str, Any]:
    cls, name = _interpreter_class(job["runtime"])
    results: dict[str, Any] = {}
    for label, path in job["models"].items():
        for threads in job["threads"]:
            results[f"{label}@{threads}"] = _time_model(cls, path, int(threads), int(job["repeats"]))
    return {"runtime": name, "numpy": np.__version__, "results": results, "peak_rss_mb": peak_rss_mb()}


def main() -> int:
    job = read_job()
    try:
        reply(job_runtimes(job))
    except Exception as exc:  # noqa: BLE001 - the orchestrator reports it as one line
        reply({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
