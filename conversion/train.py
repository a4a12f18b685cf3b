"""`edge-convert train`: train the multi-head MobileNetV2 attribute model, with checkpoints, resume and progress."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conversion.augment import AugmentSpec, augment_batch
from conversion.data import Arrays, DataError, class_weights, load_arrays, read_dataset
from conversion.labels import AGE_GROUPS, GENDERS, RACES

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: Path
    out: Path
    alpha: float = 1.0
    input_size: int = 64
    epochs: int = 24
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 1337
    imagenet: Path | None = None  # ImageNet MobileNetV2 1.0 TFLite to seed the backbone from (alpha 1.0 only)
    cache_dir: Path | None = None
    max_samples: int | None = None  # for smoke runs
    crop_frac: float = 0.80
    workers: int = 2
    init_from: Path | None = None  # warm start: copy weights from a trained .keras model (e.g. a longer schedule)
    freeze_stem: bool = True  # with ImageNet seeding: keep the stem's pretrained filters fixed (faster, as accurate)


def cache_size(cfg: TrainConfig) -> int:
    # Cache chips so that the centre crop is exactly input_size: resampling factor ~1, like inference.
    return int(round(cfg.input_size / cfg.crop_frac))


def load_training_arrays(cfg: TrainConfig) -> Arrays:
    """Decode the dataset once and cache it as .npz keyed by data path, size and file list."""
    ds = read_dataset(cfg.data)
    if cfg.max_samples:
        rng = np.random.default_rng(cfg.seed)
        keep = sorted(rng.choice(len(ds.samples), size=min(cfg.max_samples, len(ds.samples)), replace=False))
        ds.samples = [ds.samples[i] for i in keep]
    size = cache_size(cfg)
    key = hashlib.sha256(("|".join(str(s.path) for s in ds.samples) + f"|{size}").encode()).hexdigest()[:16]
    cache = (cfg.cache_dir / f"faces_{size}_{key}.npz") if cfg.cache_dir else None
    if cache is not None and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        log.info("loaded %d decoded images from cache %s", len(z["age"]), cache)
        from collections import Counter

        skipped = Counter(dict(json.loads(str(z["skipped"]))))
        return Arrays(z["images"], z["age"], z["age_group"], z["gender"], z["race"], z["split"], list(z["paths"]), skipped)
    t0 = time.monotonic()
    arr = load_arrays(ds, size, cfg.workers)
    log.info("decoded %d images at %dpx in %.0fs; %s", len(arr), size, time.monotonic() - t0, _skipped_line(arr))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, images=arr.images, age=arr.age, age_group=arr.age_group, gender=arr.gender, race=arr.race,
                 split=arr.split, paths=np.array(arr.paths), skipped=json.dumps(dict(arr.skipped)))
    return arr


def _skipped_line(arr: Arrays) -> str:
    if not arr.skipped:
        return "skipped 0 files"
    return "skipped " + ", ".join(f"{n} {r}" for r, n in arr.skipped.most_common())


def make_dataset(arr: Arrays, cfg: TrainConfig, train: bool) -> Any:
    import tensorflow as tf

    spec = AugmentSpec(crop_frac=cfg.crop_frac)
    labels = {"age": arr.age_group, "age_years": arr.age, "gender": arr.gender, "race": arr.race}
    ds = tf.data.Dataset.from_tensor_slices((arr.images, labels))
    if train:
        ds = ds.shuffle(min(len(arr), 20000), seed=cfg.seed, reshuffle_each_iteration=True)
    ds = ds.batch(cfg.batch_size, drop_remainder=train)
    ds = ds.map(lambda x, y: (augment_batch(x, cfg.input_size, spec, train), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def compile_model(model: Any, arr: Arrays, cfg: TrainConfig, steps_per_epoch: int) -> None:
    import keras

    from conversion.losses import (
        masked_accuracy,
        masked_l1_years,
        masked_mae,
        ordinal_targets,
        smooth_targets,
        weighted_soft_ce,
    )

    # Skew: inverse-sqrt-frequency class weights for race and age group (UTKFace is mostly White, 20-40 and infants).
    race_w = class_weights(arr.race, len(RACES))
    age_w = class_weights(arr.age_group, len(AGE_GROUPS))
    losses = {
        "age": weighted_soft_ce(ordinal_targets(len(AGE_GROUPS)), age_w),
        "gender": weighted_soft_ce(smooth_targets(len(GENDERS)), np.ones(len(GENDERS), np.float32)),
        "race": weighted_soft_ce(smooth_targets(len(RACES)), race_w),
        "age_years": masked_l1_years(),
    }
    total = steps_per_epoch * cfg.epochs
    warmup = min(steps_per_epoch, total // 10)
    sched = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr * 0.05, decay_steps=max(total - warmup, 1), alpha=0.01,
        warmup_target=cfg.lr, warmup_steps=warmup,
    )
    model.compile(
        jit_compile=False,  # XLA on CPU made MobileNetV2 training ~9x slower here (8.0 vs 0.9 s/step)
        optimizer=keras.optimizers.AdamW(learning_rate=sched, weight_decay=cfg.weight_decay),
        loss=losses,
        loss_weights={"age": 1.0, "gender": 1.0, "race": 1.0, "age_years": 0.5},
        metrics={"age": [masked_accuracy("acc")], "gender": [masked_accuracy("acc")],
                 "race": [masked_accuracy("acc")], "age_years": [masked_mae("mae")]},
    )
    log.info("class weights race=%s age=%s", np.round(race_w, 2).tolist(), np.round(age_w, 2).tolist())


def seed_from_imagenet(model: Any, arr: Arrays, cfg: TrainConfig) -> dict[str, Any]:
    from conversion.imagenet_seed import SeedError, seed_backbone
    from conversion.model import backbone_of

    if cfg.alpha != 1.0:
        raise SeedError(f"ImageNet seeding needs alpha 1.0 (the TFLite file is MobileNetV2 1.0), got {cfg.alpha}")
    train = arr.subset("train")
    rng = np.random.default_rng(cfg.seed)
    pick = rng.choice(len(train), size=min(512, len(train)), replace=False)
    calib = next(iter(make_dataset(Arrays(train.images[pick], train.age[pick], train.age_group[pick],
                                          train.gender[pick], train.race[pick], train.split[pick], [], train.skipped),
                                   TrainConfig(**{**asdict(cfg), "batch_size": len(pick)}), train=False)))[0]
    return seed_backbone(backbone_of(model), cfg.imagenet, np.asarray(calib))


def train(cfg: TrainConfig) -> Path:
    """Train and write `out/model.keras` (best validation loss) and `out/train_summary.json`; returns the model path."""
    import keras

    from conversion.model import build_model, freeze_stem
    from conversion.progress import EpochSummary

    cfg.out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    arr = load_training_arrays(cfg)
    tr, va = arr.subset("train"), arr.subset("val")
    if len(tr) < cfg.batch_size or len(va) == 0:
        raise DataError(f"too few images to train: {len(tr)} train / {len(va)} validation (batch {cfg.batch_size})")
    log.info("split: %d train, %d val, %d test (test is never read here); %s",
             len(tr), len(va), int((arr.split == "test").sum()), _skipped_line(arr))
    model = build_model(cfg.alpha, cfg.input_size)
    seeded = seed_from_imagenet(model, arr, cfg)["layers"] if cfg.imagenet and not cfg.init_from else 0
    if cfg.init_from:
        from conversion.quantize import load_keras

        model.set_weights(load_keras(cfg.init_from).get_weights())
        log.info("warm start from %s", cfg.init_from)
    if (seeded or cfg.init_from) and cfg.freeze_stem:
        log.info("froze %d pretrained stem layers (up to block_3)", freeze_stem(model))
    steps = len(tr) // cfg.batch_size
    compile_model(model, tr, cfg, steps)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(cfg.out / "backup")),  # resume after an interruption, same command
        keras.callbacks.ModelCheckpoint(str(cfg.out / "last.keras")),
        keras.callbacks.ModelCheckpoint(str(cfg.out / "model.keras"), monitor="val_loss", save_best_only=True),
        keras.callbacks.CSVLogger(str(cfg.out / "history.csv"), append=True),
        EpochSummary(cfg.epochs),
    ]
    t0 = time.monotonic()
    model.fit(make_dataset(tr, cfg, True), validation_data=make_dataset(va, cfg, False), epochs=cfg.epochs,
              callbacks=callbacks, verbose=2)
    summary = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "imagenet_seeded_layers": seeded,
        "init_from": str(cfg.init_from) if cfg.init_from else None,
        "counts": {"train": len(tr), "val": len(va), "test": int((arr.split == "test").sum())},
        "skipped": dict(arr.skipped),
        "train_seconds": round(time.monotonic() - t0, 1),
        "split_rule": "bucket = int(sha256(file bytes)[:8], 16) % 100; <75 train, 75-84 val, >=85 test",
    }
    (cfg.out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("training done in %.0fs; best model %s", summary["train_seconds"], cfg.out / "model.keras")
    return cfg.out / "model.keras"
