"""edge_agent.publish stage: envelope, SQLite outbox, MQTT publisher (paho 2.x, v5, TLS/auth), schemas, tail.

Modules: `config` (MqttConfig, TlsConfig, OutboxConfig), `envelope`, `outbox` (Outbox), `mqtt` (Publisher),
`auth` (credentials, TLS context), `transport` (paho client construction), `schemas` (validation, dev extra),
`tail` (the `edge-agent tail` printer). Import the one you need; this package stays light for config loading.
"""
