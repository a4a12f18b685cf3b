"""edge_agent.capture stage."""
