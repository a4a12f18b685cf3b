"""The one wall-clock formatter for payloads: UTC ISO-8601 with milliseconds and a `Z` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_ts(epoch_s: float) -> str:
    """Epoch seconds → e.g. "2026-01-31T12:00:00.123Z" (what every schema's timestamp pattern expects)."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
