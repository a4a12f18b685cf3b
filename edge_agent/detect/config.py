"""The [detector] config section (pydantic v2; unknown keys are rejected)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DetectorConfig(BaseModel):
    """Face detector settings. The defaults are the measured far-face configuration (see docs/detection.md)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["blazeface"] = Field("blazeface", description="Detector implementation (registry key).")
    model: Literal["short_range", "full_range"] = Field(
        "short_range",
        description="BlazeFace variant: short_range (128x128 graph, fast, any input size) or full_range "
        "(192x192 only, ~3x slower).",
    )
    input_width: int | None = Field(
        None,
        ge=64,
        le=1024,
        description="short_range only: run the model at this input width in pixels (a multiple of 16; the height "
        "follows the frame's aspect ratio). Larger finds smaller faces and costs more. None: the native "
        "128x128 (short_range) or 192x192 (full_range), letterboxed.",
    )
    score_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Minimum face confidence, 0-1.")
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="IoU above which overlapping boxes are merged.")
    nms: Literal["weighted", "hard"] = Field(
        "weighted", description="weighted: average overlapping boxes by score (MediaPipe); hard: keep the best only."
    )
    min_face_px: float = Field(0.0, ge=0.0, description="Drop faces narrower than this many frame pixels.")
    max_faces: int = Field(20, ge=1, le=1000, description="Keep at most this many faces per frame (best first).")
    num_threads: int = Field(1, ge=1, le=16, description="Interpreter threads.")
    models_dir: Path | None = Field(
        None,
        description="Where `edge-agent models pull` put the detector files. None: $EDGE_AGENT_MODELS_DIR, else "
        "$STATE_DIRECTORY/models, else ~/.local/share/edge-agent/models.",
    )
    model_path: Path | None = Field(
        None, description="Explicit .tflite file instead of the pinned store copy (not sha256-checked)."
    )

    @model_validator(mode="after")
    def _check_input_width(self) -> DetectorConfig:
        if self.input_width is not None:
            if self.model != "short_range":
                raise ValueError("input_width works with model = 'short_range' only (full_range is fixed at 192x192)")
            if self.input_width % 16:
                raise ValueError(f"input_width must be a multiple of 16, got {self.input_width}")
        return self
