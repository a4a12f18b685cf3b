"""Seed a Keras MobileNetV2 (alpha 1.0) backbone from an ImageNet MobileNetV2 TFLite file (BN folded, int8 weights).

Keras cannot download ImageNet weights on machines without a model hub. Google's Coral/TF2 post-training-quantized
MobileNetV2 1.0/224 (Apache-2.0) carries the same convolutions with batch norm folded into them. We dequantize each
convolution's weights and bias with its own per-channel scales, copy them into the Keras conv layers in execution
order, and set each BatchNormalization so that it reproduces the folded affine map exactly:
    BN(z) = gamma * (z - mean) / sqrt(var + eps) + beta  ==  z + bias
with mean/var measured on real face crops (data-dependent), gamma = sqrt(var + eps), beta = mean + bias. The network
then computes the pretrained function both in inference mode and (approximately) in training mode, so fine-tuning
starts from ImageNet features rather than from a broken normalisation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class SeedError(ValueError):
    """The TFLite file does not match the Keras backbone (wrong architecture, alpha, or not a TFLite model)."""


def _dequant(interp: Any, detail: dict[str, Any]) -> np.ndarray:
    q = interp.get_tensor(detail["index"])
    qp = detail["quantization_parameters"]
    scales, zeros, axis = qp["scales"], qp["zero_points"], qp["quantized_dimension"]
    if q.dtype == np.float32 or scales.size == 0:
        return q.astype(np.float32)
    shape = [1] * q.ndim
    shape[axis] = -1
    return ((q.astype(np.int64) - zeros.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def _open(path: Path) -> tuple[Any, dict[int, dict[str, Any]]]:
    """A TFLite file's interpreter (no delegates, so every op and weight tensor is visible) and its tensors by index."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = Path(path)
    if not path.is_file():
        raise SeedError(f"ImageNet TFLite file not found: {path}")
    try:
        interp = Interpreter(
            model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise SeedError(f"cannot read {path} as TFLite: {exc}") from exc
    return interp, {t["index"]: t for t in interp.get_tensor_details()}


def read_tflite_convs(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(op, weights, bias) of every CONV_2D / DEPTHWISE_CONV_2D in execution order, dequantized to float."""
    interp, details = _open(path)
    convs = []
    for op in interp._get_ops_details():
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w_idx, b_idx = op["inputs"][1], op["inputs"][2]
            convs.append((op["op_name"], _dequant(interp, details[w_idx]), _dequant(interp, details[b_idx])))
    return convs


def _conv_layers(backbone: Any) -> list[Any]:
    import keras

    return [
        layer for layer in backbone.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
    ]


def _following_bn(backbone: Any, conv: Any) -> Any:
    import keras

    layers = backbone.layers
    i = layers.index(conv)
    nxt = layers[i + 1]
    if not isinstance(nxt, keras.layers.BatchNormalization):
        raise SeedError(f"expected BatchNormalization after {conv.name}, found {nxt.name}")
    return nxt


class _Moments:
    """Per-channel mean and variance over batches of (..., C) activations, combined exactly (Chan et al.)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray = np.zeros(0)
        self.m2: np.ndarray = np.zeros(0)

    def add(self, x: np.ndarray) -> None:
        z = x.reshape(-1, x.shape[-1]).astype(np.float64)
        n, mean = len(z), z.mean(axis=0)
        m2 = ((z - mean) ** 2).sum(axis=0)
        if self.n == 0:
            self.n, self.mean, self.m2 = n, mean, m2
            return
        total = self.n + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta**2 * self.n * n / total
        self.n = total

    @property
    def var(self) -> np.ndarray:
        return self.m2 / self.n


def seed_backbone(backbone: Any, tflite_path: Path, calib_images: np.ndarray) -> dict[str, Any]:
    """Copy ImageNet weights into `backbone` (a Keras MobileNetV2, alpha 1.0, include_top False).

    `calib_images` are real face crops, float32 in [-1, 1], shape (N, S, S, 3); they set the BN statistics.
    Returns a small report (layers seeded, classifier weights for an optional ImageNet sanity check).
    """
    import keras

    convs = read_tflite_convs(tflite_path)
    layers = _conv_layers(backbone)
    classifier = convs[len(layers)] if len(convs) == len(layers) + 1 else None
    if len(convs) < len(layers):
        raise SeedError(f"{tflite_path} has {len(convs)} convolutions, the backbone needs {len(layers)}")
    bns = []
    for layer, (op, w, b) in zip(layers, convs, strict=False):
        is_dw = isinstance(layer, keras.layers.DepthwiseConv2D)
        if is_dw != (op == "DEPTHWISE_CONV_2D"):
            raise SeedError(f"layer {layer.name} does not match TFLite op {op} (is this MobileNetV2 alpha 1.0?)")
        # TFLite CONV_2D is [out, kh, kw, in]; Keras wants [kh, kw, in, out].
        # DEPTHWISE is [1, kh, kw, C] → [kh, kw, C, 1].
        kernel = np.transpose(w, (1, 2, 3, 0))
        target = layer.kernel.shape
        if tuple(kernel.shape) != tuple(target):
            raise SeedError(f"layer {layer.name}: TFLite weights {w.shape} do not fit kernel {tuple(target)}")
        layer.kernel.assign(kernel)
        bn = _following_bn(backbone, layer)
        eps = bn.epsilon
        # Provisional identity BN (exact in inference mode) so the calibration pass computes the pretrained function.
        bn.set_weights([np.ones_like(b), b, np.zeros_like(b), np.full_like(b, 1.0 - eps)])
        bns.append((bn, b))
    # One pass collects every BN input (= folded conv output minus bias) on real faces.
    # Streamed per batch (Chan's parallel mean/variance): holding every BN input of 512 faces at once took 20 GB at
    # 160 px and got the run OOM-killed.
    probe = keras.Model(backbone.input, [bn.input for bn, _ in bns])
    stats = [_Moments() for _ in bns]
    for start in range(0, len(calib_images), 64):
        outs = probe(calib_images[start : start + 64], training=False)
        for m, out in zip(stats, outs, strict=True):
            m.add(np.asarray(out))
    for (bn, b), m in zip(bns, stats, strict=True):
        mean, var = m.mean, m.var
        eps = bn.epsilon
        var = np.maximum(var, 1e-4)
        gamma = np.sqrt(var + eps)
        bn.set_weights(
            [gamma.astype(np.float32), (mean + b).astype(np.float32), mean.astype(np.float32), var.astype(np.float32)]
        )
    log.info("seeded %d conv layers from %s", len(bns), tflite_path)
    return {"layers": len(bns), "classifier": classifier}


def read_tflite_dense(path: Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weights [out, in], bias or None) of every FULLY_CONNECTED op, dequantized to float."""
    interp, details = _open(path)
    dense = []
    for op in interp._get_ops_details():
        if op["op_name"] == "FULLY_CONNECTED":
            w_idx, b_idx = op["inputs"][1], op["inputs"][2] if len(op["inputs"]) > 2 else -1
            bias = _dequant(interp, details[b_idx]) if b_idx >= 0 else None
            dense.append((_dequant(interp, details[w_idx]), bias))
    return dense


def seed_from_export(model: Any, tflite_path: Path, calib_images: np.ndarray) -> dict[str, Any]:
    """Warm start every layer of `model` from a TFLite export of the same architecture (e.g. the shipped float twin,
    `models/attributes_float32.tflite`), so a released model can be trained further without its .keras file.

    The backbone is seeded as from ImageNet (folded batch norm, statistics from `calib_images`); each head's Dense
    layer takes the FULLY_CONNECTED weights of the same shape (the head shapes are distinct). The converter folds
    `age_years`' Rescaling into its last FULLY_CONNECTED, so that one is scaled back. The result is checked against
    the TFLite file on `calib_images`: a file that does not reproduce is refused, not silently half-loaded.
    """
    import keras

    from conversion.model import AGE_SCALE, backbone_of

    tflite_path = Path(tflite_path)
    report = seed_backbone(backbone_of(model), tflite_path, calib_images)
    by_shape: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray | None]] = {}
    for w, b in read_tflite_dense(tflite_path):
        by_shape[tuple(w.shape)] = (w, b)
    heads = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    for layer in heads:
        want = (int(layer.kernel.shape[1]), int(layer.kernel.shape[0]))
        if want not in by_shape:
            raise SeedError(f"{tflite_path} has no fully connected layer of shape {want} for head {layer.name}")
        w, b = by_shape[want]
        scale = AGE_SCALE if layer.name == "age_years_unit" else 1.0
        values = [w.T / scale]
        if layer.use_bias:
            if b is None:
                raise SeedError(f"{tflite_path}: head {layer.name} has no bias")
            values.append(b / scale)
        layer.set_weights(values)
    _check_reproduces(model, tflite_path, calib_images[:16])
    log.info("warm start: %d conv and %d dense layers from %s", report["layers"], len(heads), tflite_path)
    return {"layers": report["layers"] + len(heads)}


def _check_reproduces(model: Any, tflite_path: Path, x: np.ndarray) -> None:
    from edge_agent.runtime import load_interpreter

    interp = load_interpreter(tflite_path)
    runner = interp.get_signature_runner()
    ours = model.predict(x, verbose=0)
    worst = 0.0
    for i in range(len(x)):
        theirs = runner(image=x[i : i + 1].astype(np.float32))
        for name, ref in theirs.items():
            if name in ours:
                tol = 1.0 if name.startswith("age_years") else 0.02  # years; probabilities
                worst = max(worst, float(np.abs(ours[name][i] - ref[0]).max()) / tol)
    if worst > 1.0:
        raise SeedError(f"{tflite_path} does not match this architecture (outputs differ after seeding)")
