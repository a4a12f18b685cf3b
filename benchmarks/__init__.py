"""Benchmarks of edge-agent against peers: `python -m benchmarks all --data DIR` writes BENCHMARKS.md and plots."""
