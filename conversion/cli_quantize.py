"""`edge-convert quantize` and `edge-convert verify` (registered on the main click group)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from conversion.cli_common import UsageError, cache_option, main, need_tensorflow, run


@main.command("quantize")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--calibration",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Folder (UTKFace naming) or CSV manifest of real face images for int8 calibration and the "
    "temperature fit; repeatable (use the training sources).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output .tflite (sidecar .json beside it).")
@click.option(
    "--type",
    "quantization",
    type=click.Choice(["int8", "uint8", "float16", "float32"]),
    default="int8",
    show_default=True,
    help="int8/uint8: full-integer with that input type.",
)
@click.option("--samples", default=300, show_default=True, help="Calibration images, sampled across classes.")
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test", "all"]),
    default="train",
    show_default=True,
    help="Hash split of the calibration data to sample from; 'all' for a dedicated calibration folder.",
)
@click.option(
    "--crop-margin",
    type=float,
    default=None,
    help="Per-side margin around the detector box; default and check: the trained model's own rule.",
)
@cache_option
@click.option(
    "--temperature-split",
    type=click.Choice(["train", "val", "all", "none"]),
    default="val",
    show_default=True,
    help="Split to fit per-head softmax temperatures on ('none' to skip).",
)
@click.option(
    "--flip/--no-flip",
    default=False,
    show_default=True,
    help="Set the metadata's test-time flip: the agent averages each face and its mirror image (2x the cost).",
)
@click.option("--model-version", "version", default="1.0.0", show_default=True)
def quantize_cmd(model: Path, **kw: Any) -> None:
    """Convert a trained Keras model to TFLite, with metadata (labels, preprocessing, crop, provenance, hash)."""
    need_tensorflow()
    from conversion.quantize import QuantizeConfig, quantize

    if not model.exists():
        raise UsageError(f"model not found: {model}")
    kw["calibration"] = list(kw["calibration"])
    for p in kw["calibration"]:
        if not Path(p).exists():
            raise UsageError(f"calibration path not found: {p}")
    if kw["temperature_split"] == "none":
        kw["temperature_split"] = None
    click.echo(str(run(quantize, QuantizeConfig(model=model, **kw))))


@main.command("verify")
@click.argument("float_model", type=click.Path(path_type=Path))
@click.argument("tflite_model", type=click.Path(path_type=Path))
@click.option(
    "--data",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="Folder or CSV manifest with labels; repeatable (figures are reported per source too).",
)
@cache_option
@click.option(
    "--sweep/--no-sweep",
    default=True,
    show_default=True,
    help="Framing sweep (margins and box shifts) and the test-time-flip check.",
)
@click.option(
    "--report", type=click.Path(path_type=Path), default=None, help="Write report.json, summary.md and PNGs here."
)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test", "all"]),
    default="test",
    show_default=True,
    help="Hash split to evaluate on (test = held out from training and calibration).",
)
@click.option("--max-drop", default=0.5, show_default=True, help="Fail if any head loses more than this many points.")
@click.option("--limit", type=int, default=None, help="Evaluate on at most this many images.")
def verify_cmd(float_model: Path, tflite_model: Path, **kw: Any) -> None:
    """Compare FLOAT_MODEL (.keras or float .tflite) with TFLITE_MODEL; exit 1 if quantization costs too much."""
    from conversion.report import markdown
    from conversion.verify import VerifyConfig, verify

    kw["data"] = list(kw["data"])
    for p in (float_model, tflite_model, *kw["data"]):
        if not Path(p).exists():
            raise UsageError(f"path not found: {p}")
    if float_model.suffix == ".keras":
        need_tensorflow()
    report = run(verify, VerifyConfig(float_model=float_model, quant_model=tflite_model, **kw))
    click.echo(markdown(report))
    if not report["passed"]:
        click.echo(
            f"error: quantized model loses more than {kw['max_drop']} points on a head: {report['drop_points']}",
            err=True,
        )
        sys.exit(1)
