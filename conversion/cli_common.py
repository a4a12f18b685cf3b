"""What every `edge-convert` command module shares: the click group, usage errors, TensorFlow check, error mapping.

Command modules (cli.py, cli_quantize.py) import from here and never from each other, so no import order matters.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

log = logging.getLogger("conversion")


# One cache folder for train, quantize and verify: detector boxes (keyed by the detector) and decoded face chips.
cache_option = click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path),
    default=Path.home() / ".cache/edge-agent/datasets",
    show_default=True,
    help="Cache of detector boxes and decoded face chips, shared by train, quantize and verify.",
)


class UsageError(click.ClickException):
    exit_code = 2


def setup_logging(verbose: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


def need_tensorflow() -> None:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise click.ClickException("TensorFlow is not installed: pip install 'edge-agent[convert]'") from None


def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
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
    setup_logging(verbose)
