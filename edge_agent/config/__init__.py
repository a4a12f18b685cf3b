"""edge_agent.config stage."""
