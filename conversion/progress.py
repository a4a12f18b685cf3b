"""One readable line per epoch: elapsed, ETA for the whole run, and every head's train/validation metrics."""

from __future__ import annotations

import logging
import time
from typing import Any

import keras

log = logging.getLogger(__name__)

_SHOW = (("age_acc", "age"), ("gender_acc", "gender"), ("race_acc", "race"), ("age_years_mae", "mae"))


class EpochSummary(keras.callbacks.Callback):
    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.t_start = 0.0
        self.t_epoch = 0.0
        self.done = 0

    def on_train_begin(self, logs: Any = None) -> None:
        self.t_start = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.t_epoch = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        steps = self.params.get("steps") or 0
        if steps and (batch + 1) % max(1, steps // 5) == 0 and batch + 1 < steps:
            rate = (time.monotonic() - self.t_epoch) / (batch + 1)
            logs = logs or {}
            heads = " ".join(f"{s} {logs[k]:.3f}" for k, s in _SHOW if k in logs)
            log.info(
                "  epoch %d step %d/%d, epoch ETA %.0fs | %s",
                self.done + 1,
                batch + 1,
                steps,
                rate * (steps - batch - 1),
                heads,
            )

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = logs or {}
        self.done += 1
        took = time.monotonic() - self.t_epoch
        per = (time.monotonic() - self.t_start) / self.done
        eta = per * (self.epochs - epoch - 1)
        parts = []
        for key, short in _SHOW:
            tr, va = logs.get(key), logs.get("val_" + key)
            if tr is not None and va is not None:
                parts.append(f"{short} {tr:.3f}/{va:.3f}")
        log.info(
            "epoch %d/%d %.0fs, ETA %.0f min | train/val %s | loss %.3f/%.3f",
            epoch + 1,
            self.epochs,
            took,
            eta / 60,
            " ".join(parts),
            logs.get("loss", float("nan")),
            logs.get("val_loss", float("nan")),
        )
