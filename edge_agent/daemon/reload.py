"""`cmd/reload` planning: which changed keys apply live, and the running config with only those taken over.

Pure functions; the agent (daemon/agent.py, `Agent.reload` and `Agent.apply_config`) applies the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.config import AgentConfig

# Dotted key prefixes that are applied without a restart; everything else is reported as restart_required.
LIVE_PREFIXES = (
    "agent.stats_interval_s",
    "agent.log_level",
    "agent.watchdog_stall_s",
    "attributes.",
    "tracking.",
    "analytics.",
)
RESTART_IN_LIVE = ("attributes.model", "attributes.num_threads")


def changed_paths(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted paths whose values differ between two model_dump()s (lists compared whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(changed_paths(old.get(key), new.get(key), path))
        return out
    return [] if old == new else [prefix]


def is_live(path: str) -> bool:
    if any(path == p or path.startswith(p + ".") for p in RESTART_IN_LIVE):
        return False
    return any(path == p or path.startswith(p) for p in LIVE_PREFIXES)


def merge_live(old: AgentConfig, new: AgentConfig) -> AgentConfig:
    """The running config with only the live-applicable parts taken from `new`."""
    agent = old.agent.model_copy(
        update={k: getattr(new.agent, k) for k in ("stats_interval_s", "log_level", "watchdog_stall_s")}
    )
    attributes = new.attributes.model_copy(
        update={"model": old.attributes.model, "num_threads": old.attributes.num_threads}
    )
    return old.model_copy(
        update={"agent": agent, "attributes": attributes, "tracking": new.tracking, "analytics": new.analytics}
    )


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a reload does: the dotted keys applied live, those that need a restart, and the config to run."""

    live: tuple[str, ...]
    restart: tuple[str, ...]
    config: AgentConfig


def plan(old: AgentConfig, new: AgentConfig) -> ReloadPlan:
    """Compare the running config with a freshly loaded one."""
    changed = changed_paths(old.model_dump(mode="json"), new.model_dump(mode="json"))
    live = tuple(p for p in changed if is_live(p))
    restart = tuple(p for p in changed if not is_live(p))
    return ReloadPlan(live, restart, merge_live(old, new) if live else old)


def pipeline_changed(live: tuple[str, ...]) -> bool:
    """The classifier or analytics must be rebuilt (attributes, tracking or analytics keys changed)."""
    return any(p.split(".")[0] in ("attributes", "tracking", "analytics") for p in live)
