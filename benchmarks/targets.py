"""The targets `edge-agent bench` figures are judged against, and the markdown report of one bench result.

These live with the benchmarks, not in the device package: `edge_agent.bench` only measures (and prints plain
figures); here the figures are checked against the targets (pass / miss / n/a, never an assertion) and rendered as
the tables of BENCHMARKS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


@dataclass(frozen=True, slots=True)
class Target:
    key: str  # path into the result dict, dotted
    label: str
    limit: float
    higher_is_better: bool = False

    def check(self, value: float | None) -> str:
        if value is None or math.isnan(value):
            return "n/a"
        ok = value >= self.limit if self.higher_is_better else value <= self.limit
        return "pass" if ok else "miss"


# Issue 3's targets; the median (p50) stands for "per frame" / "per face".
TARGETS: tuple[Target, ...] = (
    Target("stages.detect.p50", "detection, ms per frame (p50)", 1.5),
    Target("stages.classify_face.p50", "classification, ms per face (p50)", 1.5),
    Target("fps", "end-to-end frames per second", 250.0, higher_is_better=True),
    Target("peak_rss_mb", "peak resident memory, MB", 150.0),
    Target("paced.cpu_share_pct", "CPU at a 30 fps source with 1 face, % of one core", 15.0),
    Target("capture_to_publish.p95", "capture to publish latency p95, ms", 50.0),
)


def lookup(result: dict[str, Any], dotted: str) -> Any:
    cur: Any = result
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def check_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and pass / miss / n/a (never an assertion)."""
    return [
        {
            "target": t.label,
            "limit": f"{'>=' if t.higher_is_better else '<='} {t.limit:g}",
            "value": lookup(result, t.key),
            "verdict": t.check(lookup(result, t.key)),
        }
        for t in TARGETS
    ]


def format_bench(result: dict[str, Any]) -> str:
    """Human-readable figures for the terminal (and the markdown tables of BENCHMARKS.md)."""
    s = result["setup"]
    lines = [
        (
            f"edge-agent bench: {s['frames']} frames {s['frame_size']}, faces per frame {s['faces_per_frame']}, "
            f"{s['threads']} thread(s), detector {s['detector']}, {s['runtime']}"
        ),
        f"model {s['attribute_model']}",
        "",
        "| stage | p50 ms | p95 ms | samples |",
        "|---|---:|---:|---:|",
    ]
    for name, st in result["stages"].items():
        lines.append(f"| {name} | {_fmt(st['p50'])} | {_fmt(st['p95'])} | {st['n']} |")
    p = result["paced"]
    lines += [
        "",
        (
            f"end-to-end: {_fmt(result['fps'])} frames/s (decoding excluded); faces found {result['faces_found']} "
            f"of {result['faces_pasted']} pasted"
        ),
        (
            f"peak RSS: {_fmt(result['peak_rss_mb'])} MB (of which {_fmt(result.get('frames_mb'))} MB are the "
            "pre-built bench frames; the daemon holds a frame or two)"
        ),
        (
            f"CPU at a paced {p['fps']:g} fps source, 1 face: {_fmt(p['cpu_share_pct'])}% of one core "
            f"({p['frames']} frames, {p['late_frames']} late)"
        ),
        (
            f"capture → publish submit: p50 {_fmt(result['capture_to_publish']['p50'])} ms, "
            f"p95 {_fmt(result['capture_to_publish']['p95'])} ms ({result['capture_to_publish']['n']} messages)"
        ),
        "",
        "| target | limit | measured | verdict |",
        "|---|---|---:|---|",
    ]
    targets = result.get("targets") or check_targets(result)
    lines += [f"| {t['target']} | {t['limit']} | {_fmt(t['value'])} | {t['verdict']} |" for t in targets]
    return "\n".join(lines)
