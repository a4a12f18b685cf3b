"""What every `edge-agent` command shares: exit codes, the one-line error boundary, `-v`/`-c` anywhere, config.

`-v` and `-c FILE` are accepted before the subcommand (`edge-agent -v run`) and after it (`edge-agent run -v`);
either sets the same value. The config file is found in the order a daemon user expects (see
`config.discover_config`), and the file in use, or "built-in defaults", is logged once at start-up.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from edge_agent.config import AgentConfig, ConfigError, describe_origin, discover_config, load_config
from edge_agent.config.loader import ENV_CONFIG, SYSTEM_CONFIG
from edge_agent.daemon.logsetup import setup_logging

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2
CONFIG_HELP = "Config file (TOML). Default: $EDGE_AGENT_CONFIG, else /etc/edge-agent/config.toml, else built-in."


def _runtime_errors() -> tuple[type[BaseException], ...]:
    """Typed start-up errors that mean 'the environment is wrong' (exit 1), imported lazily."""
    from edge_agent.capture.base import SourceError
    from edge_agent.modelmeta import MetadataError
    from edge_agent.publish.envelope import MessageError
    from edge_agent.publish.outbox import OutboxError
    from edge_agent.runtime import ModelLoadError

    return (ModelLoadError, MetadataError, OSError, SourceError, OutboxError, MessageError)


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


def _root_obj(ctx: click.Context) -> dict[str, Any]:
    root = ctx.find_root()
    root.ensure_object(dict)
    obj: dict[str, Any] = root.obj
    return obj


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        _root_obj(ctx)["verbose"] = True
        setup_logging("debug")


def _set_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _root_obj(ctx)["config"] = value


verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_verbose,
    help="Debug logging (and tracebacks for internal errors).",
)
config_option = click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    expose_value=False,
    callback=_set_config,
    help=CONFIG_HELP,
)


def common_options(func: F) -> F:
    """`-v` and `-c FILE` on a subcommand, the same as before it."""
    return verbose_option(config_option(func))


def verbose(ctx: click.Context) -> bool:
    return bool(_root_obj(ctx).get("verbose"))


def config_path(ctx: click.Context) -> Path | None:
    """The file in use: -c (before or after the subcommand), $EDGE_AGENT_CONFIG, the system file, or None."""
    return discover_config(_root_obj(ctx).get("config"))


def load(ctx: click.Context, *, quiet: bool = False, explicit: Path | None = None) -> tuple[AgentConfig, Path | None]:
    """Find and load the config, set the log level from it (unless -v), and log which file it came from."""
    explicit = explicit or _root_obj(ctx).get("config")
    path = discover_config(explicit)
    log.debug(
        "config search: -c %s, $%s %s, %s %s",
        explicit or "(none)",
        ENV_CONFIG,
        os.environ.get(ENV_CONFIG) or "(unset)",
        SYSTEM_CONFIG,
        "(exists)" if SYSTEM_CONFIG.is_file() else "(absent)",
    )
    cfg = load_config(path)
    setup_logging("debug" if verbose(ctx) else cfg.agent.log_level)
    _root_obj(ctx)["origin"] = describe_origin(path, explicit)
    if not quiet:
        log.info("config: %s", _root_obj(ctx)["origin"])
    return cfg, path


def origin(ctx: click.Context) -> str:
    """Where the loaded config came from (after load())."""
    return str(_root_obj(ctx).get("origin", ""))
