"""Live audience (`cameras/<camera_id>/audience`): who is present, who is looking, the dominant group of lookers.

Sent only when something a display would act on changes (who is present, who is looking, a provisional label,
the dominant group) -- growing dwell/attention counters alone are not a change -- and at most `max_rate_hz`.
A change held back by the rate limit is sent by the first frame after the limit allows it, so with 4 Hz a
display hears of a new looker within ~0.25 s plus the attention smoothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from edge_agent.analytics.config import AudienceConfig
from edge_agent.timefmt import iso_ts
from edge_agent.track.events import UNKNOWN, TrackView
from edge_agent.track.payloads import head_payload

SCHEMA_AUDIENCE = "edge-agent/audience/1"


def dominant(lookers: Sequence[TrackView]) -> dict[str, str] | None:
    """Per head, the most frequent known label among looking non-minors (ties: higher summed p, then name)."""
    adults = [v for v in lookers if not v.attributes.minor]
    if not adults:
        return None
    out: dict[str, str] = {}
    heads = {h for v in adults for h in v.attributes.heads()}
    for head in sorted(heads):
        count: Counter[str] = Counter()
        weight: dict[str, float] = {}
        for v in adults:
            est = v.attributes.heads().get(head)
            if est is not None and est.label != UNKNOWN:
                count[est.label] += 1
                weight[est.label] = weight.get(est.label, 0.0) + (est.p or 0.0)
        if count:
            out[head] = max(count, key=lambda lab: (count[lab], weight[lab], lab))
    return out


def _person(v: TrackView) -> dict[str, Any]:
    out: dict[str, Any] = {
        "track_id": v.track_id,
        "looking": v.looking,
        "dwell_s": round(v.dwell_s, 2),
        "attention_s": round(v.attention_s, 2),
    }
    attrs = v.attributes
    if attrs.minor is not None:
        out["minor"] = attrs.minor
    if not attrs.minor:
        heads = {name: head_payload(est, with_probs=False) for name, est in attrs.heads().items()}
        if heads:
            out["attributes"] = heads
    return out


def _signature(views: Sequence[TrackView]) -> tuple[Any, ...]:
    return tuple(
        (v.track_id, v.looking, v.attributes.minor, tuple((h, e.label) for h, e in v.attributes.heads().items()))
        for v in views
    )


class AudienceMonitor:
    """Rate-limited, change-only live audience payloads."""

    def __init__(self, cfg: AudienceConfig) -> None:
        self._cfg = cfg
        self._min_interval = 1.0 / cfg.max_rate_hz
        self._last_sig: tuple[Any, ...] | None = None
        self._last_sent: float | None = None
        self._last_check: float | None = None
        self._held = False  # update() saw a change while rate-limited, and it has not gone out or reverted
        self._gated = False  # due() skipped frames while rate-limited, unseen, since the last look
        # Changes held back by the rate limit, once each: a change update() sees while limited (however many frames
        # it then waits), or one first seen right after frames due() skipped unseen (it may have arisen during them).
        self.suppressed = 0

    def due(self, t: float) -> bool:
        """Whether the caller should build the views and call update() at `t`.

        Not while rate-limited (nothing could be sent), and otherwise at most twice per rate interval: checking
        for a change is the costliest per-frame step, and this adds at most half an interval of latency.
        """
        if self._last_check is not None and t - self._last_check < self._min_interval / 2:
            return False
        if self._last_sent is None or t - self._last_sent >= self._min_interval:
            return True
        self._gated = True
        return False

    def update(
        self, present: Sequence[TrackView], ts: float, mono: float | None = None, force: bool = False
    ) -> dict[str, Any] | None:
        """Payload to publish now, or None (unchanged, or rate-limited until a later frame; `force` skips the limit)."""
        t = ts if mono is None else mono
        self._last_check = t
        sig = _signature(present)
        changed = sig != self._last_sig
        since = None if self._last_sent is None else t - self._last_sent
        heartbeat = self._cfg.heartbeat_s > 0 and since is not None and since >= self._cfg.heartbeat_s
        gated, self._gated = self._gated, False
        if not changed and not heartbeat:
            self._held = False  # nothing is waiting (a held-back change that reverted is no change)
            return None
        if not force and since is not None and since < self._min_interval:
            if changed and not self._held:
                self.suppressed += 1
            self._held = self._held or changed
            return None
        if changed and gated and not self._held and not force:
            self.suppressed += 1
        self._last_sig, self._last_sent, self._held = sig, t, False
        return self.payload(present, ts)

    @staticmethod
    def payload(present: Sequence[TrackView], ts: float) -> dict[str, Any]:
        lookers = [v for v in present if v.looking]
        return {
            "t": iso_ts(ts),
            "count": len(present),
            "looking_count": len(lookers),
            "minors": sum(1 for v in present if v.attributes.minor),
            "present": [_person(v) for v in present],
            "looking": [v.track_id for v in lookers],
            "dominant": dominant(lookers),
        }
