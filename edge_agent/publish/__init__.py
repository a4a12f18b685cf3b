"""edge_agent.publish stage."""
