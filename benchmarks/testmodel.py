"""Build a tiny int8/float attribute model with the agent's contract, for smoke tests when the real model is absent.

It is untrained (random weights): good for checking plumbing and timing, meaningless for accuracy.
TensorFlow is imported lazily; the device path never imports this module.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from edge_agent.modelmeta import write_metadata

log = logging.getLogger(__name__)

AGE_LABELS = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"]
AGE_MIN = [0, 3, 10, 20, 30, 40, 50, 60, 70]
GENDER_LABELS = ["male", "female"]
RACE_LABELS = ["white", "black", "asian", "indian", "other"]


def _metadata(size: int, quantization: str) -> dict:
    return {
        "name": "bench-test-model",
        "version": "0.0.0-test",
        "quantization": quantization,
        "input": {"size": size, "color": "RGB", "normalization": {"mean": 127.5, "std": 127.5}},
        "crop": {"margin": 0.2, "square": True, "alignment": "none"},
        "heads": {
            "age": {"labels": AGE_LABELS, "group_min_years": AGE_MIN},
            "gender": {"labels": GENDER_LABELS},
            "race": {"labels": RACE_LABELS},
            "age_years": {"unit": "years"},
        },
        "training_data": {"name": "none (random weights, test only)", "licence": "n/a"},
    }


def _keras_model(size: int, alpha: float):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    inp = tf.keras.Input((size, size, 3), name="image")
    base = tf.keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=alpha, include_top=False, weights=None, pooling="avg"
    )
    feat = base(inp)
    age = tf.keras.layers.Dense(9, activation="softmax", name="age")(feat)
    mids = tf.constant([[1.0], [6.0], [15.0], [25.0], [35.0], [45.0], [55.0], [65.0], [80.0]])
    years = tf.keras.layers.Lambda(lambda p: tf.matmul(p, mids), name="age_years")(age)
    gender = tf.keras.layers.Dense(2, activation="softmax", name="gender")(feat)
    race = tf.keras.layers.Dense(5, activation="softmax", name="race")(feat)
    return tf.keras.Model(inp, {"age": age, "age_years": years, "gender": gender, "race": race})


def _representative(size: int, n: int = 16):  # type: ignore[no-untyped-def]
    from skimage import data
    from skimage.transform import resize

    img = data.astronaut()
    rng = np.random.default_rng(0)

    def gen():  # type: ignore[no-untyped-def]
        for _ in range(n):
            x0, y0 = rng.integers(120, 200), rng.integers(0, 60)
            crop = img[y0 : y0 + 160, x0 : x0 + 160]
            x = resize(crop, (size, size), preserve_range=True).astype(np.float32)
            yield [((x - 127.5) / 127.5)[None]]

    return gen


def build_test_models(out_dir: Path, size: int = 96, alpha: float = 0.35) -> tuple[Path, Path]:
    """Write `attributes_int8.tflite` and `attributes_float.tflite` (+ sidecars) into out_dir; return both paths."""
    import tensorflow as tf

    out_dir.mkdir(parents=True, exist_ok=True)
    model = _keras_model(size, alpha)

    paths = []
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        for kind in ("float", "int8"):
            conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
            if kind == "int8":
                conv.optimizations = [tf.lite.Optimize.DEFAULT]
                conv.representative_dataset = _representative(size)
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                conv.inference_input_type = tf.int8
            paths.append(_write(out_dir, kind, conv.convert(), size))
    return paths[1], paths[0]


def _write(out_dir: Path, kind: str, blob: bytes, size: int) -> Path:
    path = out_dir / f"attributes_{kind}.tflite"
    path.write_bytes(blob)
    write_metadata(path, _metadata(size, kind))
    return path


if __name__ == "__main__":
    import sys

    print(build_test_models(Path(sys.argv[1] if len(sys.argv) > 1 else "testmodel")))
