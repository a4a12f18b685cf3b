"""Say what actually happened when a network peer cannot be reached: DNS failure, refused, or timed out.

Libraries report "cannot open" or a bare errno; a person fixing a camera or a broker needs to know whether the
name does not resolve, nothing listens on the port, or packets vanish (firewall, wrong network). One TCP connect
with a deadline tells these apart without sending any protocol bytes.
"""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reachability:
    """The outcome of one TCP connect attempt: `kind` is ok, dns, refused, timeout or error; `text` one line."""

    kind: str
    text: str
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def probe_tcp(host: str, port: int, timeout_s: float = 5.0) -> Reachability:
    """Resolve `host` and try a TCP connect to `port` on each address until one answers or the deadline passes."""
    t0 = time.monotonic()

    def done(kind: str, text: str) -> Reachability:
        return Reachability(kind, text, time.monotonic() - t0)

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return done("dns", f"cannot resolve host {host!r} ({exc.strerror or exc})")
    last: Reachability | None = None
    for family, kind, proto, _name, addr in infos:
        remaining = timeout_s - (time.monotonic() - t0)
        if remaining <= 0:
            break
        sock = socket.socket(family, kind, proto)
        sock.settimeout(remaining)
        try:
            sock.connect(addr)
            return done("ok", f"{host}:{port} accepts connections")
        except TimeoutError:
            last = done("timeout", f"no answer from {host}:{port} within {timeout_s:g}s (firewall, or wrong address?)")
        except ConnectionRefusedError:
            last = done("refused", f"connection refused by {host}:{port} (nothing listens on that port)")
        except OSError as exc:
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
            last = done("error", f"cannot connect to {host}:{port}: {reason}")
        finally:
            sock.close()
    return last or done("timeout", f"no answer from {host}:{port} within {timeout_s:g}s")
