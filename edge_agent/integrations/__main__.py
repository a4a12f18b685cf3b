"""`python -m edge_agent.integrations decommission [-c FILE]`: retire a device (see integrations.cli)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edge_agent.config import ConfigError, load_config
from edge_agent.daemon.logsetup import setup_logging
from edge_agent.integrations.cli import run_decommission


@click.group()
def main() -> None:
    """Integration housekeeping."""
    setup_logging("warning")


@main.command("decommission")
@click.option("-c", "--config", type=click.Path(dir_okay=False, path_type=Path), envvar="EDGE_AGENT_CONFIG")
def decommission_cmd(config: Path | None) -> None:
    """Clear this device's Home Assistant entities and retained state on the broker. Stop the agent first."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        click.echo(f"edge-agent: error: {exc}", err=True)
        sys.exit(2)
    sys.exit(run_decommission(cfg))


if __name__ == "__main__":
    main()
