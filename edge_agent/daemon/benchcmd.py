"""`edge-agent bench`: runs edge_agent.bench.run_bench (the benchmarks engineer's library) and formats the figures."""

from __future__ import annotations

import json
from collections.abc import Sequence

from edge_agent.config import AgentConfig


def run_bench_command(cfg: AgentConfig, *, frames: int, faces: Sequence[int], threads: int, as_json: bool) -> str:
    """The printed report (or JSON) of one benchmark run; figures are reported, never asserted."""
    from edge_agent.bench import format_bench, run_bench

    result = run_bench(cfg, frames=frames, faces=tuple(faces), threads=threads)
    return json.dumps(result, indent=2, default=str) if as_json else format_bench(result)
