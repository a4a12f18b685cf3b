"""Masked, class-weighted losses and metrics: a sample with a MISSING (-1) label contributes nothing to that head."""

from __future__ import annotations

from typing import Any

import numpy as np


def ordinal_targets(n: int, neighbour: float = 0.1, smoothing: float = 0.02) -> np.ndarray:
    """Soft targets for ordered classes: most mass on the true group, some on its neighbours.

    Helps one-off accuracy.
    """
    t = np.full((n, n), smoothing / n, np.float32)
    for i in range(n):
        nbrs = [j for j in (i - 1, i + 1) if 0 <= j < n]
        t[i, i] += 1.0 - smoothing - neighbour * len(nbrs)
        for j in nbrs:
            t[i, j] += neighbour
    return t


def smooth_targets(n: int, smoothing: float = 0.05) -> np.ndarray:
    return (np.eye(n) * (1.0 - smoothing) + smoothing / n).astype(np.float32)


def weighted_soft_ce(targets: np.ndarray, class_w: np.ndarray) -> Any:
    """Cross-entropy against soft target rows, weighted per true class, masked where the label is missing."""
    import tensorflow as tf

    tgt, w = tf.constant(targets), tf.constant(class_w)

    def loss(y_true: Any, y_pred: Any) -> Any:
        y = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        valid = tf.cast(y >= 0, tf.float32)
        yc = tf.maximum(y, 0)
        ce = -tf.reduce_sum(tf.gather(tgt, yc) * tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0)), axis=-1)
        return ce * tf.gather(w, yc) * valid

    return loss


def masked_l1_years(scale: float = 10.0) -> Any:
    import tensorflow as tf

    def loss(y_true: Any, y_pred: Any) -> Any:
        y = tf.reshape(tf.cast(y_true, tf.float32), [-1])
        p = tf.reshape(y_pred, [-1])
        valid = tf.cast(y >= 0, tf.float32)
        return tf.abs(y - p) / scale * valid

    return loss


def masked_accuracy(name: str) -> Any:
    """Accuracy over the samples that carry the label, summed over the whole epoch (not a mean of batch ratios:
    a validation batch of All-Age-Faces has no race label at all and must not count as 0%)."""
    import keras
    import tensorflow as tf

    class MaskedAccuracy(keras.metrics.Metric):
        def __init__(self, **kw: Any) -> None:
            super().__init__(name=name, **kw)
            self.hits = self.add_weight(name="hits", initializer="zeros")
            self.count = self.add_weight(name="count", initializer="zeros")

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
            y = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
            valid = tf.cast(y >= 0, tf.float32)
            hit = tf.cast(tf.equal(tf.cast(tf.argmax(y_pred, -1), tf.int32), y), tf.float32)
            self.hits.assign_add(tf.reduce_sum(hit * valid))
            self.count.assign_add(tf.reduce_sum(valid))

        def result(self) -> Any:
            return self.hits / tf.maximum(self.count, 1.0)

    return MaskedAccuracy()


def masked_mae(name: str = "mae") -> Any:
    """Mean absolute error in years over the samples with an age label, summed over the epoch."""
    import keras
    import tensorflow as tf

    class MaskedMAE(keras.metrics.Metric):
        def __init__(self, **kw: Any) -> None:
            super().__init__(name=name, **kw)
            self.total = self.add_weight(name="total", initializer="zeros")
            self.count = self.add_weight(name="count", initializer="zeros")

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
            y = tf.reshape(tf.cast(y_true, tf.float32), [-1])
            valid = tf.cast(y >= 0, tf.float32)
            self.total.assign_add(tf.reduce_sum(tf.abs(y - tf.reshape(y_pred, [-1])) * valid))
            self.count.assign_add(tf.reduce_sum(valid))

        def result(self) -> Any:
            return self.total / tf.maximum(self.count, 1.0)

    return MaskedMAE()


def dex_soft_ce(bins: int, sigma: float = 2.5) -> Any:
    """DEX age: cross-entropy against a Gaussian over year bins centred on the true age; masked where age is missing."""
    import tensorflow as tf

    centres = tf.range(bins, dtype=tf.float32)[None, :]

    def loss(y_true: Any, y_pred: Any) -> Any:
        y = tf.reshape(tf.cast(y_true, tf.float32), [-1, 1])
        valid = tf.cast(tf.reshape(y, [-1]) >= 0, tf.float32)
        t = tf.exp(-tf.square(centres - y) / (2 * sigma**2))
        t = t / tf.reduce_sum(t, axis=-1, keepdims=True)
        ce = -tf.reduce_sum(t * tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0)), axis=-1)
        return ce * valid

    return loss
