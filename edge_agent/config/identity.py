"""Device id (hashed machine-id or hostname) and the config hash reported in `info`."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from pathlib import Path

from pydantic import BaseModel

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def default_device_id(machine_id_files: tuple[Path, ...] = MACHINE_ID_FILES) -> str:
    """`ea-` + 12 hex of sha256 of the machine id (never the raw id, which is a stable secret), else the hostname."""
    for path in machine_id_files:
        try:
            mid = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if mid:
            return "ea-" + hashlib.sha256(f"edge-agent:{mid}".encode()).hexdigest()[:12]
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:64]
    return host or "edge-agent"


def config_hash(cfg: BaseModel) -> str:
    """sha256 of the normalised config (defaults filled, keys sorted); secrets are never part of the model."""
    data = cfg.model_dump(mode="json")
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
