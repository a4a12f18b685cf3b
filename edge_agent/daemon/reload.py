"""`cmd/reload`: re-read the config file, apply what can change live, and report what needs a restart."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig, config_hash, load_config
from edge_agent.daemon import builders, messages
from edge_agent.daemon.logsetup import set_level

log = logging.getLogger(__name__)

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


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
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


class ReloadMixin:
    """Adds reload() to the Agent; runs in the pipeline thread between frames, so nothing races with it."""

    cfg: AgentConfig
    config_path: Path | None
    source_override: str | None
    runners: list[Any]
    classifier: Any
    meta: Any
    sink: Any

    def reload(self) -> dict[str, Any]:
        if self.config_path is None:
            raise ValueError("the agent was started without --config: there is no file to reload")
        new = load_config(self.config_path)  # ConfigError (a ValueError) → error result, agent keeps running
        if self.source_override:
            from edge_agent.daemon.overrides import with_source

            new = with_source(new, self.source_override)
        changed = changed_paths(self.cfg.model_dump(mode="json"), new.model_dump(mode="json"))
        live = [p for p in changed if is_live(p)]
        restart = [p for p in changed if not is_live(p)]
        if live:
            self._apply(merge_live(self.cfg, new), live)
        log.info("config reloaded: %d change(s) applied, %d need a restart", len(live), len(restart))
        return {"applied": live, "restart_required": restart, "config_hash": config_hash(self.cfg)}

    def _apply(self, applied: AgentConfig, live: list[str]) -> None:
        old = self.cfg
        if applied.agent.log_level != old.agent.log_level:
            set_level(applied.agent.log_level)
        pipeline_changed = any(p.split(".")[0] in ("attributes", "tracking", "analytics") for p in live)
        if pipeline_changed:
            for runner in self.runners:
                runner.flush("reload")
            heads = builders.enabled_heads(applied)
            if heads != builders.enabled_heads(old):
                if self.classifier is not None and heads:
                    self.classifier.set_enabled(heads)  # same interpreter, other output heads read
                else:
                    new_classifier, self.meta = builders.classifier(applied)
                    if self.classifier is not None:
                        self.classifier.close()
                    self.classifier = new_classifier
            for runner in self.runners:
                runner.classifier = self.classifier
                runner.analytics = builders.camera_analytics(applied, runner.camera_id, self.meta)
        self.cfg = applied
        self.sink.send(messages.info(self))  # type: ignore[arg-type]
