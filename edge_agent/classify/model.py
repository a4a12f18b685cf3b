"""Thin wrapper over the attribute TFLite model: signature-named heads, tensor-read quantization, metadata checks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.modelmeta import REGRESSION_HEADS, MetadataError, ModelMetadata, load_metadata
from edge_agent.runtime import ModelLoadError, dequantize, load_interpreter, quantize

log = logging.getLogger(__name__)

PACKAGED_MODEL = Path(__file__).resolve().parents[1] / "models" / "attributes_int8.tflite"


def mirrored(x: np.ndarray) -> np.ndarray:
    """The mirror image that test-time flip averages with: the width axis reversed, for one image (H, W, C) or a
    batch (N, H, W, C)."""
    return np.ascontiguousarray(x[..., ::-1, :])


def views_mean(
    predict: Callable[[np.ndarray], dict[str, np.ndarray]], x: np.ndarray, flip: bool
) -> dict[str, np.ndarray]:
    """`predict(x)`, or with `flip` the mean of it and `predict(mirrored(x))`: the one test-time flip rule, used by
    the agent (one face) and by the toolchain's verify and quantize (batches)."""
    out = predict(x)
    if not flip:
        return out
    mirror = predict(mirrored(x))
    return {h: (out[h] + mirror[h]) / 2.0 for h in out}


class AttributeModel:
    """One interpreter, reused for every face. Only the output tensors of requested heads are ever read."""

    def __init__(self, path: str | Path | None = None, num_threads: int = 1) -> None:
        self.path = Path(path) if path else PACKAGED_MODEL
        self.meta: ModelMetadata = load_metadata(self.path)  # raises MetadataError (one line)
        self.interp = load_interpreter(self.path, num_threads=num_threads)  # raises ModelLoadError (one line)
        sigs = self.interp.get_signature_list()
        if not sigs:
            raise ModelLoadError(f"{self.path}: model has no signature; heads must be read by name")
        self.signature = str(self.meta.raw.get("signature", next(iter(sigs))))
        if self.signature not in sigs:
            raise ModelLoadError(f"{self.path}: no signature {self.signature!r} (has {', '.join(sigs)})")
        runner = self.interp.get_signature_runner(self.signature)
        inputs = runner.get_input_details()
        if len(inputs) != 1:
            raise ModelLoadError(f"{self.path}: expected one image input, found {len(inputs)}")
        self.input = next(iter(inputs.values()))
        self.outputs: dict[str, dict[str, Any]] = runner.get_output_details()
        self._check_against_metadata()
        self.invocations = 0
        self.heads_read: dict[str, int] = {h: 0 for h in self.outputs}

    def _check_against_metadata(self) -> None:
        shape = tuple(int(v) for v in self.input["shape"])
        size = self.meta.preprocess.size
        if len(shape) != 4 or shape[1:] != (size, size, 3):
            raise MetadataError(f"{self.path}: input shape {shape} does not match metadata size {size}x{size}x3")
        for head, labels in self.meta.labels.items():
            if head not in self.outputs:
                raise MetadataError(
                    f"{self.path}: metadata names head {head!r} but the model has no such output "
                    f"(outputs: {', '.join(sorted(self.outputs))})"
                )
            n = int(np.prod(self.outputs[head]["shape"][1:]))
            if n != len(labels):
                raise MetadataError(
                    f"{self.path}: head {head!r} has {n} outputs but metadata lists {len(labels)} labels"
                )

    @property
    def size(self) -> int:
        return self.meta.preprocess.size

    def available_heads(self) -> tuple[str, ...]:
        return tuple(h for h in (*self.meta.labels, *REGRESSION_HEADS) if h in self.outputs)

    def predict(self, x: np.ndarray, heads: tuple[str, ...]) -> dict[str, np.ndarray]:
        """x: float32 (S, S, 3) normalised as the metadata says. Returns float outputs of `heads` only."""
        q = quantize(x[None], self.input)
        self.interp.set_tensor(self.input["index"], q)
        self.interp.invoke()
        self.invocations += 1
        out: dict[str, np.ndarray] = {}
        for h in heads:
            d = self.outputs[h]
            out[h] = dequantize(self.interp.get_tensor(d["index"]), d)[0]
            self.heads_read[h] += 1
        return out

    def close(self) -> None:
        self.interp = None
