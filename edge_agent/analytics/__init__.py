"""edge_agent.analytics stage."""
