"""One-line bodies of tracks/audience/summary messages for `edge-agent tail` (call `register()` once)."""

from __future__ import annotations

from typing import Any


def _attrs(msg: dict[str, Any]) -> str:
    if msg.get("minor"):
        return "minor"
    parts = []
    for head, est in (msg.get("attributes") or {}).items():
        if isinstance(est, dict):
            p = est.get("p")
            parts.append(f"{head}={est.get('label')}" + (f"({p:.2f})" if isinstance(p, float | int) else ""))
        elif head == "age_years" and isinstance(est, float | int):
            parts.append(f"~{est:.0f}y")
    return " ".join(parts)


def tracks_body(msg: dict[str, Any]) -> str:
    """new/update/end of one visit, id shortened to 6 hex digits."""
    tid = str(msg.get("track_id", ""))[:6]
    event = msg.get("event")
    if event == "new":
        return f"new {tid} score={msg.get('score')}"
    looked = f"attention={msg.get('attention_s', 0):.1f}s glances={msg.get('glances', 0)}"
    if event == "update":
        now = "looking" if msg.get("looking") else "away"
        return f"update {tid} dwell={msg.get('dwell_s', 0):.1f}s {now} {looked} {_attrs(msg)}".rstrip()
    role = "viewer" if msg.get("viewer") else "passer-by"
    return f"end {tid} dwell={msg.get('dwell_s', 0):.1f}s {looked} {role} {_attrs(msg)}".rstrip()


def audience_body(msg: dict[str, Any]) -> str:
    """Who is present and looking, and the dominant group among lookers."""
    looking = ",".join(str(t)[:6] for t in msg.get("looking", []))
    dom = msg.get("dominant") or {}
    dominant = " dominant=" + "/".join(str(v) for v in dom.values()) if dom else ""
    return f"{msg.get('count', 0)} present, {msg.get('looking_count', 0)} looking [{looking}]{dominant}"


def summary_body(msg: dict[str, Any]) -> str:
    """The interval's headline numbers."""
    minors = msg.get("minors") or {}
    dwell = msg.get("dwell_s") or {}
    att = msg.get("attention_s") or {}
    partial = " (partial)" if msg.get("partial") else ""
    return (
        f"{str(msg.get('interval_start', ''))[11:19]}+{msg.get('interval_s', 0):.0f}s{partial} "
        f"OTS={msg.get('opportunities_to_see', 0)} viewers={msg.get('viewers', 0)} "
        f"passers-by={msg.get('passers_by', 0)} minors={sum(minors.values())} "
        f"dwell avg={dwell.get('average', 0):.1f}s attention total={att.get('total', 0):.1f}s"
    )


def register() -> None:
    """Install these bodies in the publish stage's tail printer."""
    from edge_agent.publish import tail

    tail.register_formatter("tracks", tracks_body)
    tail.register_formatter("audience", audience_body)
    tail.register_formatter("summary", summary_body)
