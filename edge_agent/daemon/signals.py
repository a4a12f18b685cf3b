"""Signal handling for `edge-agent run`: handlers only set events; installed before anything slow is imported.

Why so early: the interpreter's defaults kill the process outright on SIGTERM, SIGHUP, SIGUSR1 and friends, so
a signal during the first second of start-up (imports, models) used to leave a retained `online` and no
`shutdown` status. Here SIGHUP asks for a reload (like `cmd/reload`); every other signal that would end the
process asks for the same clean stop as SIGTERM. SIGXFSZ is ignored so that a file-size limit turns into a
write error the outbox handles, not a dead process.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
    signal.SIGVTALRM,
    signal.SIGPROF,
    signal.SIGXCPU,
)
RELOAD_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGHUP,)
IGNORED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGXFSZ,)


class Signals:
    """The events a running agent watches: `stop` (clean stop) and `reload` (re-read the config)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.received: list[str] = []
        self._previous: dict[int, Any] = {}

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signal.Signals(signum).name)
        if not self.stop.is_set():
            log.info("%s received; stopping", signal.Signals(signum).name)
        self.stop.set()

    def _on_reload(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signal.Signals(signum).name)
        log.info("%s received; reloading the configuration", signal.Signals(signum).name)
        self.reload.set()

    def install(self) -> Signals:
        """Install the handlers (main thread only); idempotent."""
        if self._previous:
            return self
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_stop)
        for sig in RELOAD_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_reload)
        for sig in IGNORED_SIGNALS:
            self._previous[sig] = signal.signal(sig, signal.SIG_IGN)
        return self

    def restore(self) -> None:
        """Put the previous handlers back (tests and library callers run more than one agent per process)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


_EARLY: list[Signals] = []  # at most one: the handlers `install_early` put in place


def install_early(argv: Sequence[str]) -> None:
    """Called first thing by the CLI: install the handlers at once if the command is `run` (options may come
    before or after it, so any `run` word counts; other commands keep the interpreter's defaults)."""
    if "run" in argv[1:] and not _EARLY and threading.current_thread() is threading.main_thread():
        _EARLY.append(Signals().install())


def current() -> Signals | None:
    """The handlers installed by `install_early`, if any (run_agent installs its own otherwise)."""
    return _EARLY[0] if _EARLY else None
