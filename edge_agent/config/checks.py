"""`check-config`'s environment checks: is every path usable the way `run` will use it? One line per problem.

Why here and not only at start-up: `run` finds these one at a time and exits at the first, after loading
models; an installer wants the whole list at once, before the service starts. The rules mirror what `run` does:
the state directory is created (mode 0700) if missing and must be a writable directory with at least
`outbox.min_free_bytes` free; an existing outbox file must be a readable, writable regular file; model files,
TLS files and file/folder camera sources must exist and be readable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from edge_agent.config.agent import default_state_dir
from edge_agent.config.model import AgentConfig


def state_dir_of(cfg: AgentConfig) -> Path:
    """The state directory `run` uses: agent.state_dir, else $STATE_DIRECTORY or the XDG state directory."""
    return Path(cfg.agent.state_dir).expanduser() if cfg.agent.state_dir else default_state_dir()


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _state_dir_problems(cfg: AgentConfig) -> Iterator[str]:
    sdir = state_dir_of(cfg)
    key = f"agent.state_dir = '{sdir}'"
    if sdir.exists() and not sdir.is_dir():
        yield f"{key}: is not a directory; point it at a directory (run creates it if missing)"
        return
    where = sdir if sdir.exists() else _nearest_existing(sdir)
    if not where.is_dir():
        yield f"{key}: cannot be created, '{where}' is not a directory"
        return
    if not os.access(where, os.W_OK | os.X_OK):
        verb = "is not writable" if where == sdir else f"cannot be created ('{where}' is not writable)"
        yield f"{key}: {verb} by this user; fix the permissions or choose another directory"
        return
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    if free < cfg.outbox.min_free_bytes:
        yield (
            f"{key}: only {free / 1e6:.2f} MB free, less than outbox.min_free_bytes = {cfg.outbox.min_free_bytes}; "
            "free some space"
        )
    outbox = sdir / cfg.outbox.file_name
    if outbox.exists() and (not outbox.is_file() or not os.access(outbox, os.R_OK | os.W_OK)):
        yield f"outbox file '{outbox}': is not a readable and writable file; fix its permissions"


def _file_problems(key: str, path: Path | None, what: str, *, folder: bool = False) -> Iterator[str]:
    if path is None:
        return
    path = Path(path).expanduser()
    if not path.exists():
        yield f"{key} = '{path}': {what} does not exist"
    elif folder and not path.is_dir():
        yield f"{key} = '{path}': is not a folder"
    elif not folder and not path.is_file():
        yield f"{key} = '{path}': is not a file"
    elif not os.access(path, os.R_OK | (os.X_OK if folder else 0)):
        yield f"{key} = '{path}': is not readable by this user"


def path_problems(cfg: AgentConfig) -> list[str]:
    """Every path in `cfg` that `run` could not use, one line each (empty when all is well)."""
    out = list(_state_dir_problems(cfg))
    out += _file_problems("attributes.model", cfg.attributes.model, "the attribute model")
    out += _file_problems("detector.model_path", cfg.detector.model_path, "the detector model")
    tls = cfg.mqtt.tls
    if tls.enabled:
        out += _file_problems("mqtt.tls.ca_file", tls.ca_file, "the CA file")
        out += _file_problems("mqtt.tls.cert_file", tls.cert_file, "the client certificate")
        out += _file_problems("mqtt.tls.key_file", tls.key_file, "the client key")
    for i, cam in enumerate(cfg.cameras):
        source = cam.source
        if not cam.enabled or source.type not in ("file", "folder"):
            continue
        out += _file_problems(
            f"cameras[{i}].source.path",
            getattr(source, "path", None),
            f"the {source.type}",
            folder=source.type == "folder",
        )
    return out
