"""`edge-convert`: train, quantize and verify the attribute model. Thin click commands over library functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from conversion import cli_quantize  # noqa: F401 - registers `quantize` and `verify` on the group
from conversion.cli_common import UsageError, cache_option, main, need_tensorflow, run

__all__ = ["UsageError", "main"]


@main.command("train")
@click.option(
    "--data",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="UTKFace-style folder or CSV manifest; repeat to train on several sources as one dataset.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory (checkpoints, model).")
@click.option("--alpha", default=1.0, show_default=True, help="MobileNetV2 width multiplier.")
@click.option("--input-size", default=96, show_default=True, help="Square input side in pixels.")
@click.option("--epochs", default=12, show_default=True)
@click.option(
    "--crop-margin",
    default=0.025,
    show_default=True,
    help="Per-side margin around the detector box (the device crop rule; quantize copies it).",
)
@click.option("--dex/--no-dex", default=True, show_default=True, help="Also train a DEX age head (compared by verify).")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--lr", default=1e-3, show_default=True, help="Peak learning rate (cosine schedule, warm-up).")
@click.option("--seed", default=1337, show_default=True)
@click.option(
    "--imagenet",
    type=click.Path(path_type=Path),
    default=None,
    help=(
        "ImageNet MobileNetV2 1.0 TFLite file to seed the backbone from "
        "(e.g. Coral's tf2_mobilenet_v2_1.0_224_ptq.tflite)."
    ),
)
@cache_option
@click.option(
    "--init-from",
    type=click.Path(path_type=Path),
    default=None,
    help=(
        "Warm start from a trained model of the same architecture, continuing with a new schedule: its .keras file, "
        "or its float TFLite export (e.g. the shipped models/attributes_float32.tflite)."
    ),
)
@click.option(
    "--freeze-stem/--no-freeze-stem",
    default=True,
    show_default=True,
    help="Keep the pretrained stem (up to block 3) fixed.",
)
@click.option(
    "--erase-prob",
    type=click.FloatRange(0.0, 1.0),
    default=0.3,
    show_default=True,
    help="Fraction of training crops with one randomly erased rectangle (random erasing).",
)
@click.option(
    "--scale-jitter",
    type=click.FloatRange(0.0, 0.35),
    default=0.25,
    show_default=True,
    help="Box scale augmentation: crop side × U(1 - j, 1 + j). 0.35 spans verify's framing sweep; the context "
    "chip (1.6× the crop) bounds it.",
)
@click.option(
    "--context-mix",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Fraction of training crops that keep their face and take the hair and background around it from "
    "another crop (context mixing), so the heads read the face, not only the context.",
)
@click.option(
    "--class-weight-power",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Race and age-group class weights ∝ frequency^-power against the data's skew (0 = none).",
)
@click.option(
    "--schedule",
    type=click.Choice(["cosine", "constant"]),
    default="cosine",
    show_default=True,
    help="Learning rate after the warm-up: cosine decay, or constant (snapshots to average with `average`).",
)
@click.option("--max-samples", type=int, default=None, help="Use a random subset (smoke runs).")
def train_cmd(**kw: Any) -> None:
    """Train the multi-head model. Rerunning the same command resumes after an interruption."""
    need_tensorflow()
    from conversion.train import TrainConfig, train

    for opt in ("imagenet", "init_from"):
        if kw[opt] is not None and not Path(kw[opt]).is_file():
            raise UsageError(f"--{opt.replace('_', '-')} file not found: {kw[opt]}")
    kw["data"] = list(kw["data"])
    path = run(train, TrainConfig(**kw))
    click.echo(str(path))


@main.command("average")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--from-epoch", type=click.IntRange(1), default=1, show_default=True, help="First snapshot to average.")
@click.option(
    "--bn-batches",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Training batches over which batch-norm statistics are re-estimated.",
)
@cache_option
def average_cmd(run_dir: Path, from_epoch: int, bn_batches: int, cache_dir: Path) -> None:
    """Average a run's per-epoch snapshots (stochastic weight averaging) into RUN_DIR/model_swa.keras.

    Prints the validation metrics of the last snapshot and of the average; quantize and verify take the result.
    """
    need_tensorflow()
    from conversion.average import average_run

    result = run(average_run, run_dir, cache_dir, from_epoch, bn_batches)
    for name, values in result.validation.items():
        shown = {k: v for k, v in values.items() if "acc" in k or "mae" in k or k == "loss"}
        click.echo(f"{name}: " + " ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    click.echo(str(result.out))


if __name__ == "__main__":
    main()
