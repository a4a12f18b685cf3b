"""Composition root entry point: `run_agent(cfg)` runs the agent with signal handlers that only set events."""

from __future__ import annotations

import logging
from pathlib import Path

from edge_agent.config import AgentConfig
from edge_agent.daemon.agent import Agent
from edge_agent.daemon.signals import Signals

log = logging.getLogger(__name__)

__all__ = ["Agent", "run_agent"]


def run_agent(
    cfg: AgentConfig,
    *,
    config_path: Path | None = None,
    source_override: str | None = None,
    duration_s: float | None = None,
    print_events: bool = False,
    signals: Signals | None = None,
) -> int:
    """Run the agent in this (main) thread until a stop signal, --duration, or every camera has ended.

    `signals`: handlers the CLI installed before its slow imports; without them they are installed here.
    SIGHUP reloads the config (as `cmd/reload` does); SIGTERM, SIGINT, SIGQUIT, SIGUSR1/2 ... stop cleanly.
    """
    own = signals is None
    handlers = Signals().install() if signals is None else signals
    try:
        if handlers.stop.is_set():
            log.info("stopped during start-up (%s), before anything was started", ", ".join(handlers.received))
            return 0
        agent = Agent(
            cfg,
            config_path=config_path,
            source_override=source_override,
            print_events=print_events,
            duration_s=duration_s,
        )
        agent.reload_requested = handlers.reload
        return agent.run(handlers.stop)
    finally:
        if own:
            handlers.restore()
