"""Attribute-model metadata: the sidecar JSON that travels with every .tflite (labels, preprocessing, crop, provenance).

The toolchain writes it (conversion/quantize.py) and the agent reads it; label lists and preprocessing
constants live only here-in-the-file, never duplicated in code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_ID = "edge-agent/model-metadata/2"
# Version 1 sidecars (no temperatures, no flip option) still load: every temperature is then 1.
SCHEMA_IDS: tuple[str, ...] = ("edge-agent/model-metadata/1", SCHEMA_ID)
# The heads the agent understands. A model must provide every enabled head under exactly this name.
CLASS_HEADS: tuple[str, ...] = ("age", "gender", "race")
REGRESSION_HEADS: tuple[str, ...] = ("age_years",)


class MetadataError(ValueError):
    """The sidecar is missing, malformed, or does not belong to the model file beside it."""


@dataclass(frozen=True, slots=True)
class Preprocess:
    """How a face crop becomes the model input: x = (pixel - mean) / std on RGB (or BGR) values 0..255."""

    size: int
    color: str  # "RGB" or "BGR"
    mean: float
    std: float


@dataclass(frozen=True, slots=True)
class CropSpec:
    """How the face crop is cut from the frame: square around the detector box, grown by `margin` per side."""

    margin: float
    square: bool
    alignment: str  # "none" (axis-aligned box) or "eyes" (rotate so the eyes are level)


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    name: str
    version: str
    sha256: str
    quantization: str
    preprocess: Preprocess
    crop: CropSpec
    labels: dict[str, tuple[str, ...]]  # head -> labels in output order
    age_group_edges: tuple[int, ...]  # lower bound in years of each age group, same order as labels["age"]
    raw: dict[str, Any]
    # Per-head softmax temperature fitted on validation (p ∝ p_model^(1/T)); 1.0 where none was fitted.
    temperature: dict[str, float] = field(default_factory=dict)
    flip: bool = False  # test-time flip: average the face and its mirror image

    @property
    def heads(self) -> tuple[str, ...]:
        return tuple(self.labels)


def sidecar_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _require(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise MetadataError(f"model metadata {where}: missing key '{key}'")
    return d[key]


def parse_metadata(raw: dict[str, Any], where: str = "") -> ModelMetadata:
    """Validate a metadata dict; raises MetadataError naming the first problem."""
    if raw.get("schema") not in SCHEMA_IDS:
        raise MetadataError(f"model metadata {where}: schema is {raw.get('schema')!r}, expected {SCHEMA_ID!r}")
    inp = _require(raw, "input", where)
    norm = _require(inp, "normalization", where)
    color = str(_require(inp, "color", where)).upper()
    if color not in ("RGB", "BGR"):
        raise MetadataError(f"model metadata {where}: input.color must be RGB or BGR, got {color!r}")
    pre = Preprocess(
        size=int(_require(inp, "size", where)),
        color=color,
        mean=float(_require(norm, "mean", where)),
        std=float(_require(norm, "std", where)),
    )
    crop_raw = _require(raw, "crop", where)
    crop = CropSpec(
        margin=float(_require(crop_raw, "margin", where)),
        square=bool(crop_raw.get("square", True)),
        alignment=str(crop_raw.get("alignment", "none")),
    )
    heads_raw = _require(raw, "heads", where)
    labels: dict[str, tuple[str, ...]] = {}
    for head in CLASS_HEADS:
        if head in heads_raw:
            lab = heads_raw[head].get("labels")
            if not isinstance(lab, list) or not lab or not all(isinstance(x, str) for x in lab):
                raise MetadataError(f"model metadata {where}: heads.{head}.labels must be a non-empty list of strings")
            labels[head] = tuple(lab)
    if not labels:
        raise MetadataError(f"model metadata {where}: no known heads (expected some of {', '.join(CLASS_HEADS)})")
    edges: tuple[int, ...] = ()
    if "age" in labels:
        edges = tuple(int(e) for e in heads_raw["age"].get("group_min_years", []))
        if len(edges) != len(labels["age"]):
            raise MetadataError(f"model metadata {where}: heads.age.group_min_years must match heads.age.labels")
    temps: dict[str, float] = {}
    for head in labels:
        t = heads_raw[head].get("temperature", 1.0)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.05 <= float(t) <= 20.0:
            raise MetadataError(
                f"model metadata {where}: heads.{head}.temperature must be a number in 0.05-20, got {t!r}"
            )
        temps[head] = float(t)
    inference = raw.get("inference", {})
    if not isinstance(inference, dict):
        raise MetadataError(f"model metadata {where}: inference must be an object, got {inference!r}")
    flip = inference.get("flip", False)
    if not isinstance(flip, bool):
        raise MetadataError(f"model metadata {where}: inference.flip must be true or false, got {flip!r}")
    return ModelMetadata(
        name=str(_require(raw, "name", where)),
        version=str(_require(raw, "version", where)),
        sha256=str(_require(raw, "sha256", where)),
        quantization=str(_require(raw, "quantization", where)),
        preprocess=pre,
        crop=crop,
        labels=labels,
        age_group_edges=edges,
        raw=raw,
        temperature=temps,
        flip=flip,
    )


def load_metadata(model_path: str | Path, verify_hash: bool = True) -> ModelMetadata:
    """Read and validate the sidecar of `model_path`; with verify_hash, check it describes these exact bytes."""
    model_path = Path(model_path)
    side = sidecar_path(model_path)
    if not side.is_file():
        raise MetadataError(f"model metadata not found: {side} (every model needs its sidecar JSON)")
    try:
        raw = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(f"model metadata {side}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise MetadataError(f"model metadata {side}: top level must be an object")
    meta = parse_metadata(raw, str(side))
    if verify_hash and model_path.is_file():
        actual = file_sha256(model_path)
        if actual != meta.sha256:
            raise MetadataError(
                f"model metadata {side} describes sha256 {meta.sha256[:12]}…, but {model_path.name} is {actual[:12]}…"
            )
    return meta


def write_metadata(model_path: Path, raw: dict[str, Any]) -> Path:
    """Write the sidecar for `model_path`, filling in schema and the file's sha256."""
    raw = dict(raw)
    raw["schema"] = SCHEMA_ID
    raw["sha256"] = file_sha256(model_path)
    parse_metadata(raw, str(model_path))  # never write something the agent would reject
    side = sidecar_path(model_path)
    side.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return side
