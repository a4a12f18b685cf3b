"""edge_agent.classify stage."""
