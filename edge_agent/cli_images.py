"""`edge-agent classify` and `edge-agent annotate`: the still-image and video inspection commands (no broker)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_agent.cli_common import EXIT_RUNTIME, boundary, common_options, fail, load
from edge_agent.imageio import DEFAULT_MAX_PIXELS, ImageLimits, SkipCounter

max_pixels_option = click.option(
    "--max-pixels",
    type=click.IntRange(min=1024),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Images whose header declares more pixels are skipped before decoding (decompression-bomb guard).",
)


@click.command()
@common_options
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--face-crop",
    is_flag=True,
    help="Each image already is a face crop (a dataset chip, an ID photo): skip detection, use the model's chip rule.",
)
@max_pixels_option
@click.pass_context
@boundary
def classify(ctx: click.Context, images: tuple[Path, ...], face_crop: bool, max_pixels: int) -> None:
    """Detect and classify faces in still images (or folders); one JSON line per image, gated like the daemon.

    Attributes are shown as the daemon would publish them (minors as a count only, low confidence as unknown);
    what the model said beyond that is listed under `not_published`, with the rule that hides it.
    """
    from edge_agent.daemon.stills import classify_images

    cfg, _ = load(ctx)
    skips = SkipCounter("classify")
    total = 0
    limits = ImageLimits(max_pixels=max_pixels)
    for record in classify_images(cfg, list(images), face_crop=face_crop, limits=limits, skips=skips):
        total += 1
        click.echo(json.dumps(record, separators=(",", ":")))
    if skips.total:
        click.echo(f"edge-agent: {skips.summary()}", err=True)
    if total in (0, skips.total):  # nothing given, or nothing usable
        fail(f"no usable image among {total} file(s)", EXIT_RUNTIME)


@click.command()
@common_options
@click.argument("source")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output by extension: .mp4/.mov/.mkv/.avi video, .gif, or a folder (no extension) of JPEGs.",
)
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after this many frames.")
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True, max=240),
    default=None,
    help="Frame rate for a folder of images (default 1 for photos, 10 with --sequence); videos keep their own.",
)
@click.option("--sequence", is_flag=True, help="A folder's images are frames of one camera: track across them.")
@max_pixels_option
@click.pass_context
@boundary
def annotate(
    ctx: click.Context,
    source: str,
    out: Path,
    max_frames: int | None,
    fps: float | None,
    sequence: bool,
    max_pixels: int,
) -> None:
    """Draw boxes, track ids, dwell, attention and labels on a video, the demo, a stream or images (stays local)."""
    from edge_agent.daemon.annotate import AnnotateOptions, annotate_source
    from edge_agent.daemon.annotate_out import output_kind

    output_kind(out)  # a wrong extension is a usage error before anything is loaded
    cfg, _ = load(ctx)
    opts = AnnotateOptions(max_frames=max_frames, fps=fps, sequence=sequence, limits=ImageLimits(max_pixels))
    result = annotate_source(cfg, source, out, opts)
    extra = f"; {result.skipped}" if result.skipped else ""
    click.echo(
        f"wrote {result.frames} annotated frame(s) at {result.fps:g} fps to {out} ({result.kind}){extra}", err=True
    )
    if result.frames == 0:
        fail(f"annotate: no usable frame in {source}", EXIT_RUNTIME)
