"""Logging configured once, by the CLI: timestamps on a terminal, journal priority prefixes under systemd."""

from __future__ import annotations

import logging
import sys

from edge_agent.systemd import under_systemd

# sd-daemon(3) priority prefixes: journald reads "<N>" at the start of a stderr line as the syslog level.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        return f"<{prio}>{super().format(record)}"


def setup_logging(level: str = "info", systemd: bool | None = None) -> None:
    """Configure the root logger to stderr; under systemd without timestamps (the journal adds them)."""
    systemd = under_systemd() if systemd is None else systemd
    handler = logging.StreamHandler(sys.stderr)
    if systemd:
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in ("paho", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def set_level(level: str) -> None:
    """Change the level at run time (config reload)."""
    logging.getLogger().setLevel(getattr(logging, level.upper(), logging.INFO))
