"""`edge-agent decommission`: clear a retired device's retained messages (Home Assistant entities included)."""

from __future__ import annotations

import logging

import click

from edge_agent.config import AgentConfig
from edge_agent.integrations.home_assistant import decommission

log = logging.getLogger(__name__)


def run_decommission(cfg: AgentConfig, dev: str) -> int:
    """Clear and report; exit code 1 when the broker cannot be reached (nothing was changed then)."""
    try:
        done = decommission(cfg, dev)
    except (ConnectionError, OSError, RuntimeError, ValueError) as exc:
        click.echo(f"edge-agent: error: decommission of {dev}: {exc}", err=True)
        return 1
    click.echo(
        f"decommissioned {dev}: {len(done.discovery)} Home Assistant config(s) and "
        f"{len(done.state)} retained state message(s) cleared"
    )
    for topic in (*done.discovery, *done.state):
        click.echo(f"  cleared {topic}")
    return 0
