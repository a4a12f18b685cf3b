"""edge_agent.detect stage."""
