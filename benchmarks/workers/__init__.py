"""Measurement workers, each run as its own process (and, for peers, in its own venv), speaking JSON on stdio."""
