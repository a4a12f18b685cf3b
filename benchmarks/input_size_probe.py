"""Int8 latency of MobileNetV2 variants (random weights, timing only): python -m benchmarks.input_size_probe.

Produced the alpha/input-size table in MODEL_CARD.md (LiteRT, 1 thread, median of 250 invokes after 50 warm-up).
"""

import os
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

for alpha, size in [
    (1.0, 96),
    (0.75, 96),
    (1.0, 112),
    (0.75, 112),
    (0.5, 128),
    (1.0, 128),
    (0.35, 128),
    (1.0, 80),
    (1.0, 64),
    (0.5, 112),
]:
    inp = keras.Input((size, size, 3))
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=alpha, include_top=False, weights=None, pooling="avg"
    )
    f = base(inp)
    out = {
        "age": keras.layers.Dense(9, activation="softmax", name="age")(f),
        "gender": keras.layers.Dense(2, activation="softmax", name="gender")(f),
        "race": keras.layers.Dense(5, activation="softmax", name="race")(f),
    }
    m = keras.Model(inp, out)
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep(size: int = size):  # bind this iteration's size
        for _ in range(20):
            yield [np.random.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)]

    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    b = conv.convert()
    with open("/tmp/probe.tflite", "wb") as fh:
        fh.write(b)
    it = Interpreter("/tmp/probe.tflite", num_threads=1)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    x = np.random.randint(-128, 127, d["shape"]).astype(np.int8)
    ts = []
    for _ in range(300):
        t = time.perf_counter()
        it.set_tensor(d["index"], x)
        it.invoke()
        ts.append(time.perf_counter() - t)
    print(f"alpha={alpha} size={size} bytes={len(b)} median_ms={np.median(ts[50:]) * 1000:.3f}", flush=True)
