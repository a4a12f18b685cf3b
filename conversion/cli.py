"""`edge-convert`: train, quantize and verify the attribute model. Thin click commands over library functions."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

log = logging.getLogger("conversion")


class UsageError(click.ClickException):
    exit_code = 2


def _setup_logging(verbose: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")


def _need_tensorflow() -> None:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise click.ClickException("TensorFlow is not installed: pip install 'edge-agent[convert]'") from None


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a library function, turning our typed errors into one-line messages with meaningful exit codes."""
    from conversion.data import DataError
    from conversion.errors import ConversionError
    from conversion.imagenet_seed import SeedError
    from edge_agent.modelmeta import MetadataError
    from edge_agent.runtime import ModelLoadError

    try:
        return fn(*args, **kwargs)
    except (DataError, SeedError, ConversionError, MetadataError, ModelLoadError, FileNotFoundError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    except KeyboardInterrupt:
        click.echo("interrupted; rerun the same command to resume from the last checkpoint", err=True)
        sys.exit(130)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Train, quantize and verify edge-agent attribute models."""
    _setup_logging(verbose)


@main.command("train")
@click.option("--data", required=True, multiple=True, type=click.Path(path_type=Path),
              help="UTKFace-style folder or CSV manifest; repeat to train on several sources as one dataset.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory (checkpoints, model).")
@click.option("--alpha", default=1.0, show_default=True, help="MobileNetV2 width multiplier.")
@click.option("--input-size", default=96, show_default=True, help="Square input side in pixels.")
@click.option("--epochs", default=12, show_default=True)
@click.option("--crop-margin", default=0.025, show_default=True,
              help="Per-side margin around the detector box (the device crop rule; quantize copies it).")
@click.option("--dex/--no-dex", default=True, show_default=True, help="Also train a DEX age head (compared by verify).")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--lr", default=1e-3, show_default=True, help="Peak learning rate (cosine schedule, warm-up).")
@click.option("--seed", default=1337, show_default=True)
@click.option("--imagenet", type=click.Path(path_type=Path), default=None,
              help="ImageNet MobileNetV2 1.0 TFLite file to seed the backbone from (e.g. Coral's tf2_mobilenet_v2_1.0_224_ptq.tflite).")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=Path.home() / ".cache/edge-agent/datasets",
              show_default=True, help="Where decoded images are cached between runs.")
@click.option("--init-from", type=click.Path(path_type=Path), default=None,
              help="Warm start from a trained .keras model of the same architecture (continue with a new schedule).")
@click.option("--freeze-stem/--no-freeze-stem", default=True, show_default=True,
              help="Keep the pretrained stem (up to block 3) fixed.")
@click.option("--max-samples", type=int, default=None, help="Use a random subset (smoke runs).")
def train_cmd(**kw: Any) -> None:
    """Train the multi-head model. Rerunning the same command resumes after an interruption."""
    _need_tensorflow()
    from conversion.train import TrainConfig, train

    if kw["imagenet"] is not None and not Path(kw["imagenet"]).is_file():
        raise UsageError(f"--imagenet file not found: {kw['imagenet']}")
    kw["data"] = list(kw["data"])
    path = _run(train, TrainConfig(**kw))
    click.echo(str(path))


def _register_more() -> None:
    # quantize/verify live in their own modules to keep this file small.
    from conversion import cli_quantize  # noqa: F401


_register_more()

if __name__ == "__main__":
    main()
