"""The [detector] config section (pydantic v2; unknown keys are rejected)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge_agent.detect.schedule_config import ScheduleConfig

# 224 px wide on a 640x480 frame (scale 0.35) is the measured far-face default: docs/detection.md.
DEFAULT_SHORT_RANGE_WIDTH = 224


class DetectorConfig(BaseModel):
    """Face detector settings. The defaults are the measured far-face configuration (see docs/detection.md)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["blazeface"] = Field(default="blazeface", description="Detector implementation (registry key).")
    model: Literal["short_range", "full_range"] = Field(
        default="short_range",
        description="BlazeFace variant: short_range (128x128 graph, fast, any input size) or full_range "
        "(192x192 only, ~3x slower).",
    )
    input_width: int | None = Field(
        default=None,
        ge=64,
        le=1024,
        description="Model input size in px along the frame's longer side (a multiple of 16; the other side "
        "follows the aspect ratio, so 224 means 224x176 for 640x480). "
        "Larger finds smaller faces and costs more (see docs/detection.md). None: 224 for short_range, the fixed "
        "192x192 for full_range. 128 is the model's native scale.",
    )
    score_threshold: float = Field(
        default=0.65,
        gt=0.0,
        lt=1.0,
        description="Minimum confidence, 0-1, of a face that gets no second look (see refine_*).",
    )
    nms_iou: float = Field(default=0.3, gt=0.0, le=1.0, description="IoU above which overlapping boxes are merged.")
    nms: Literal["weighted", "hard"] = Field(
        default="weighted",
        description="weighted: average overlapping boxes by score (MediaPipe); hard: keep the best only.",
    )
    min_detection_px: float = Field(
        default=0.0,
        ge=0.0,
        description="The detector drops faces narrower than this many frame pixels (tracking.min_face_px is the "
        "separate, larger threshold below which a kept face gets no attributes).",
    )
    max_faces: int = Field(
        default=20, ge=1, le=1000, description="Keep at most this many faces per frame (best first)."
    )
    refine_below_px: float = Field(
        default=100.0,
        ge=0.0,
        description="Faces narrower than this (frame px) get a second look on an upscaled crop with the short-range "
        "model, which keeps the sharper box and drops non-faces. 0 disables.",
    )
    candidate_threshold: float = Field(
        default=0.2,
        gt=0.0,
        lt=1.0,
        description="With refine on: first-pass confidence, 0-1, at which a small face is worth a second look.",
    )
    refine_input: int = Field(
        default=64, ge=32, le=256, description="Input side in px of the second look (multiple of 16)."
    )
    refine_context: float = Field(
        default=1.5, ge=1.2, le=4.0, description="Crop side of the second look, in face widths."
    )
    refine_threshold: float = Field(default=0.7, gt=0.0, lt=1.0, description="Score the second look must reach, 0-1.")
    max_refine: int = Field(
        default=8, ge=1, le=100, description="At most this many second looks per frame (cost bound)."
    )
    num_threads: int = Field(default=1, ge=1, le=16, description="Interpreter threads.")
    models_dir: Path | None = Field(
        default=None,
        description="Where `edge-agent models pull` put the detector files. None: $EDGE_AGENT_MODELS_DIR, else "
        "$STATE_DIRECTORY/models, else ~/.local/share/edge-agent/models.",
    )
    model_path: Path | None = Field(
        default=None,
        description="Explicit .tflite file for `model` instead of the pinned store copy (not sha256-checked); "
        "the second look still uses the pinned short-range file unless model is short_range.",
    )

    schedule: ScheduleConfig = Field(
        default_factory=ScheduleConfig,
        description="When the whole frame is scanned and when only the known faces are re-found (docs/detection.md).",
    )

    def resolved_input_width(self) -> int | None:
        """input_width with the model's default filled in (None: full_range's fixed square)."""
        if self.input_width is not None:
            return self.input_width
        return DEFAULT_SHORT_RANGE_WIDTH if self.model == "short_range" else None

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: object) -> object:
        """An old config's `detector.min_face_px` gets an error naming its new key (never a silent default)."""
        if isinstance(data, dict) and "min_face_px" in data:
            raise ValueError(
                "min_face_px was renamed: use detector.min_detection_px (faces the detector drops); "
                "tracking.min_face_px is the attribute threshold"
            )
        return data

    @model_validator(mode="after")
    def _check_input_width(self) -> DetectorConfig:
        if self.input_width is not None:
            if self.model != "short_range":
                raise ValueError("input_width works with model = 'short_range' only (full_range is fixed at 192x192)")
            if self.input_width % 16:
                raise ValueError(f"input_width must be a multiple of 16, got {self.input_width}")
        if self.refine_input % 16:
            raise ValueError(f"refine_input must be a multiple of 16, got {self.refine_input}")
        return self
