"""`edge-convert quantize`: Keras model → TFLite (full-integer int8, or float16/float32) with its metadata sidecar."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conversion.data import DataError, content_sha256, load_chip, read_dataset, split_of
from conversion.errors import ConversionError
from conversion.labels import AGE_GROUP_MIN, HEAD_LABELS
from conversion.preprocess import MEAN, STD, chip_to_input, stratified_sample

log = logging.getLogger(__name__)

QUANT_TYPES = ("int8", "uint8", "float16", "float32")  # int8/uint8: full-integer with that input type


@dataclass
class QuantizeConfig:
    model: Path
    out: Path
    calibration: Path | None = None
    quantization: str = "int8"
    samples: int = 300
    split: str = "train"  # which hash-split of the calibration data to draw from ("all" for a separate folder)
    crop_frac: float = 0.80  # centre crop of dataset chips, as in training
    crop_margin: float = 0.25  # per-side margin around the detector box on device (matches crop_frac framing)
    seed: int = 0
    version: str = "1.0.0"
    name: str = "edge-agent-attributes"
    training: dict[str, Any] = field(default_factory=dict)


def load_keras(path: Path) -> Any:
    """Load a .keras model and check it is an image model with the expected named heads."""
    import keras

    from conversion.model import check_heads

    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"model not found: {path}")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a non-model file
        raise ConversionError(f"not a Keras model: {path} ({type(exc).__name__})") from None
    try:
        check_heads(model)
    except ValueError as exc:
        raise ConversionError(f"{path}: {exc}") from None
    return model


def calibration_inputs(cfg: QuantizeConfig, size: int) -> np.ndarray:
    """Real face crops, preprocessed exactly as at inference, sampled across classes. Never random noise."""
    if cfg.calibration is None:
        raise ConversionError("int8 quantization needs --calibration DIR|CSV of real face images")
    ds = read_dataset(cfg.calibration)
    pool = ds.samples
    if cfg.split != "all":
        pool = [s for s in pool if split_of(content_sha256(s.path)) == cfg.split]
    picked = stratified_sample(pool, cfg.samples * 2, cfg.seed)
    xs: list[np.ndarray] = []
    bad = 0
    for s in picked:
        rgb = load_chip(s.path)
        if rgb is None:
            bad += 1
            log.warning("calibration: skipping unreadable image %s", s.path)
            continue
        xs.append(chip_to_input(rgb, size, cfg.crop_frac))
        if len(xs) >= cfg.samples:
            break
    if not xs:
        raise ConversionError(f"calibration set is empty: no readable images in {cfg.calibration} (split {cfg.split}, {bad} unreadable)")
    log.info("calibrating on %d real face crops (%d unreadable skipped; %s)", len(xs), bad, ds.report_skipped())
    return np.stack(xs)


def convert(model: Any, quantization: str, calib: np.ndarray | None) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization in ("int8", "uint8"):
        assert calib is not None

        def rep() -> Iterator[list[np.ndarray]]:
            for x in calib:
                yield [x[None].astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8 if quantization == "int8" else tf.uint8
        conv.inference_output_type = tf.int8 if quantization == "int8" else tf.uint8
    elif quantization == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    return bytes(conv.convert())


def metadata(cfg: QuantizeConfig, size: int) -> dict[str, Any]:
    return {
        "name": cfg.name,
        "version": cfg.version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "architecture": {"backbone": "MobileNetV2", **cfg.training.get("architecture", {})},
        "input": {"size": size, "color": "RGB", "layout": "NHWC", "tensor": "image",
                  "normalization": {"mean": MEAN, "std": STD, "formula": "x = (pixel - mean) / std, then quantized with the input tensor's scale/zero point"}},
        "crop": {"margin": cfg.crop_margin, "square": True, "alignment": "none",
                 "reference": "square around the detector box centre, side = max(w, h) * (1 + 2 * margin), resized with area interpolation",
                 "training_chip_crop_frac": cfg.crop_frac},
        "heads": {
            "age": {"labels": list(HEAD_LABELS["age"]), "group_min_years": list(AGE_GROUP_MIN), "type": "softmax"},
            "age_years": {"type": "regression", "unit": "years"},
            "gender": {"labels": list(HEAD_LABELS["gender"]), "type": "softmax"},
            "race": {"labels": list(HEAD_LABELS["race"]), "type": "softmax"},
        },
        "signature": "serving_default",
        "quantization": cfg.quantization,
        "training": cfg.training.get("data", {}),
    }


def training_info(model_path: Path) -> dict[str, Any]:
    """Provenance from the run directory's train_summary.json, when the model came from `edge-convert train`."""
    summary = Path(model_path).with_name("train_summary.json")
    if not summary.is_file():
        return {"data": {"dataset": "unknown", "license": "unknown"}}
    s = json.loads(summary.read_text())
    c = s.get("config", {})
    data = {"dataset": Path(str(c.get("data", ""))).name or "unknown", "counts": s.get("counts", {}),
            "split_rule": s.get("split_rule"), "seed": c.get("seed"), "epochs": c.get("epochs"),
            "imagenet_init": bool(s.get("imagenet_seeded_layers")) or bool(s.get("init_from")),
            "init_from": s.get("init_from")}
    if data["dataset"].lower().startswith("utkface"):
        data["dataset"] = "UTKFace (aligned & cropped)"
        data["license"] = "UTKFace: non-commercial research purposes only; commercial deployments must retrain on data they hold rights to"
    return {"data": data, "architecture": {"alpha": c.get("alpha"), "input_size": c.get("input_size")}}


def quantize(cfg: QuantizeConfig) -> Path:
    """Convert and write `cfg.out` (.tflite) plus its sidecar JSON; returns the .tflite path."""
    from edge_agent.modelmeta import write_metadata

    if cfg.quantization not in QUANT_TYPES:
        raise ConversionError(f"--type must be one of {', '.join(QUANT_TYPES)}, got {cfg.quantization!r}")
    if cfg.out.suffix != ".tflite":
        raise ConversionError(f"--out must end in .tflite: {cfg.out}")
    model = load_keras(cfg.model)
    size = int(model.input.shape[1])
    calib = calibration_inputs(cfg, size) if cfg.quantization in ("int8", "uint8") else None
    if not cfg.training:
        cfg.training = training_info(cfg.model)
    t0 = time.monotonic()
    try:
        blob = convert(model, cfg.quantization, calib)
    except DataError:
        raise
    except Exception as exc:  # the converter's own failures are long C++ traces; keep the first line
        raise ConversionError(f"conversion failed: {str(exc).strip().splitlines()[0]}") from exc
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_bytes(blob)
    side = write_metadata(cfg.out, metadata(cfg, size))
    log.info("wrote %s (%.2f MB, %s) and %s in %.0fs", cfg.out, len(blob) / 1e6, cfg.quantization, side.name,
             time.monotonic() - t0)
    return cfg.out
