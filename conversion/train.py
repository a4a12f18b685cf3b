"""`edge-convert train`: train the multi-head MobileNetV2 attribute model, with checkpoints, resume and progress."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conversion.augment import AugmentSpec, augment_batch
from conversion.crops import CONTEXT, build_arrays, chip_size
from conversion.data import Arrays, DataError, class_weights, read_sources
from conversion.labels import AGE_GROUPS, GENDERS, RACES
from conversion.model import AGE_BINS

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: list[Path]  # folders (UTKFace naming) and CSV manifests, one dataset
    out: Path
    alpha: float = 1.0
    input_size: int = 96
    epochs: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 1337
    imagenet: Path | None = None  # MobileNetV2 1.0 TFLite to seed the backbone from (alpha 1.0 only)
    cache_dir: Path | None = None
    max_samples: int | None = None  # for smoke runs
    crop_margin: float = 0.025  # per-side margin around the detector box: the device crop rule, stored in metadata
    context: float = CONTEXT
    workers: int = 2
    init_from: Path | None = None  # warm start: every weight from a .keras model or its TFLite export (float twin)
    freeze_stem: bool = True  # with ImageNet seeding: keep the stem's pretrained filters fixed (faster, as accurate)
    dex: bool = True  # also train a DEX age head (softmax over years), compared with the regression head by verify
    source_power: float = 0.5  # sources are drawn ∝ n^power: 0.5 keeps a small source from being drowned
    erase_prob: float = 0.3  # random erasing: share of training crops with one rectangle blanked out
    context_mix: float = 0.0  # share of crops given another crop's surround (hair, background): face cues over context
    scale_jitter: float = 0.25  # box scale × U(1 - j, 1 + j); 0.35 spans verify's whole framing sweep (−0.15 … +0.20)
    class_weight_power: float = 0.0  # race and age-group class weights ∝ frequency^-power (0 = none; 2.1.0 used 0.5)
    schedule: str = "cosine"  # "cosine" (warm-up, then cosine decay) or "constant" (warm-up, then flat: for averaging)


def load_training_arrays(cfg: TrainConfig) -> Arrays:
    """Detector boxes, then device-cut context chips, cached as .npz keyed by the file list and crop settings."""
    ds = read_sources(list(cfg.data))
    if cfg.max_samples:
        rng = np.random.default_rng(cfg.seed)
        keep = sorted(rng.choice(len(ds.samples), size=min(cfg.max_samples, len(ds.samples)), replace=False))
        ds.samples = [ds.samples[i] for i in keep]
    size = chip_size(cfg.input_size, cfg.context)
    tag = f"|{size}|{cfg.crop_margin}|{cfg.context}|v2"
    # Paths *and* labels: an edited manifest must not reuse old labels. (A new detector is not in the key: delete
    # the chips_*.npz to rebuild after changing it; the box cache itself is keyed by the detector.)
    rows = "|".join(f"{s.path},{s.age},{s.gender},{s.race},{s.source},{int(s.tight)}" for s in ds.samples)
    key = hashlib.sha256((rows + tag).encode()).hexdigest()[:16]
    cache = (cfg.cache_dir / f"chips_{size}_{key}.npz") if cfg.cache_dir else None
    pixels = cache.with_suffix(".images.npy") if cache is not None else None
    if cache is not None and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        n = len(z["age"])
        if "images" in z.files:  # a cache written before the images moved to their own memory-mapped file
            images = z["images"]
        elif pixels is not None and pixels.is_file() and (mm := np.load(pixels, mmap_mode="r")).shape[0] >= n:
            images = mm[:n]  # on disk; the page cache holds what is read
        else:
            images = None
            log.warning("chip cache %s has no %s; cutting the chips again", cache, pixels)
        if images is not None:
            log.info("loaded %d face chips from cache %s", n, cache)
            return Arrays(
                images,
                z["age"],
                z["age_group"],
                z["gender"],
                z["race"],
                z["split"],
                list(z["paths"]),
                Counter(dict(json.loads(str(z["skipped"])))),
                z["source"],
                z["detected"],
            )
    t0 = time.monotonic()
    partial = pixels.with_suffix(".partial") if pixels is not None else None
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
    arr, counts = build_arrays(
        ds, cfg.input_size, cfg.crop_margin, cfg.cache_dir, cfg.workers, cfg.context, images_out=partial
    )
    log.info(
        "cut %d face chips at %dpx in %.0fs; detector: %s; %s",
        len(arr),
        size,
        time.monotonic() - t0,
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        _skipped_line(arr),
    )
    if cache is not None and pixels is not None and partial is not None:
        partial.replace(pixels)  # the memory map stays valid: same file, new name
        np.savez(
            cache,
            age=arr.age,
            age_group=arr.age_group,
            gender=arr.gender,
            race=arr.race,
            split=arr.split,
            paths=np.array(arr.paths),
            skipped=json.dumps(dict(arr.skipped)),
            source=arr.source,
            detected=arr.detected,
        )
    return arr


def _skipped_line(arr: Arrays) -> str:
    if not arr.skipped:
        return "skipped 0 files"
    return "skipped " + ", ".join(f"{n} {r}" for r, n in arr.skipped.most_common())


def group_counts(arr: Arrays) -> dict[str, dict[str, dict[str, int]]]:
    """Per source: labelled counts per age group, gender and race (the start-of-run report)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    src = arr.source if arr.source is not None else np.full(len(arr), "data")
    for name in sorted(set(src.tolist())):
        m = src == name
        out[name] = {
            "age": {g: int(((arr.age_group == i) & m).sum()) for i, g in enumerate(AGE_GROUPS)},
            "gender": {g: int(((arr.gender == i) & m).sum()) for i, g in enumerate(GENDERS)},
            "race": {g: int(((arr.race == i) & m).sum()) for i, g in enumerate(RACES)},
            "total": {"n": int(m.sum())},
        }
    return out


def source_weights(arr: Arrays, power: float) -> dict[str, float]:
    src = arr.source if arr.source is not None else np.full(len(arr), "data")
    names, counts = np.unique(src, return_counts=True)
    w = counts.astype(np.float64) ** power
    return {str(n): float(v) for n, v in zip(names, w / w.sum(), strict=False)}


def _labels(arr: Arrays, dex: bool = True) -> dict[str, np.ndarray]:
    """Targets per model output; the DEX targets only when the model has the DEX outputs (Keras wants both the
    same)."""
    out = {"age": arr.age_group, "age_years": arr.age, "gender": arr.gender, "race": arr.race}
    if dex:
        out.update({"age_bins": arr.age, "age_years_dex": arr.age})
    return out


def make_dataset(arr: Arrays, cfg: TrainConfig, train: bool) -> Any:
    """Batches of augmented (train) or centre (eval: exactly the device crop) inputs with their label dict.

    Training draws each sample's source with `source_weights` (∝ n^0.5), then a random sample of it, forever;
    `fit` counts epochs in steps. Images stay in numpy and are gathered per batch (no 2 GB graph constant).
    """
    import tensorflow as tf

    spec = AugmentSpec(
        crop_frac=1.0 / cfg.context,
        erase_prob=cfg.erase_prob,
        scale_jitter=cfg.scale_jitter,
        context_mix=cfg.context_mix,
    )
    labels = _labels(arr, cfg.dex)
    src = arr.source if arr.source is not None else np.full(len(arr), "data")
    if train:
        weights = source_weights(arr, cfg.source_power)
        parts = [
            tf.data.Dataset.from_tensor_slices(np.flatnonzero(src == name).astype(np.int64))
            .shuffle(int((src == name).sum()), seed=cfg.seed, reshuffle_each_iteration=True)
            .repeat()
            for name in weights
        ]
        idx = tf.data.Dataset.sample_from_datasets(parts, list(weights.values()), seed=cfg.seed)
        idx = idx.batch(cfg.batch_size, drop_remainder=True)
    else:
        idx = tf.data.Dataset.from_tensor_slices(np.arange(len(arr), dtype=np.int64)).batch(cfg.batch_size)
    names = list(labels)
    dtypes = [tf.uint8] + [tf.as_dtype(labels[k].dtype) for k in names]
    chip = int(arr.images.shape[1])

    def gather(i: np.ndarray) -> list[np.ndarray]:
        return [arr.images[i]] + [labels[k][i] for k in names]

    def fetch(i: Any) -> Any:
        out = tf.numpy_function(gather, [i], dtypes)
        out[0].set_shape([None, chip, chip, 3])
        for t in out[1:]:
            t.set_shape([None])
        return out[0], dict(zip(names, out[1:], strict=False))

    ds = idx.map(fetch, num_parallel_calls=2)
    ds = ds.map(lambda x, y: (augment_batch(x, cfg.input_size, spec, train), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(4)


def compile_model(model: Any, arr: Arrays, cfg: TrainConfig, steps_per_epoch: int) -> None:
    import keras

    from conversion.losses import (
        dex_soft_ce,
        masked_accuracy,
        masked_l1_years,
        masked_mae,
        ordinal_targets,
        smooth_targets,
        weighted_soft_ce,
    )

    # Skew (UTKFace is mostly White, 20-40 and infants): optional class weights for race and age group. Off by
    # default: with inverse-sqrt weights (2.1.0) the heads over-predicted rare groups and lost 1-2 points overall.
    race_w = class_weights(arr.race, len(RACES), cfg.class_weight_power)
    age_w = class_weights(arr.age_group, len(AGE_GROUPS), cfg.class_weight_power)
    losses = {
        "age": weighted_soft_ce(ordinal_targets(len(AGE_GROUPS)), age_w),
        "gender": weighted_soft_ce(smooth_targets(len(GENDERS)), np.ones(len(GENDERS), np.float32)),
        "race": weighted_soft_ce(smooth_targets(len(RACES)), race_w),
        "age_years": masked_l1_years(),
    }
    weights = {"age": 1.0, "gender": 1.0, "race": 1.0, "age_years": 0.5}
    metrics: dict[str, Any] = {
        "age": [masked_accuracy("acc")],
        "gender": [masked_accuracy("acc")],
        "race": [masked_accuracy("acc")],
        "age_years": [masked_mae("mae")],
    }
    if cfg.dex:
        losses.update({"age_bins": dex_soft_ce(AGE_BINS), "age_years_dex": masked_l1_years()})
        weights.update({"age_bins": 0.25, "age_years_dex": 0.1})
        metrics["age_years_dex"] = [masked_mae("mae")]
    total = steps_per_epoch * cfg.epochs
    warmup = min(steps_per_epoch, total // 10)
    # "constant" keeps the peak after the warm-up (alpha=1: no decay), so per-epoch snapshots stay diverse enough
    # to be worth averaging (stochastic weight averaging, `edge-convert average`).
    sched = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr * 0.05,
        decay_steps=max(total - warmup, 1),
        alpha=1.0 if cfg.schedule == "constant" else 0.01,
        warmup_target=cfg.lr,
        warmup_steps=warmup,
    )
    model.compile(
        jit_compile=False,  # XLA on CPU made MobileNetV2 training ~9x slower here (8.0 vs 0.9 s/step)
        optimizer=keras.optimizers.AdamW(learning_rate=sched, weight_decay=cfg.weight_decay),
        loss=losses,
        loss_weights=weights,
        metrics=metrics,
    )
    log.info("class weights race=%s age=%s", np.round(race_w, 2).tolist(), np.round(age_w, 2).tolist())


def _seed_batch(arr: Arrays, cfg: TrainConfig) -> np.ndarray:
    """Up to 512 training crops as the model sees them (no augmentation): the batch-norm statistics for seeding."""
    train = arr.subset("train")
    rng = np.random.default_rng(cfg.seed)
    pick = rng.choice(len(train), size=min(512, len(train)), replace=False)
    calib = next(
        iter(make_dataset(train.take(pick), TrainConfig(**{**asdict(cfg), "batch_size": len(pick)}), train=False))
    )[0]
    return np.asarray(calib)


def seed_from_imagenet(model: Any, arr: Arrays, cfg: TrainConfig) -> dict[str, Any]:
    from conversion.imagenet_seed import SeedError, seed_backbone
    from conversion.model import backbone_of

    if cfg.alpha != 1.0:
        raise SeedError(f"ImageNet seeding needs alpha 1.0 (the TFLite file is MobileNetV2 1.0), got {cfg.alpha}")
    return seed_backbone(backbone_of(model), cfg.imagenet, _seed_batch(arr, cfg))


def warm_start(model: Any, arr: Arrays, cfg: TrainConfig) -> None:
    """Copy every weight from `cfg.init_from`: a .keras model, or a TFLite export of one (the shipped float twin)."""
    assert cfg.init_from is not None
    if cfg.init_from.suffix == ".tflite":
        from conversion.imagenet_seed import seed_from_export

        seed_from_export(model, cfg.init_from, _seed_batch(arr, cfg))
    else:
        from conversion.quantize import load_keras

        model.set_weights(load_keras(cfg.init_from).get_weights())
    log.info("warm start from %s", cfg.init_from)


RUN_META = "model_meta.json"  # beside model.keras: the crop rule and data the model was trained with


def write_run_meta(cfg: TrainConfig, arr: Arrays, counts: dict[str, Any]) -> None:
    """What quantize must reproduce (the crop rule) and what the card must state (the data), next to the model."""
    meta = {
        "crop": {"margin": cfg.crop_margin, "square": True, "alignment": "none", "context": cfg.context},
        "input_size": cfg.input_size,
        "alpha": cfg.alpha,
        "data": [str(p) for p in cfg.data],
        "sources": sorted(set(arr.source.tolist())) if arr.source is not None else [],
        "train_counts": counts,
        "split_counts": {k: int((arr.split == k).sum()) for k in ("train", "val", "test")},
        "detector_boxes": {"found": int(arr.detected.sum()) if arr.detected is not None else None, "total": len(arr)},
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "dex": cfg.dex,
        "erase_prob": cfg.erase_prob,
        "scale_jitter": cfg.scale_jitter,
        "context_mix": cfg.context_mix,
        "class_weight_power": cfg.class_weight_power,
        "schedule": cfg.schedule,
        "imagenet": str(cfg.imagenet) if cfg.imagenet else None,
    }
    (cfg.out / RUN_META).write_text(json.dumps(meta, indent=2) + "\n")


def train(cfg: TrainConfig) -> Path:
    """Train and write `out/model.keras` (best validation loss) and `out/train_summary.json`; returns the model path."""
    import keras

    from conversion.model import build_model, freeze_stem
    from conversion.progress import EpochSummary

    (cfg.out / "snapshots").mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    arr = load_training_arrays(cfg)
    tr, va = arr.subset("train"), arr.subset("val")
    if len(tr) < cfg.batch_size or len(va) == 0:
        raise DataError(f"too few images to train: {len(tr)} train / {len(va)} validation (batch {cfg.batch_size})")
    log.info(
        "split: %d train, %d val, %d test (test is never read here); %s",
        len(tr),
        len(va),
        int((arr.split == "test").sum()),
        _skipped_line(arr),
    )
    counts = group_counts(tr)
    for name, c in counts.items():
        log.info(
            "train %s: %d images; age %s; gender %s; race %s", name, c["total"]["n"], c["age"], c["gender"], c["race"]
        )
    log.info("sources drawn with weights %s", {k: round(v, 3) for k, v in source_weights(tr, cfg.source_power).items()})
    write_run_meta(cfg, arr, counts)
    model = build_model(cfg.alpha, cfg.input_size, dex=cfg.dex)
    seeded = seed_from_imagenet(model, arr, cfg)["layers"] if cfg.imagenet and not cfg.init_from else 0
    if cfg.init_from:
        warm_start(model, arr, cfg)
    if (seeded or cfg.init_from) and cfg.freeze_stem:
        log.info("froze %d pretrained stem layers (up to block_3)", freeze_stem(model))
    steps = len(tr) // cfg.batch_size
    compile_model(model, tr, cfg, steps)
    history = keras.callbacks.CSVLogger(str(cfg.out / "history.csv"), append=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(cfg.out / "backup")),  # resume after an interruption, same command
        keras.callbacks.ModelCheckpoint(str(cfg.out / "last.keras")),
        # Every epoch's weights, for `edge-convert average` (about 10 MB each).
        keras.callbacks.ModelCheckpoint(str(cfg.out / "snapshots" / "epoch_{epoch:02d}.keras")),
        keras.callbacks.ModelCheckpoint(str(cfg.out / "model.keras"), monitor="val_loss", save_best_only=True),
        history,
        EpochSummary(cfg.epochs),
    ]
    t0 = time.monotonic()
    try:
        model.fit(
            make_dataset(tr, cfg, True),
            validation_data=make_dataset(va, cfg, False),
            epochs=cfg.epochs,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=2,
            shuffle=False,
        )  # shuffled in tf.data
    finally:  # an interrupted fit never reaches on_train_end, where the logger closes its file
        csv_file = getattr(history, "csv_file", None)
        if csv_file is not None and not csv_file.closed:
            csv_file.close()
    summary = {
        "config": {
            k: str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) else v
            for k, v in asdict(cfg).items()
        },
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
