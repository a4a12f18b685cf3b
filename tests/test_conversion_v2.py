"""Model v2 toolchain: several sources, masked losses, the detector-box cache, device-identical crops, calibration."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")  # the toolchain extra: pip install '.[convert]'

from conversion import boxes as boxes_mod  # noqa: E402
from conversion.augment import AugmentSpec, augment_batch  # noqa: E402
from conversion.calibration import apply_temperature, fit_temperature, reliability  # noqa: E402
from conversion.crops import CONTEXT, build_arrays, chip_size, context_chip  # noqa: E402
from conversion.data import MISSING, Arrays, read_sources  # noqa: E402
from conversion.losses import dex_soft_ce, weighted_soft_ce  # noqa: E402
from edge_agent.classify import preprocess as device_preprocess  # noqa: E402
from edge_agent.modelmeta import CropSpec  # noqa: E402
from edge_agent.records import Box  # noqa: E402
from tests.fixtures.media import astronaut_bgr  # noqa: E402

FACE = Box(180.0, 60.0, 300.0, 200.0)  # roughly the astronaut's face in the 512x512 portrait


def _write_sources(root: Path) -> tuple[Path, Path]:
    """A UTKFace-style folder of chips and a CSV manifest of photos with context (no race column)."""
    img = astronaut_bgr()
    chips, photos = root / "chips", root / "photos"
    chips.mkdir(parents=True)
    photos.mkdir()
    for i in range(4):
        chip = cv2.resize(img[40 + i * 4 : 240 + i * 4, 150:350], (200, 200))
        cv2.imwrite(str(chips / f"{30 + i}_{i % 2}_{i % 5}_2017010100{i:05d}.jpg.chip.jpg"), chip)
    rows = ["path,age,gender"]
    for i in range(3):
        photo = cv2.resize(img[i * 8 : 400 + i * 8, 60:420], (180, 200))
        cv2.imwrite(str(photos / f"p{i}.jpg"), photo)
        rows.append(f"p{i}.jpg,{40 + i},female")
    rows.append("missing.jpg,20,male")
    (photos / "labels.csv").write_text("\n".join(rows) + "\n")
    return chips, photos / "labels.csv"


def test_a_folder_and_a_csv_make_one_dataset_with_their_sources(tmp_path: Path) -> None:
    chips, csv_path = _write_sources(tmp_path)
    ds = read_sources([chips, csv_path])
    by_source = {s.source for s in ds.samples}
    assert by_source == {"chips", "photos"}
    assert sum(s.source == "chips" for s in ds.samples) == 4 and sum(s.source == "photos" for s in ds.samples) == 3
    assert all(s.race == MISSING for s in ds.samples if s.source == "photos")  # no race column: masked, not imputed
    assert all(s.tight for s in ds.samples if s.source == "chips") and not any(
        s.tight for s in ds.samples if s.source == "photos"
    )
    assert ds.skipped["photos: missing file"] == 1


def test_masked_head_contributes_no_gradient() -> None:
    import keras

    inp = keras.Input((4,))
    model = keras.Model(
        inp,
        {
            "race": keras.layers.Dense(5, activation="softmax", name="race")(inp),
            "gender": keras.layers.Dense(2, activation="softmax", name="gender")(inp),
        },
    )
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    race_loss = weighted_soft_ce(np.eye(5, dtype=np.float32), np.ones(5, np.float32))
    dex_loss = dex_soft_ce(101)

    def grads(y_race: np.ndarray) -> list[np.ndarray]:
        with tf.GradientTape() as tape:
            out = model(x)
            loss = tf.reduce_mean(race_loss(tf.constant(y_race), out["race"]))
        return [g.numpy() for g in tape.gradient(loss, model.get_layer("race").trainable_weights)]

    assert all(np.all(g == 0) for g in grads(np.full(8, MISSING, np.int32)))  # no labels: no gradient at all
    assert any(np.any(g != 0) for g in grads(np.arange(8, dtype=np.int32) % 5))  # labels: a real gradient
    probs = tf.fill((3, 101), 1.0 / 101)
    assert np.allclose(dex_loss(tf.constant([-1.0, -1.0, -1.0]), probs).numpy(), 0.0)
    assert np.all(dex_loss(tf.constant([30.0, 5.0, 70.0]), probs).numpy() > 0)


class CountingDetector:
    """The agent's real detector, counting how often it runs (the cache must make reruns free)."""

    def __init__(self) -> None:
        self.inner, self.path, self.config_json = boxes_mod.default_detector()
        self.calls = 0

    def detect(self, img: np.ndarray) -> list:
        self.calls += 1
        return self.inner.detect(img)


def test_detector_box_cache_hits_misses_and_invalidates(tmp_path: Path) -> None:
    chips, csv_path = _write_sources(tmp_path)
    ds = read_sources([chips, csv_path])
    from conversion.data import content_sha256

    items = [(content_sha256(s.path), s.path, s.tight) for s in ds.samples]
    det = CountingDetector()
    found, counts = boxes_mod.detect_boxes(items, tmp_path / "cache", det, det.path, det.config_json)
    assert counts["detected"] == len(items) and det.calls >= len(items)
    assert sum(fb is not None for fb in found.values()) >= len(items) - 1  # the real detector finds the face
    assert counts["not found"] <= 1
    calls = det.calls
    again, counts2 = boxes_mod.detect_boxes(items, tmp_path / "cache", det, det.path, det.config_json)
    assert det.calls == calls and counts2["cached"] == len(items)  # a hit runs nothing
    assert again == found
    # Another detector (different weights) or other settings: another key, so a miss that runs the detector again.
    other = tmp_path / "other.tflite"
    shutil.copyfile(det.path, other)
    with open(other, "ab") as fh:
        fh.write(b"\0")
    assert boxes_mod.cache_key(other, det.config_json) != boxes_mod.cache_key(det.path, det.config_json)
    assert boxes_mod.cache_key(det.path, det.config_json + " ") != boxes_mod.cache_key(det.path, det.config_json)
    _, counts3 = boxes_mod.detect_boxes(items[:2], tmp_path / "cache", det, other, det.config_json)
    assert counts3["detected"] == 2 and det.calls > calls
    # A new image is a miss even with a warm cache.
    new = chips / "50_1_1_20170101009999999.jpg.chip.jpg"
    cv2.imwrite(str(new), cv2.resize(astronaut_bgr()[30:250, 160:380], (200, 200)))
    _, counts4 = boxes_mod.detect_boxes(
        [*items, (content_sha256(new), new, True)], tmp_path / "cache", det, det.path, det.config_json
    )
    assert counts4["cached"] == len(items) and counts4["detected"] == 1


def test_training_crops_are_cut_by_the_device_crop_function() -> None:
    # One implementation: the toolchain imports the agent's function, it does not have a copy.
    from conversion import crops

    assert crops.crop_face is device_preprocess.crop_face and crops.crop_box is device_preprocess.crop_box


@pytest.mark.parametrize("margin", [-0.07, 0.025, 0.2])
def test_training_crop_equals_the_device_crop_on_a_real_image(margin: float) -> None:
    """Golden: the un-augmented training input (centre of the context chip) is the agent's crop of the same box."""
    img = astronaut_bgr()
    size = 64
    device = device_preprocess.crop_face(img, FACE, CropSpec(margin, True, "none"), size).astype(np.float32)
    chip = context_chip(img, FACE, margin, chip_size(size))
    train_view = augment_batch(tf.constant(chip[None]), size, AugmentSpec(crop_frac=1 / CONTEXT), train=False)
    train_px = (train_view.numpy()[0] + 1.0) * 127.5
    diff = np.abs(train_px - device)
    assert diff.mean() < 4.0 and np.percentile(diff, 99) < 40  # resampling differs by a few grey levels, not framing
    # A framing error of even 5% of the box would show: compare against a shifted device crop.
    off = device_preprocess.crop_face(img, FACE.translate(6, 0), CropSpec(margin, True, "none"), size)
    assert np.abs(train_px - off.astype(np.float32)).mean() > diff.mean() * 1.5


def test_augmentation_is_bounded_and_varies_framing() -> None:
    img = astronaut_bgr()
    chip = context_chip(img, FACE, 0.025, chip_size(48))
    batch = tf.constant(np.repeat(chip[None], 16, axis=0))
    out = augment_batch(batch, 48, AugmentSpec(crop_frac=1 / CONTEXT), train=True).numpy()
    assert out.shape == (16, 48, 48, 3) and out.min() >= -1.0 and out.max() <= 1.0
    assert np.std(out.reshape(16, -1).mean(axis=1)) > 0.005  # different crops, colours and effects per image


def _framing_only(scale_jitter: float) -> AugmentSpec:
    """Only the box-scale jitter on: no shift, rotation, flip, colour or camera effect."""
    return AugmentSpec(
        crop_frac=1 / CONTEXT, scale_jitter=scale_jitter, shift_jitter=0, max_rotate_deg=0, flip=False,
        occlude_prob=0, blur_prob=0, low_res_prob=0, jpeg_prob=0, noise_prob=0, gray_prob=0, brightness=0,
        contrast=0, white_balance=0, saturation=0,
    )  # fmt: skip


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.35])
def test_scale_jitter_sets_the_range_of_crop_scales(jitter: float) -> None:
    """A white square of known size in the chip: its apparent side in the crop is 1/scale, scale ~ U(1-j, 1+j)."""
    src, out = 160, 64
    chip = np.zeros((src, src, 3), np.uint8)
    half = 30  # the square's half-side in chip pixels; the crop (100 px) sees all of it at any scale >= 0.6
    chip[src // 2 - half : src // 2 + half, src // 2 - half : src // 2 + half] = 255
    n = 400
    crops = augment_batch(tf.constant(np.repeat(chip[None], n, 0)), out, _framing_only(jitter), train=True).numpy()
    side = (crops[..., 0] > 0).sum(axis=(1, 2)) ** 0.5  # the square's side in output pixels
    nominal = 2 * half * out / (src / CONTEXT)
    scale = nominal / side
    assert scale.min() == pytest.approx(1 - jitter, abs=0.03) and scale.max() == pytest.approx(1 + jitter, abs=0.03)
    assert np.std(scale) == pytest.approx(2 * jitter / 12**0.5, abs=0.01)  # uniform, not bunched at the centre


def test_averaging_rebuilds_the_augmentation_a_run_was_trained_with(tmp_path: Path) -> None:
    """`average` re-estimates batch norm on training batches: they must be augmented the way the run was."""
    from conversion.average import config_from_run_meta
    from conversion.train import TrainConfig, write_run_meta

    cfg = TrainConfig(
        data=[tmp_path / "d"], out=tmp_path, input_size=128, seed=11, scale_jitter=0.35, erase_prob=0.2,
        context_mix=0.3,
    )  # fmt: skip
    n = 4
    arr = Arrays(
        images=np.zeros((n, 8, 8, 3), np.uint8), age=np.full(n, 30.0), age_group=np.full(n, 3), gender=np.zeros(n),
        race=np.zeros(n), split=np.array(["train", "train", "val", "test"]), paths=["a", "b", "c", "d"],
        skipped=Counter(), source=np.array(["d"] * n), detected=np.ones(n, bool),
    )  # fmt: skip
    write_run_meta(cfg, arr, {})
    back = config_from_run_meta(tmp_path, json.loads((tmp_path / "model_meta.json").read_text()), None)
    assert (back.scale_jitter, back.erase_prob, back.input_size, back.seed, back.context_mix) == (
        0.35,
        0.2,
        128,
        11,
        0.3,
    )
    old = json.loads((tmp_path / "model_meta.json").read_text())
    del old["scale_jitter"], old["context_mix"]  # a run recorded before the options: the old fixed 0.25, no mixing
    assert config_from_run_meta(tmp_path, old, None).scale_jitter == 0.25
    assert config_from_run_meta(tmp_path, old, None).context_mix == 0.0


def test_scale_jitter_beyond_the_context_chip_is_refused(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from conversion.cli import main

    result = CliRunner().invoke(main, ["train", "--data", "x", "--out", str(tmp_path), "--scale-jitter", "0.5"])
    assert result.exit_code == 2 and "0.5 is not in the range 0.0<=x<=0.35" in result.output


def _erase_only(prob: float) -> AugmentSpec:
    """Every other effect off, and no framing jitter left that would change a flat image."""
    return AugmentSpec(
        crop_frac=1 / CONTEXT, erase_prob=prob, occlude_prob=0, blur_prob=0, low_res_prob=0, jpeg_prob=0,
        noise_prob=0, gray_prob=0, brightness=0, contrast=0, white_balance=0, saturation=0,
    )  # fmt: skip


def test_random_erasing_blanks_one_rectangle_of_4_to_20_percent_per_crop() -> None:
    flat = tf.constant(np.full((32, 80, 80, 3), 128, np.uint8))
    out = augment_batch(flat, 48, _erase_only(1.0), train=True).numpy()
    grey = np.median(out.reshape(32, -1), axis=1).reshape(32, 1, 1, 1)
    changed = (np.abs(out - grey) > 0.02).any(axis=-1)
    share = changed.mean(axis=(1, 2))
    assert share.min() >= 0.03 and share.max() <= 0.21  # one 4-20% rectangle (pixel rounding aside) on every crop
    rows, cols = np.nonzero(changed[0])
    box_area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert changed[0].sum() == box_area  # a filled rectangle, not scattered pixels
    assert np.std([r.mean() for r in out]) > 0.0  # placed and filled differently per crop
    untouched = augment_batch(flat, 48, _erase_only(0.0), train=True).numpy()
    assert np.abs(untouched - untouched[0, 0, 0]).max() < 1e-5


def _mix_only(prob: float) -> AugmentSpec:
    return replace(_erase_only(0.0), context_mix=prob, scale_jitter=0.0, shift_jitter=0, max_rotate_deg=0, flip=False)


def test_context_mixing_keeps_each_face_and_takes_the_surround_from_another_crop() -> None:
    """Each crop a flat colour of its own: a mixed crop keeps its colour on the face (centre) and shows its batch
    neighbour's colour in the corners (the hair and background), with a soft edge between; p=0 changes nothing."""
    n, size = 8, 48
    levels = np.linspace(20, 235, n).astype(np.uint8)
    batch = tf.constant(np.broadcast_to(levels[:, None, None, None], (n, 80, 80, 3)).copy())
    own = levels.astype(np.float32) / 127.5 - 1.0
    out = augment_batch(batch, size, _mix_only(1.0), train=True).numpy()[..., 0]
    neighbour = np.roll(own, 1)
    c = size // 2
    assert np.allclose(out[:, c, c], own, atol=1e-3)  # the face stays the crop's own
    for corner in (out[:, 0, 0], out[:, 0, -1], out[:, -1, 0], out[:, -1, -1]):
        assert np.allclose(corner, neighbour, atol=1e-3)  # the surround is another crop's
    lo, hi = np.minimum(own, neighbour)[:, None, None], np.maximum(own, neighbour)[:, None, None]
    between = (out > lo + 0.01) & (out < hi - 0.01)
    assert between.any(axis=(1, 2)).all()  # blended across the edge, no hard seam
    face_share = np.isclose(out, own[:, None, None], atol=1e-3).mean(axis=(1, 2))
    assert face_share.min() > 0.35 and face_share.max() < 0.85  # an ellipse on the face, not the whole crop
    untouched = augment_batch(batch, size, _mix_only(0.0), train=True).numpy()[..., 0]
    assert np.allclose(untouched, own[:, None, None], atol=1e-3)


def test_context_mix_reaches_training_and_outside_0_to_1_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import conversion.train
    from conversion.cli import main

    seen = []
    monkeypatch.setattr(conversion.train, "train", lambda cfg: seen.append(cfg) or tmp_path / "model.keras")
    args = ["train", "--data", "x", "--out", str(tmp_path), "--context-mix"]
    result = CliRunner().invoke(main, [*args, "0.3"])
    assert result.exit_code == 0, result.output
    assert [c.context_mix for c in seen] == [0.3]
    result = CliRunner().invoke(main, [*args, "1.5"])
    assert result.exit_code == 2 and "1.5 is not in the range 0.0<=x<=1.0" in result.output and len(seen) == 1


def test_build_arrays_cuts_context_chips_from_detector_boxes(tmp_path: Path) -> None:
    chips, csv_path = _write_sources(tmp_path)
    arr, counts = build_arrays(read_sources([chips, csv_path]), 32, 0.025, tmp_path / "cache", workers=1)
    assert arr.images.shape[1:] == (chip_size(32), chip_size(32), 3)
    assert set(arr.source.tolist()) == {"chips", "photos"} and arr.detected.sum() >= len(arr) - 1
    assert counts["chips: found on padded canvas"] + counts["chips: found as is"] == 4


def test_temperature_fit_reduces_calibration_error_without_changing_argmax() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 2, n)
    right = rng.random(n) < 0.8  # 80% accurate ...
    pred = np.where(right, y, 1 - y)
    p = np.full((n, 2), 0.02)
    p[np.arange(n), pred] = 0.98  # ... but 98% sure: over-confident
    t = fit_temperature(p, y)
    assert t > 1.5
    cal = apply_temperature(p, t)
    assert (cal.argmax(1) == p.argmax(1)).all()
    assert reliability(cal, y)["ece"] < 0.02 < reliability(p, y)["ece"]
    assert fit_temperature(p, np.full(n, MISSING)) == 1.0


def test_run_meta_carries_the_crop_rule_quantize_reads(tmp_path: Path) -> None:
    from conversion.errors import ConversionError
    from conversion.quantize import QuantizeConfig, crop_rule

    run = tmp_path / "run"
    run.mkdir()
    (run / "model_meta.json").write_text(json.dumps({"crop": {"margin": 0.025}}))
    assert crop_rule(QuantizeConfig(model=run / "model.keras", out=tmp_path / "m.tflite")) == 0.025
    with pytest.raises(ConversionError, match="differs from the margin the model was trained with"):
        crop_rule(QuantizeConfig(model=run / "model.keras", out=tmp_path / "m.tflite", crop_margin=0.25))
    with pytest.raises(ConversionError, match="give --crop-margin"):
        crop_rule(QuantizeConfig(model=tmp_path / "elsewhere.keras", out=tmp_path / "m.tflite"))


def test_masked_metrics_count_only_labelled_samples_over_the_epoch() -> None:
    from conversion.losses import masked_accuracy, masked_mae

    acc, mae = masked_accuracy("acc"), masked_mae("mae")
    right = tf.constant([[0.9, 0.1], [0.2, 0.8]])
    acc.update_state(tf.constant([0, 1]), right)  # a batch with labels: 2 of 2 right
    acc.update_state(tf.constant([MISSING, MISSING]), right)  # a batch without any: must not pull the mean down
    assert float(acc.result()) == pytest.approx(1.0)
    mae.update_state(tf.constant([30.0, -1.0]), tf.constant([[34.0], [99.0]]))
    assert float(mae.result()) == pytest.approx(4.0)


def test_training_without_the_dex_head_runs_and_exports_no_dex_outputs(tmp_path: Path) -> None:
    from conversion.train import TrainConfig, train

    chips, csv_path = _write_sources(tmp_path)
    for i in range(12):  # enough images for a batch in the training split
        src = chips / f"{30 + i % 4}_{i % 2}_{i % 5}_2017010100{i:05d}.jpg.chip.jpg"
        img = cv2.resize(astronaut_bgr()[30 + i * 3 : 250 + i * 3, 150 + i : 370 + i], (200, 200))
        cv2.imwrite(str(src.with_name(f"{20 + i}_{i % 2}_{i % 5}_2018010100{i:05d}.jpg.chip.jpg")), img)
    cfg = TrainConfig(
        data=[chips, csv_path],
        out=tmp_path / "run",
        alpha=0.35,
        input_size=32,
        epochs=1,
        batch_size=2,
        cache_dir=tmp_path / "cache",
        dex=False,
    )
    import keras

    model = keras.models.load_model(train(cfg), compile=False)
    assert set(model.output) == {"age", "age_years", "gender", "race"}


def test_report_handles_a_head_without_labels_in_the_data(tmp_path: Path) -> None:
    from conversion.report import write_report

    head = {
        "gender_acc": 0.9,
        "race_acc": None,
        "age_acc": 0.5,
        "age_one_off": 0.9,
        "age_mae": 5.0,
        "n": 4,
        "gender_confusion": [[2, 0], [0, 2]],
        "race_confusion": [[0] * 5] * 5,
        "age_confusion": [[1 if i == j else 0 for j in range(9)] for i in range(9)],
    }
    none_rel = {"ece": None, "bins": []}
    report = {
        "float_model": "m.keras",
        "quant_model": "m.tflite",
        "data": ["aaf/labels.csv"],
        "split": "test",
        "n_images": 4,
        "quantization": "int8",
        "max_drop_points": 0.5,
        "passed": True,
        "float": head,
        "quant": head,
        "drop_points": {},
        "agreement": {},
        "size_bytes": {"float": 1, "quant": 1},
        "latency_ms_median_1thread": {"quant": 1.0, "float": None},
        "runtime": "x",
        "calibration": {"race": {"temperature": 1.0, "raw": none_rel, "calibrated": none_rel}},
    }
    names = {p.name for p in write_report(report, tmp_path / "rep")}
    assert "confusion_gender.png" in names and "confusion_race.png" not in names
    assert "| race | 1.000 | — | — |" in (tmp_path / "rep" / "summary.md").read_text()


@pytest.mark.parametrize("power", [0.0, 0.5])
def test_class_weight_power_sets_how_much_a_rare_age_group_and_race_weigh(power: float) -> None:
    """`train --class-weight-power`: 0 trains every class alike; 0.5 (inverse-sqrt frequency) up-weights rare ones."""
    from conversion.data import Arrays
    from conversion.model import build_model
    from conversion.train import TrainConfig, compile_model

    n = 100
    age_group = np.array([3] * 90 + [2] * 10, np.int32)  # 20-29 common, 10-19 rare
    race = np.array([0] * 80 + [1] * 20, np.int32)
    arr = Arrays(
        images=np.zeros((n, 8, 8, 3), np.uint8), age=np.full(n, 25.0, np.float32), age_group=age_group,
        gender=np.zeros(n, np.int32), race=race, split=np.array(["train"] * n), paths=[""] * n, skipped=Counter(),
    )  # fmt: skip
    model = build_model(0.35, 32, dex=False)
    compile_model(model, arr, TrainConfig(data=[], out=Path("."), epochs=1, dex=False, class_weight_power=power), 10)
    uniform = tf.fill([2, 9], 1.0 / 9)
    age_loss = model.loss["age"](tf.constant([3, 2]), uniform).numpy()
    race_loss = model.loss["race"](tf.constant([0, 1]), tf.fill([2, 5], 0.2)).numpy()
    if power == 0.0:
        np.testing.assert_allclose(age_loss[0], age_loss[1], rtol=1e-5)
        np.testing.assert_allclose(race_loss[0], race_loss[1], rtol=1e-5)
    else:  # (90/10)^0.5 = 3 times the weight for the rare age group, (80/20)^0.5 = 2 for the rare race
        np.testing.assert_allclose(age_loss[1] / age_loss[0], 3.0, rtol=1e-3)
        np.testing.assert_allclose(race_loss[1] / race_loss[0], 2.0, rtol=1e-3)
