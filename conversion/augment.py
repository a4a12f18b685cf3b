"""Batched tf.data augmentation that makes training crops vary the way on-device detector crops do.

One affine warp per image does crop-window jitter (detector boxes wander and change size), small in-plane rotation
(heads tilt; the agent does not align), and the square crop itself. Then flips, brightness/contrast, and a random
down-then-up resample that mimics far faces whose crops are upscaled to the model input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AugmentSpec:
    crop_frac: float = 0.80  # side of the square crop as a fraction of the source chip (centre crop at inference)
    scale_jitter: float = 0.12  # crop side × U(1 - j, 1 + j)
    shift_jitter: float = 0.07  # centre shift × crop side, per axis
    max_rotate_deg: float = 12.0
    flip: bool = True
    brightness: float = 0.25  # additive, in units of the [0, 1] range
    contrast: float = 0.25  # multiplicative around the mean, × U(1 - c, 1 + c)
    low_res_prob: float = 0.3  # fraction of crops degraded to a random lower resolution first
    low_res_min: int = 20  # px, the smallest face the agent is asked to classify


def _transforms(tf: Any, n: Any, src: int, out: int, spec: AugmentSpec, train: bool) -> Any:
    """ImageProjectiveTransformV3 rows mapping output pixels to source pixels, one per image."""
    side = spec.crop_frac * src
    if train:
        scale = tf.random.uniform([n], 1 - spec.scale_jitter, 1 + spec.scale_jitter)
        dx = tf.random.uniform([n], -spec.shift_jitter, spec.shift_jitter) * side
        dy = tf.random.uniform([n], -spec.shift_jitter, spec.shift_jitter) * side
        theta = tf.random.uniform([n], -1.0, 1.0) * (spec.max_rotate_deg * math.pi / 180.0)
    else:
        scale, dx, dy, theta = tf.ones([n]), tf.zeros([n]), tf.zeros([n]), tf.zeros([n])
    k = side * scale / out  # source pixels per output pixel
    c, s = tf.cos(theta) * k, tf.sin(theta) * k
    cx, cy = src / 2.0 + dx, src / 2.0 + dy
    h = out / 2.0
    # x_src = c*(x - h) - s*(y - h) + cx ; y_src = s*(x - h) + c*(y - h) + cy   (pixel-centre offsets cancel out)
    a2 = cx - c * h + s * h
    b2 = cy - s * h - c * h
    zeros = tf.zeros([n])
    return tf.stack([c, -s, a2, s, c, b2, zeros, zeros], axis=1)


def augment_batch(images: Any, out_size: int, spec: AugmentSpec, train: bool) -> Any:
    """uint8 (B, C, C, 3) RGB source chips → float32 (B, S, S, 3) in [-1, 1]."""
    import tensorflow as tf

    src = int(images.shape[1])
    n = tf.shape(images)[0]
    x = tf.cast(images, tf.float32) / 255.0
    t = _transforms(tf, n, src, out_size, spec, train)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=t, output_shape=[out_size, out_size], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST",
    )
    if train:
        if spec.flip:
            x = tf.image.random_flip_left_right(x)
        if spec.low_res_prob > 0:
            x = _random_low_res(tf, x, out_size, spec)
        b = tf.random.uniform([n, 1, 1, 1], -spec.brightness, spec.brightness)
        cst = tf.random.uniform([n, 1, 1, 1], 1 - spec.contrast, 1 + spec.contrast)
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = tf.clip_by_value((x - mean) * cst + mean + b, 0.0, 1.0)
    return x * 2.0 - 1.0


def _random_low_res(tf: Any, x: Any, out_size: int, spec: AugmentSpec) -> Any:
    """Degrade a random subset of the batch to one random lower resolution and back (one size per batch)."""
    lo = tf.random.uniform([], spec.low_res_min, out_size, dtype=tf.int32)
    small = tf.image.resize(x, [lo, lo], method="area")
    blurred = tf.image.resize(small, [out_size, out_size], method="bilinear")
    pick = tf.random.uniform([tf.shape(x)[0], 1, 1, 1]) < spec.low_res_prob
    return tf.where(pick, blurred, x)
