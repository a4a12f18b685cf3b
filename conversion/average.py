"""Stochastic weight averaging (Izmailov et al., 2018) over a run's per-epoch snapshots.

`train` keeps every epoch's weights in `RUN/snapshots/epoch_NN.keras`. Averaging the snapshots of a run trained
on at a constant learning rate (`--schedule constant`) lands nearer the centre of the flat region the optimiser
circles in, which tends to generalise better than any single snapshot. The averaged weights do not come with
matching batch-norm statistics, so they are re-estimated: a cumulative mean of the batch statistics over
augmented training batches (the same batches the moving averages saw during training). Frozen layers keep theirs.

The result is measured on the validation split only (never the test split) beside the run's last snapshot, and
written as `RUN/model_swa.keras` beside the run's metadata, so `quantize` and `verify` take it like `model.keras`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from conversion.errors import ConversionError

if TYPE_CHECKING:
    from conversion.train import TrainConfig

log = logging.getLogger(__name__)

SNAPSHOT = re.compile(r"epoch_(\d+)\.keras$")


@dataclass(frozen=True)
class AverageResult:
    out: Path
    epochs: list[int]
    validation: dict[str, dict[str, float]]  # "last" and "average": metric -> value


def snapshots(run: Path, from_epoch: int = 1) -> list[tuple[int, Path]]:
    """(epoch, path) of the run's snapshots from `from_epoch` on, in epoch order."""
    found = []
    for p in (Path(run) / "snapshots").glob("epoch_*.keras"):
        m = SNAPSHOT.search(p.name)
        if m and int(m.group(1)) >= from_epoch:
            found.append((int(m.group(1)), p))
    return sorted(found)


def average_weights(weight_lists: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Element-wise mean of several models' `get_weights()` lists (same architecture)."""
    if not weight_lists:
        raise ConversionError("nothing to average")
    n = len(weight_lists[0])
    if any(len(w) != n for w in weight_lists):
        raise ConversionError("snapshots differ in architecture (different numbers of weight tensors)")
    out = []
    for parts in zip(*weight_lists, strict=True):
        if any(p.shape != parts[0].shape for p in parts):
            raise ConversionError(f"snapshots differ in architecture (shapes {parts[0].shape} and others)")
        out.append(np.mean(np.stack([p.astype(np.float64) for p in parts]), axis=0).astype(parts[0].dtype))
    return out


def _batch_norms(model: Any) -> list[Any]:
    import keras

    found = []

    def walk(layer: Any) -> None:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        for sub in getattr(layer, "layers", []):
            walk(sub)

    walk(model)
    return found


def reestimate_batch_norm(model: Any, batches: Any, n_batches: int) -> int:
    """Replace each trainable BatchNormalization's moving mean/variance with the cumulative mean of its batch
    statistics over `n_batches` batches run in training mode (no weight is updated). Returns the layers reset."""
    layers = [bn for bn in _batch_norms(model) if bn.trainable]
    saved = {id(bn): bn.momentum for bn in layers}
    try:
        for k, (x, _) in enumerate(batches.take(n_batches), start=1):
            for bn in layers:
                bn.momentum = 1.0 - 1.0 / k  # moving = (1 - 1/k) * moving + (1/k) * batch: a running mean
            model(x, training=True)
    finally:
        for bn in layers:
            bn.momentum = saved[id(bn)]
    return len(layers)


def _evaluate(model: Any, data: Any) -> dict[str, float]:
    values = model.evaluate(data, verbose=0, return_dict=True)
    return {k: round(float(v), 4) for k, v in values.items()}


def config_from_run_meta(run: Path, meta: dict[str, Any], cache_dir: Path | None) -> TrainConfig:
    """The training settings a run recorded in its model_meta.json: the same data, crops and augmentation."""
    from conversion.train import TrainConfig

    return TrainConfig(
        data=[Path(p) for p in meta["data"]],
        out=run,
        alpha=float(meta["alpha"]),
        input_size=int(meta["input_size"]),
        crop_margin=float(meta["crop"]["margin"]),
        context=float(meta["crop"]["context"]),
        seed=int(meta["seed"]),
        dex=bool(meta["dex"]),
        erase_prob=float(meta["erase_prob"]),
        scale_jitter=float(meta.get("scale_jitter", 0.25)),  # runs recorded before the option trained with 0.25
        context_mix=float(meta.get("context_mix", 0.0)),
        class_weight_power=float(meta["class_weight_power"]),
        cache_dir=cache_dir,
    )


def average_run(
    run: Path,
    cache_dir: Path | None,
    from_epoch: int = 1,
    bn_batches: int = 200,
) -> AverageResult:
    """Average `run`'s snapshots from `from_epoch` on, re-estimate batch norm, measure on validation, save."""
    import keras

    from conversion.quantize import load_keras
    from conversion.train import RUN_META, compile_model, load_training_arrays, make_dataset

    run = Path(run)
    meta_path = run / RUN_META
    if not meta_path.is_file():
        raise ConversionError(f"{run} is not a training run (no {RUN_META})")
    found = snapshots(run, from_epoch)
    if len(found) < 2:
        raise ConversionError(f"{run}: need at least 2 snapshots from epoch {from_epoch}, found {len(found)}")
    cfg = config_from_run_meta(run, json.loads(meta_path.read_text()), cache_dir)
    keras.utils.set_random_seed(cfg.seed)
    arr = load_training_arrays(cfg)
    tr, va = arr.subset("train"), arr.subset("val")
    steps = max(len(tr) // cfg.batch_size, 1)
    val = make_dataset(va, cfg, False)

    epochs = [e for e, _ in found]
    models = [load_keras(p) for _, p in found]
    model = models[-1]  # the last snapshot: measured as it is, then overwritten with the average
    compile_model(model, tr, cfg, steps)
    validation = {"last": _evaluate(model, val)}
    log.info("epoch %d (last snapshot), validation: %s", epochs[-1], validation["last"])

    model.set_weights(average_weights([m.get_weights() for m in models]))
    del models
    n_bn = reestimate_batch_norm(model, make_dataset(tr, cfg, True), bn_batches)
    log.info("averaged epochs %s; re-estimated %d batch-norm layers over %d batches", epochs, n_bn, bn_batches)
    validation["average"] = _evaluate(model, val)
    log.info("average of epochs %d-%d, validation: %s", epochs[0], epochs[-1], validation["average"])

    out = run / "model_swa.keras"  # beside the run's model_meta.json, which quantize reads
    model.save(out)
    summary = {"epochs": epochs, "bn_batches": bn_batches, "validation": validation}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return AverageResult(out=out, epochs=epochs, validation=validation)
