"""The daemon behind `edge-agent run`: composition root, per-camera processing, stats, logging setup."""
