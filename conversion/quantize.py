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

from conversion.data import DataError
from conversion.errors import ConversionError
from conversion.labels import AGE_GROUP_MIN, HEAD_LABELS
from conversion.preprocess import MEAN, STD, stratified_sample

log = logging.getLogger(__name__)

QUANT_TYPES = ("int8", "uint8", "float16", "float32")  # int8/uint8: full-integer with that input type


@dataclass
class QuantizeConfig:
    model: Path
    out: Path
    calibration: list[Path] = field(default_factory=list)
    quantization: str = "int8"
    samples: int = 300
    split: str = "train"  # which hash-split of the calibration data to draw from ("all" for a separate folder)
    crop_margin: float | None = None  # default: the trained model's own crop rule (model_meta.json beside it)
    seed: int = 0
    cache_dir: Path | None = None  # detector-box cache shared with training
    temperature_split: str | None = "val"  # fit per-head temperatures on this split (None: no calibration)
    temperature_limit: int = 2000
    flip: bool = False  # metadata inference.flip: the agent averages each face and its mirror (twice the cost)
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
    except Exception as exc:  # noqa: BLE001 - keras raises many unrelated types for a non-model file
        raise ConversionError(f"not a Keras model: {path} ({type(exc).__name__})") from None
    try:
        check_heads(model)
    except ValueError as exc:
        raise ConversionError(f"{path}: {exc}") from None
    return model


def crop_rule(cfg: QuantizeConfig) -> float:
    """The crop margin the model was trained with. Given on the command line too, the two must agree."""
    meta_path = Path(cfg.model).with_name("model_meta.json")
    trained = json.loads(meta_path.read_text())["crop"]["margin"] if meta_path.is_file() else None
    if trained is None and cfg.crop_margin is None:
        raise ConversionError(
            f"{cfg.model}: no model_meta.json beside it (not from `edge-convert train`?); "
            "give --crop-margin, the per-side margin the model was trained with"
        )
    if trained is not None and cfg.crop_margin is not None and abs(trained - cfg.crop_margin) > 1e-9:
        raise ConversionError(
            f"--crop-margin {cfg.crop_margin} differs from the margin the model was trained with "
            f"({trained}, {meta_path}); leave it out"
        )
    return float(trained if trained is not None else cfg.crop_margin)  # type: ignore[arg-type]


def calibration_inputs(cfg: QuantizeConfig, size: int, margin: float) -> np.ndarray:
    """Real face crops through the device path (detector box, the agent's crop), sampled across sources and classes.
    Never random noise."""
    from conversion.evalset import device_inputs, load_eval_set
    from edge_agent.modelmeta import Preprocess

    if not cfg.calibration:
        raise ConversionError("int8 quantization needs --calibration DIR|CSV of real face images")
    try:
        ev = load_eval_set(list(cfg.calibration), cfg.split, cfg.cache_dir, seed=cfg.seed, stratify=cfg.samples)
    except ConversionError as exc:
        raise ConversionError(f"calibration set is empty: {exc}") from None
    picked = stratified_sample(ev.samples, cfg.samples, cfg.seed)
    index = {id(s): i for i, s in enumerate(ev.samples)}
    ev = ev.take([index[id(s)] for s in picked])
    xs = device_inputs(ev, Preprocess(size, "RGB", MEAN, STD), margin)
    log.info(
        "calibrating on %d real face crops from %s (device crops, margin %.3f; %s)",
        len(xs),
        ", ".join(sorted(set(ev.sources.tolist()))),
        margin,
        ", ".join(f"{n} {k}" for k, n in ev.skipped.items()) or "nothing skipped",
    )
    return xs


def fit_temperatures(cfg: QuantizeConfig, tflite: Path) -> dict[str, Any]:
    """Per-head temperatures of the converted model on the validation split, through the device path."""
    from conversion.calibration import fit_temperature, reliability
    from conversion.evalset import device_inputs, load_eval_set
    from conversion.verify import CLASS_HEADS, Predictor
    from edge_agent.modelmeta import load_metadata

    meta = load_metadata(tflite)
    ev = load_eval_set(
        list(cfg.calibration), cfg.temperature_split or "val", cfg.cache_dir, limit=cfg.temperature_limit, seed=cfg.seed
    )
    # Fitted on what the agent will calibrate: with test-time flip, the mean of face and mirror (less confident).
    pred = Predictor(tflite, flip=cfg.flip).predict(device_inputs(ev, meta.preprocess, meta.crop.margin))
    truth = ev.truth()
    out: dict[str, Any] = {}
    for h in CLASS_HEADS:
        if h in pred:
            t = fit_temperature(pred[h], truth[h])
            out[h] = {
                "temperature": round(t, 4),
                "n": int((truth[h] >= 0).sum()),
                "ece_before": reliability(pred[h], truth[h])["ece"],
            }
    log.info(
        "temperatures fitted on %d %s images: %s",
        len(ev),
        cfg.temperature_split,
        {h: v["temperature"] for h, v in out.items()},
    )
    return out


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


def metadata(cfg: QuantizeConfig, size: int, margin: float) -> dict[str, Any]:
    return {
        "name": cfg.name,
        "version": cfg.version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "architecture": {"backbone": "MobileNetV2", **cfg.training.get("architecture", {})},
        "input": {
            "size": size,
            "color": "RGB",
            "layout": "NHWC",
            "tensor": "image",
            "normalization": {
                "mean": MEAN,
                "std": STD,
                "formula": "x = (pixel - mean) / std, then quantized with the input tensor's scale/zero point",
            },
        },
        "crop": {
            "margin": margin,
            "square": True,
            "alignment": "none",
            "reference": "square around the detector box centre, side = max(w, h) * (1 + 2 * margin), resized "
            "with area interpolation (edge_agent.classify.preprocess.crop_face, also used in training)",
        },
        "inference": {"flip": cfg.flip},
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


KNOWN_LICENCES = {
    "utkface": "UTKFace (aligned & cropped): non-commercial research purposes only",
    "aaf": "All-Age-Faces: no licence stated, research and evaluation use only",
}


def training_info(model_path: Path) -> dict[str, Any]:
    """Provenance from the run directory's train_summary.json, when the model came from `edge-convert train`."""
    summary = Path(model_path).with_name("train_summary.json")
    run_meta = Path(model_path).with_name("model_meta.json")
    if summary.is_file():
        s = json.loads(summary.read_text())
    elif run_meta.is_file():  # a run stopped before its last epoch: model_meta.json is written at the start
        m = json.loads(run_meta.read_text())
        s = {
            "config": {
                "data": m.get("data", []),
                "seed": m.get("seed"),
                "epochs": m.get("epochs"),
                "alpha": m.get("alpha"),
                "input_size": m.get("input_size"),
                "imagenet": m.get("imagenet"),
            },
            "counts": m.get("split_counts", {}),
            "imagenet_seeded_layers": bool(m.get("imagenet")),
            "split_rule": "bucket = int(sha256(file bytes)[:8], 16) % 100; <75 train, 75-84 val, >=85 test",
        }
    else:
        return {"data": {"dataset": "unknown", "license": "unknown"}}
    c = s.get("config", {})
    paths = c.get("data", [])
    paths = paths if isinstance(paths, list) else [paths]
    from conversion.data import source_name

    names = [source_name(Path(p)) if Path(p).exists() else Path(p).name for p in paths]
    data = {
        "dataset": ", ".join(names) or "unknown",
        "sources": names,
        "counts": s.get("counts", {}),
        "split_rule": s.get("split_rule"),
        "seed": c.get("seed"),
        "epochs": c.get("epochs"),
        "imagenet_init": bool(s.get("imagenet_seeded_layers")) or bool(s.get("init_from")),
        "init_from": s.get("init_from"),
        "seeded_from": c.get("imagenet"),
    }
    licences = [KNOWN_LICENCES[n.lower()] for n in names if n.lower() in KNOWN_LICENCES]
    if licences:
        data["license"] = "; ".join(licences) + ". Commercial deployments must retrain on data they hold rights to"
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
    margin = crop_rule(cfg)
    calib = calibration_inputs(cfg, size, margin) if cfg.quantization in ("int8", "uint8") else None
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
    raw = metadata(cfg, size, margin)
    side = write_metadata(cfg.out, raw)
    if cfg.temperature_split and cfg.calibration:
        fitted = fit_temperatures(cfg, cfg.out)
        for h, v in fitted.items():
            raw["heads"][h]["temperature"] = v["temperature"]
        raw["calibration"] = {
            "method": "temperature scaling, validation NLL",
            "split": cfg.temperature_split,
            "heads": fitted,
        }
        side = write_metadata(cfg.out, raw)
    log.info(
        "wrote %s (%.2f MB, %s) and %s in %.0fs",
        cfg.out,
        len(blob) / 1e6,
        cfg.quantization,
        side.name,
        time.monotonic() - t0,
    )
    return cfg.out
