"""Opt-in integrations: Home Assistant MQTT discovery and a Prometheus endpoint, hooked into the daemon once.

`start(cfg, device_id, publisher, timings)` builds what the config enables and returns `Integrations`, whose
`tap(publisher)` is the publisher the daemon's sink should use (it sees every message the agent submits) and
whose `close()` stops everything. With nothing enabled it does nothing and imports nothing heavy.
"""
