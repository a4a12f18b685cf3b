"""Config section [attributes]: which model to use and which attributes to compute (a disabled one is never read)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class AttributesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Path | None = Field(
        default=None,
        description=(
            "Attribute model .tflite (its sidecar .json must sit beside it). "
            "Default: the model packaged with edge-agent."
        ),
    )
    age: bool = Field(default=True, description="Estimate age group and age in years.")
    gender: bool = Field(default=True, description="Estimate gender.")
    race: bool = Field(
        default=False,
        description=(
            "Estimate race group. Off by default: biometric categorisation inferring race is prohibited "
            "in the EU (AI Act Art. 5(1)(g))."
        ),
    )
    num_threads: int = Field(default=1, ge=1, le=8, description="Inference threads for the attribute model.")

    def enabled(self) -> tuple[str, ...]:
        return tuple(name for name in ("age", "gender", "race") if getattr(self, name))
