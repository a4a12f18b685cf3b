"""Composition root entry point: `run_agent(cfg)` installs signal handlers that only set the stop event."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from edge_agent.config import AgentConfig
from edge_agent.daemon.agent import Agent

log = logging.getLogger(__name__)

__all__ = ["Agent", "run_agent"]


def run_agent(
    cfg: AgentConfig,
    *,
    config_path: Path | None = None,
    source_override: str | None = None,
    duration_s: float | None = None,
    print_events: bool = False,
) -> int:
    """Run the agent in this (main) thread until SIGTERM/SIGINT, --duration, or every camera has ended."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("%s received; stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        agent = Agent(
            cfg,
            config_path=config_path,
            source_override=source_override,
            print_events=print_events,
            duration_s=duration_s,
        )
        return agent.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
