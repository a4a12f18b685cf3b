"""`python -m edge_agent` runs the CLI."""

from edge_agent.cli import main

main(prog_name="edge-agent")
