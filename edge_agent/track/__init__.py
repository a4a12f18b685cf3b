"""edge_agent.track stage."""
