"""sd_notify without a dependency: one datagram to $NOTIFY_SOCKET (abstract-namespace aware), plus watchdog timing."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends READY=1 / WATCHDOG=1 / STOPPING=1 / STATUS=… to systemd; a no-op when not started by systemd."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        self._address = self._parse_address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        self.watchdog_interval_s = self._watchdog_interval(env)
        if self._address is not None:
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            except OSError as exc:
                log.warning("cannot create the systemd notify socket: %s", exc)

    @staticmethod
    def _parse_address(value: str) -> str | bytes | None:
        if not value:
            return None
        if value.startswith("@"):
            return b"\0" + value[1:].encode()  # abstract namespace: leading NUL instead of '@'
        if value.startswith("/"):
            return value
        log.warning("ignoring NOTIFY_SOCKET=%r: only AF_UNIX paths and @abstract names are supported", value)
        return None

    @staticmethod
    def _watchdog_interval(env: dict[str, str]) -> float | None:
        """Half of WATCHDOG_USEC (the usual advice), only if WATCHDOG_PID is unset or ours."""
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            value = int(usec)
        except ValueError:
            return None
        return value / 2e6 if value > 0 else None

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *fields: str) -> bool:
        """Send the given `KEY=value` lines as one datagram; False (logged once per call) if it could not be sent."""
        if self._sock is None or self._address is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
            return True
        except OSError as exc:
            log.warning("sd_notify %s failed: %s", fields[0] if fields else "", exc)
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def under_systemd(env: dict[str, str] | None = None) -> bool:
    """True when started by systemd (journal or a unit invocation), so logs should omit timestamps."""
    env = dict(os.environ) if env is None else env
    return bool(env.get("JOURNAL_STREAM") or env.get("INVOCATION_ID"))
