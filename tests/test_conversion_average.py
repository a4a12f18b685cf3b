"""Stochastic weight averaging of a run's snapshots: the arithmetic, the batch-norm re-estimation, a real tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

tf = pytest.importorskip("tensorflow")  # the toolchain extra: pip install '.[convert]'

import keras  # noqa: E402

from conversion.average import average_weights, reestimate_batch_norm, snapshots  # noqa: E402
from conversion.cli import main as convert_cli  # noqa: E402
from conversion.errors import ConversionError  # noqa: E402
from conversion.quantize import QuantizeConfig, load_keras, quantize  # noqa: E402
from conversion.train import train  # noqa: E402
from edge_agent.modelmeta import load_metadata  # noqa: E402
from tests.test_conversion_pipeline import _face_chips, tiny_train_config  # noqa: E402


def test_average_weights_is_the_elementwise_mean() -> None:
    a = [np.array([[1.0, 2.0]], np.float32), np.array([0.0], np.float32)]
    b = [np.array([[3.0, 6.0]], np.float32), np.array([3.0], np.float32)]
    out = average_weights([a, b])
    np.testing.assert_allclose(out[0], [[2.0, 4.0]])
    np.testing.assert_allclose(out[1], [1.5])
    assert out[0].dtype == np.float32


def test_average_weights_refuses_different_architectures() -> None:
    with pytest.raises(ConversionError, match="architecture"):
        average_weights([[np.zeros(2)], [np.zeros(3)]])
    with pytest.raises(ConversionError, match="architecture"):
        average_weights([[np.zeros(2)], [np.zeros(2), np.zeros(1)]])


def test_batch_norm_is_reestimated_as_the_mean_of_batch_statistics_and_frozen_layers_keep_theirs() -> None:
    inp = keras.Input((4,))
    frozen = keras.layers.BatchNormalization(name="frozen")
    live = keras.layers.BatchNormalization(name="live")
    model = keras.Model(inp, live(frozen(inp)))
    frozen.trainable = False
    frozen_mean = np.asarray(frozen.moving_mean).copy()
    rng = np.random.default_rng(0)
    xs = [rng.normal(loc=3.0 * (k + 1), size=(8, 4)).astype(np.float32) for k in range(3)]
    data = tf.data.Dataset.from_tensor_slices((np.stack(xs), np.zeros(3))).map(lambda x, y: (x, y))
    n = reestimate_batch_norm(model, data, n_batches=3)
    assert n == 1
    # The frozen layer (inference mode, mean 0, variance 1) scales its input by 1 / sqrt(1 + epsilon).
    want = np.mean([x.mean(axis=0) for x in xs], axis=0) / np.sqrt(1.0 + frozen.epsilon)
    np.testing.assert_allclose(np.asarray(live.moving_mean), want, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(frozen.moving_mean), frozen_mean)
    assert live.momentum == pytest.approx(0.99)  # restored after the pass


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("swa")
    data = _face_chips(root / "faces")
    cfg = tiny_train_config(root, data, epochs=2, schedule="constant")
    train(cfg)
    return {"data": data, "run": cfg.out, "cache": root / "cache", "root": root}


def test_a_run_keeps_every_epochs_snapshot(two_epoch_run: dict[str, Path]) -> None:
    found = snapshots(two_epoch_run["run"])
    assert [e for e, _ in found] == [1, 2]
    assert [e for e, _ in snapshots(two_epoch_run["run"], from_epoch=2)] == [2]
    meta = json.loads((two_epoch_run["run"] / "model_meta.json").read_text())
    assert meta["schedule"] == "constant"


def test_average_cli_writes_a_model_that_quantize_takes(two_epoch_run: dict[str, Path]) -> None:
    run = two_epoch_run["run"]
    res = CliRunner().invoke(
        convert_cli, ["average", str(run), "--bn-batches", "2", "--cache", str(two_epoch_run["cache"])]
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("last: ") and "\naverage: " in res.output and " loss=" in res.output
    assert "gender_acc=" in res.output
    out = run / "model_swa.keras"
    assert res.output.strip().endswith(str(out))
    summary = json.loads((run / "model_swa.json").read_text())
    assert summary["epochs"] == [1, 2] and set(summary["validation"]) == {"last", "average"}

    # The averaged weights are the mean of the two snapshots' (batch-norm statistics aside: re-estimated).
    swa = load_keras(out)
    ones = [load_keras(p) for _, p in snapshots(run)]
    dense = next(layer.name for layer in swa.layers if isinstance(layer, keras.layers.Dense))
    want = (ones[0].get_layer(dense).get_weights()[0] + ones[1].get_layer(dense).get_weights()[0]) / 2
    np.testing.assert_allclose(swa.get_layer(dense).get_weights()[0], want, rtol=1e-5, atol=1e-7)

    tfl = quantize(
        QuantizeConfig(
            model=out,
            out=two_epoch_run["root"] / "swa_int8.tflite",
            calibration=[two_epoch_run["data"]],
            split="all",
            temperature_split="all",
            samples=8,
        )
    )
    assert load_metadata(tfl).crop.margin == pytest.approx(0.025)  # the run's own crop rule, read beside the model


def test_average_cli_errors_are_one_line(two_epoch_run: dict[str, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(convert_cli, ["average", str(tmp_path)])
    assert res.exit_code != 0 and "not a training run" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(
        convert_cli, ["average", str(two_epoch_run["run"]), "--from-epoch", "2", "--cache", str(two_epoch_run["cache"])]
    )
    assert res.exit_code != 0 and "need at least 2 snapshots" in res.output
