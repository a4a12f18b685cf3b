"""A tiny real train → quantize → verify run, signature-named heads, and the toolchain's clear errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

tf = pytest.importorskip("tensorflow")  # the toolchain extra: pip install '.[convert]'

from conversion.cli import main as convert_cli  # noqa: E402
from conversion.data import content_sha256, split_of  # noqa: E402
from conversion.errors import ConversionError  # noqa: E402
from conversion.quantize import QuantizeConfig, quantize  # noqa: E402
from conversion.train import TrainConfig, train  # noqa: E402
from conversion.verify import VerifyConfig, verify  # noqa: E402
from edge_agent.classify.model import AttributeModel  # noqa: E402
from edge_agent.modelmeta import load_metadata  # noqa: E402
from tests.fixtures.media import astronaut_bgr  # noqa: E402


def _face_chips(root: Path, n: int = 24) -> Path:
    """UTKFace-style folder of real face crops: the astronaut's face under varied crops, flips and light."""
    root.mkdir(parents=True, exist_ok=True)
    img = astronaut_bgr()
    rng = np.random.default_rng(0)
    i = 0
    while len(list(root.iterdir())) < n or not _has_every_split(root):
        x0, y0, side = (
            160 + int(rng.integers(-12, 12)),
            20 + int(rng.integers(-12, 12)),
            200 + int(rng.integers(-20, 20)),
        )
        chip = cv2.resize(img[y0 : y0 + side, x0 : x0 + side], (200, 200))
        chip = cv2.convertScaleAbs(chip, alpha=float(rng.uniform(0.7, 1.3)), beta=float(rng.uniform(-20, 20)))
        if i % 2:
            chip = chip[:, ::-1]
        age, gender, race = int(rng.integers(1, 80)), i % 2, i % 5
        cv2.imwrite(str(root / f"{age}_{gender}_{race}_2017010100{i:05d}.jpg.chip.jpg"), chip)
        i += 1
    return root


def _has_every_split(root: Path) -> bool:
    sides = [split_of(content_sha256(p)) for p in root.iterdir()]
    return all(sides.count(s) >= 2 for s in ("val", "test")) and sides.count("train") >= 8


def tiny_train_config(root: Path, data: Path, **changes: Any) -> TrainConfig:
    """A seconds-long training run: alpha 0.35 at 32 px, batch 4, one epoch unless `changes` say otherwise."""
    base: dict[str, Any] = {"alpha": 0.35, "input_size": 32, "epochs": 1, "batch_size": 4, "lr": 1e-3}
    return TrainConfig(data=[data], out=root / "run", cache_dir=root / "cache", **{**base, **changes})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("conv")
    data = _face_chips(root / "faces")
    keras_path = train(tiny_train_config(root, data))
    tfl = quantize(
        QuantizeConfig(
            model=keras_path,
            out=root / "attr_int8.tflite",
            calibration=[data],
            split="all",
            temperature_split="all",
            samples=12,
        )
    )
    return {"data": data, "keras": keras_path, "tflite": tfl, "root": root}


def test_tiny_train_writes_checkpoints_summary_and_a_model(tiny_run: dict[str, Path]) -> None:
    run = tiny_run["keras"].parent
    assert (run / "model.keras").is_file() and (run / "last.keras").is_file() and (run / "history.csv").is_file()
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["counts"]["test"] >= 2 and summary["counts"]["train"] >= 8


def test_quantized_model_is_full_integer_with_metadata_and_hash(tiny_run: dict[str, Path]) -> None:
    meta = load_metadata(tiny_run["tflite"])  # verifies the sha256 against the file
    assert meta.quantization == "int8"
    assert meta.labels["race"] == ("white", "black", "asian", "indian", "other")
    assert meta.preprocess.size == 32 and meta.preprocess.color == "RGB"
    m = AttributeModel(tiny_run["tflite"])
    assert m.input["dtype"] == np.int8
    assert {d["dtype"] for d in m.outputs.values()} == {np.int8}


def test_heads_are_read_by_signature_name_with_tensor_quantization(tiny_run: dict[str, Path]) -> None:
    m = AttributeModel(tiny_run["tflite"])
    x = np.zeros((32, 32, 3), np.float32)
    out = m.predict(x, ("age", "age_years", "gender", "race"))
    assert out["age"].shape == (9,) and out["gender"].shape == (2,) and out["race"].shape == (5,)
    for h in ("age", "gender", "race"):  # dequantised with each tensor's own scale: probabilities summing to ~1
        assert abs(float(out[h].sum()) - 1.0) < 0.03
    only = m.predict(x, ("gender",))
    assert set(only) == {"gender"} and m.heads_read["race"] == 1  # race was read once above, not again


def test_tiny_verify_writes_json_markdown_and_plots(tiny_run: dict[str, Path], tmp_path: Path) -> None:
    rep = verify(
        VerifyConfig(
            float_model=tiny_run["keras"],
            quant_model=tiny_run["tflite"],
            data=[tiny_run["data"]],
            report=tmp_path / "rep",
            split="all",
            latency_runs=5,
            max_drop=100,
        )
    )
    assert rep["n_images"] >= 12 and rep["passed"] is True
    assert 0 <= rep["agreement"]["gender"] <= 1
    for name in (
        "report.json",
        "summary.md",
        "confusion_age.png",
        "confusion_race.png",
        "gender_by_race.png",
        "framing_sweep.png",
        "reliability.png",
    ):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "gender accuracy" in summary and "Framing sweep" in summary and "Calibration" in summary
    flip = rep["flip"]  # test-time flip gain, overall and for each source, so it can be decided on validation
    assert set(flip["per_source"]) == set(rep["per_source"]["quant"])
    assert flip["gender_acc"]["plain"] == pytest.approx(rep["quant"]["gender_acc"])
    assert "Test-time flip" in summary and any(f"- {src}: " in summary for src in flip["per_source"])


def test_framing_sweep_covers_margins_and_box_shifts_on_a_tiny_model(tiny_run: dict[str, Path]) -> None:
    from conversion.verify import MARGINS, SHIFTS

    rep = verify(
        VerifyConfig(
            float_model=tiny_run["keras"],
            quant_model=tiny_run["tflite"],
            data=[tiny_run["data"]],
            split="all",
            latency_runs=2,
            max_drop=100,
        )
    )
    rows = rep["framing"]
    assert [r["margin"] for r in rows[: len(MARGINS)]] == list(MARGINS)
    assert [(r["dx"], r["dy"]) for r in rows[len(MARGINS) :]] == list(SHIFTS)
    assert all(0.0 <= r["gender_acc"] <= 1.0 for r in rows)
    assert rep["per_source"]["quant"]["faces"]["n"] == rep["n_images"]
    assert set(rep["calibration"]) == {"age", "gender", "race"}


def test_verify_gate_fails_when_quantization_loses_too_much(tiny_run: dict[str, Path]) -> None:
    res = CliRunner().invoke(
        convert_cli,
        [
            "verify",
            str(tiny_run["keras"]),
            str(tiny_run["tflite"]),
            "--data",
            str(tiny_run["data"]),
            "--split",
            "all",
            "--max-drop",
            "-100",
        ],
    )
    assert res.exit_code == 1
    assert "loses more than" in res.output


def test_verify_rejects_a_file_that_is_not_tflite(tiny_run: dict[str, Path], tmp_path: Path) -> None:
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"definitely not a flatbuffer" * 10)
    res = CliRunner().invoke(
        convert_cli, ["verify", str(tiny_run["keras"]), str(fake), "--data", str(tiny_run["data"])]
    )
    assert res.exit_code == 2
    assert "not a TFLite model" in res.output and "Traceback" not in res.output


def test_quantize_refuses_an_empty_calibration_set(tiny_run: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "calib"
    empty.mkdir()
    (empty / "30_0_0_20170101000000001.jpg.chip.jpg").write_bytes(b"")  # labelled, but not an image
    with pytest.raises(ConversionError, match="calibration set is empty"):
        quantize(QuantizeConfig(model=tiny_run["keras"], out=tmp_path / "x.tflite", calibration=[empty], split="all"))


def test_quantize_refuses_a_model_without_the_expected_heads(tmp_path: Path) -> None:
    import keras

    inp = keras.Input((32, 32, 3))
    bad = keras.Model(
        inp,
        {
            "gender": keras.layers.Dense(2, activation="softmax", name="gender")(
                keras.layers.GlobalAveragePooling2D()(inp)
            )
        },
    )
    bad.save(tmp_path / "bad.keras")
    res = CliRunner().invoke(
        convert_cli,
        ["quantize", str(tmp_path / "bad.keras"), "--out", str(tmp_path / "b.tflite"), "--calibration", str(tmp_path)],
    )
    assert res.exit_code == 2
    assert "lacks the heads age, age_years, race" in res.output


def test_quantize_and_train_report_missing_paths_in_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        convert_cli, ["quantize", str(tmp_path / "none.keras"), "--out", str(tmp_path / "o.tflite")]
    )
    assert res.exit_code == 2 and "not found" in res.output
    res = CliRunner().invoke(convert_cli, ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "not found" in res.output and "Traceback" not in res.output


def test_imagenet_seeding_reproduces_the_tflite_imagenet_predictions(shared_dir: Path) -> None:
    import keras
    from skimage import data as skdata

    from conversion.imagenet_seed import seed_backbone
    from edge_agent.runtime import load_interpreter

    path = shared_dir / "models" / "imagenet-mobilenetv2" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
    if not path.is_file():
        pytest.skip("ImageNet MobileNetV2 TFLite not present")
    imgs = [cv2.resize(im, (224, 224)) for im in (skdata.chelsea(), skdata.coffee(), skdata.rocket())]
    x = np.stack(imgs).astype(np.float32) / 127.5 - 1
    bb = keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights=None, pooling="avg")
    _, w, b = seed_backbone(bb, path, x)["classifier"]
    logits = bb.predict(x, verbose=0) @ w.reshape(1001, 1280).T + b
    interp = load_interpreter(path)
    for i, im in enumerate(imgs):
        interp.set_tensor(interp.get_input_details()[0]["index"], im[None])
        interp.invoke()
        ref = interp.get_tensor(interp.get_output_details()[0]["index"])[0]
        assert int(np.argmax(logits[i])) == int(np.argmax(ref))


def test_warm_start_from_a_float_tflite_export_reproduces_the_trained_model(
    tiny_run: dict[str, Path], tmp_path: Path
) -> None:
    """`train --init-from model.tflite`: a released model (its float twin) continues training without its .keras."""
    from conversion.imagenet_seed import SeedError, seed_from_export
    from conversion.model import backbone_of, build_model
    from conversion.quantize import load_keras

    float_twin = quantize(
        QuantizeConfig(
            model=tiny_run["keras"],
            out=tmp_path / "attr_float32.tflite",
            quantization="float32",
            temperature_split=None,
        )
    )
    trained = load_keras(tiny_run["keras"])
    x = np.random.default_rng(1).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    fresh = build_model(0.35, 32, dex=True)
    features_before = backbone_of(fresh).predict(x, verbose=0)
    seed_from_export(fresh, float_twin, x)
    after, want = fresh.predict(x, verbose=0), trained.predict(x, verbose=0)
    features, features_want = backbone_of(fresh).predict(x, verbose=0), backbone_of(trained).predict(x, verbose=0)
    spread = float(np.abs(features_want).max())
    assert np.abs(features - features_want).max() < 1e-3 * spread
    assert np.abs(features_before - features_want).max() > 0.1 * spread  # the fresh model really was different
    for head in ("age", "gender", "race"):  # a 1-epoch model is near-uniform: compare tightly
        assert np.abs(after[head] - want[head]).max() < 1e-5
    assert np.abs(after["age_years"] - want["age_years"]).max() < 0.01  # years: the folded Rescaling undone
    with pytest.raises(SeedError):  # another width: refused in one line, not half-loaded
        seed_from_export(build_model(0.5, 32, dex=True), float_twin, x)


def test_interrupted_training_resumes_at_the_next_epoch(
    tiny_run: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv

    from conversion import progress

    cfg = TrainConfig(
        data=[tiny_run["data"]],
        out=tmp_path / "run",
        alpha=0.35,
        input_size=32,
        epochs=2,
        batch_size=4,
        cache_dir=tiny_run["root"] / "cache",
    )
    original = progress.EpochSummary.on_epoch_begin

    def interrupt_second_epoch(self: progress.EpochSummary, epoch: int, logs: object = None) -> None:
        if epoch == 1:
            raise KeyboardInterrupt  # as if the machine went down after epoch 1 was checkpointed
        original(self, epoch, logs)

    monkeypatch.setattr(progress.EpochSummary, "on_epoch_begin", interrupt_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert (cfg.out / "backup").is_dir() and (cfg.out / "last.keras").is_file()
    monkeypatch.setattr(progress.EpochSummary, "on_epoch_begin", original)
    train(cfg)  # the same command again
    with open(cfg.out / "history.csv") as fh:
        epochs = [int(row["epoch"]) for row in csv.DictReader(fh)]
    assert epochs == [0, 1]  # epoch 0 ran once, before the interruption; the rerun did only epoch 1
    assert not (cfg.out / "backup").exists()  # a finished run leaves no resume state behind


def test_quantize_flip_option_is_written_to_the_metadata_the_agent_reads(
    tiny_run: dict[str, Path], tmp_path: Path
) -> None:
    assert load_metadata(tiny_run["tflite"]).flip is False  # off unless asked for
    out = tmp_path / "flip.tflite"
    args = ["quantize", str(tiny_run["keras"]), "--out", str(out), "--type", "float32", "--temperature-split", "none"]
    res = CliRunner().invoke(convert_cli, [*args, "--calibration", str(tiny_run["data"]), "--split", "all", "--flip"])
    assert res.exit_code == 0, res.output
    assert load_metadata(out).flip is True


def test_verify_measures_a_flip_model_the_way_the_agent_runs_it(tiny_run: dict[str, Path], tmp_path: Path) -> None:
    """With `inference.flip` on, the agent averages face and mirror: verify's figures must be those, not plain ones."""
    out = tmp_path / "flip_int8.tflite"
    quantize(
        QuantizeConfig(
            model=tiny_run["keras"], out=out, calibration=[tiny_run["data"]], split="all", temperature_split="all",
            samples=12, flip=True,
        )
    )  # fmt: skip
    assert load_metadata(out).flip is True

    def run(model: Path, report: Path | None = None) -> dict[str, Any]:
        cfg = VerifyConfig(
            float_model=tiny_run["keras"], quant_model=model, data=[tiny_run["data"]], split="all", latency_runs=5,
            report=report,
        )  # fmt: skip
        return verify(cfg)

    plain, flipped = run(tiny_run["tflite"]), run(out, tmp_path / "rep")
    assert plain["flip_applied"] is False and flipped["flip_applied"] is True
    # The headline figures are the plain ones for a plain model and the flipped ones for a flip model ...
    for key in ("age_mae", "age_acc", "gender_acc"):
        assert plain["quant"][key] == pytest.approx(plain["flip"][key]["plain"])
        assert flipped["quant"][key] == pytest.approx(flipped["flip"][key]["flip"])
    # ... and a flip predictor averages each face with its mirror: a model reading only the leftmost column shows it.
    from conversion.verify import Predictor

    pred = Predictor(out, flip=True)
    pred._predict = lambda xs: {"left": xs[:, :, 0, 0].mean(axis=1, keepdims=True)}  # type: ignore[method-assign]
    x = np.zeros((2, 32, 32, 3), np.float32)
    x[:, :, 0], x[:, :, -1] = 1.0, -0.5  # left column 1, right column -0.5
    assert pred.predict(x, flip=False)["left"].ravel().tolist() == [1.0, 1.0]
    assert pred.predict(x)["left"].ravel().tolist() == [0.25, 0.25]  # (1 + -0.5) / 2: face and mirror
    assert "test-time flip on" in (tmp_path / "rep" / "summary.md").read_text()


def test_chip_cache_is_memory_mapped_in_split_order_so_splits_are_views(tiny_run: dict[str, Path]) -> None:
    from conversion.train import load_training_arrays

    cfg = tiny_train_config(tiny_run["root"], tiny_run["data"])
    npz = list((tiny_run["root"] / "cache").glob("chips_*.npz"))
    assert npz and all("images" not in np.load(z).files for z in npz)  # labels in the npz, pixels beside it
    arr = load_training_arrays(cfg)
    assert isinstance(arr.images.base, np.memmap) or isinstance(arr.images, np.memmap)
    order = {"train": 0, "val": 1, "test": 2}
    ranks = [order[s] for s in arr.split.tolist()]
    assert ranks == sorted(ranks)
    tr, va = arr.subset("train"), arr.subset("val")
    assert np.shares_memory(tr.images, arr.images) and np.shares_memory(va.images, arr.images)
    assert len(tr) + len(va) + int((arr.split == "test").sum()) == len(arr)
    fresh = load_training_arrays(dataclasses.replace(cfg, cache_dir=None))  # cut again, in memory
    assert not isinstance(fresh.images, np.memmap)
    assert fresh.paths == arr.paths and np.array_equal(fresh.images, np.asarray(arr.images))
    picked = arr.take(np.array([len(arr) - 1, 0]))  # not contiguous: a copy, in the order asked
    assert not np.shares_memory(picked.images, arr.images) and picked.paths == [arr.paths[-1], arr.paths[0]]


def test_batch_norm_moments_streamed_over_batches_equal_the_moments_of_the_whole_set() -> None:
    from conversion.imagenet_seed import _Moments

    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, size=(37, 6, 6, 4)).astype(np.float32) * np.array([1, 10, 0.1, 3], np.float32)
    m = _Moments()
    for a, b in ((0, 16), (16, 32), (32, 37)):  # uneven batches, as the last one of a calibration set is
        m.add(x[a:b])
    z = x.reshape(-1, 4).astype(np.float64)
    assert m.n == len(z)
    assert np.allclose(m.mean, z.mean(axis=0), rtol=1e-12) and np.allclose(m.var, z.var(axis=0), rtol=1e-10)


def test_verify_and_the_agent_apply_one_flip_rule_to_the_shipped_model() -> None:
    """verify's figures for a flip model are the agent's own: on a real face the toolchain's flip predictor and the
    agent's classifier give the same probabilities (the classifier then applies the metadata's temperature)."""
    from conversion.verify import Predictor
    from edge_agent.classify.classifier import AttributeClassifier, calibrated
    from edge_agent.classify.preprocess import crop_face, to_input
    from edge_agent.records import Box

    clf = AttributeClassifier(None)
    meta = clf.metadata
    crop = crop_face(astronaut_bgr(), Box(178, 81, 272, 175), meta.crop, meta.preprocess.size)
    pred = Predictor(clf.model.path, flip=meta.flip).predict(to_input(crop, meta.preprocess)[None])
    agent = clf.classify_crop(crop)
    for head in ("age", "gender", "race"):
        expected = calibrated(pred[head][0], meta.temperature.get(head, 1.0))
        assert np.allclose(getattr(agent, head).probs, expected, atol=1e-6), head
    assert agent.age_years == pytest.approx(float(pred["age_years"][0][0]))
