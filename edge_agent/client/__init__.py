"""edge_agent.client: a typed subscriber library for the agent's MQTT messages (paho and the schemas only).

    from edge_agent.client import AgentClient, ClientConfig, Summary
    client = AgentClient(ClientConfig(client_id="ads-player-1", host="broker"))
    client.on(Summary, lambda d: print(d.record.meta.device_id, d.record.viewers))
    client.on("loss", print)
    client.start()

What it guarantees (details in docs/client.md): each message reaches the callbacks at most once per client
process (de-duplicated by msg_id) and, per device, in seq order (a message that arrives more than `hold_s`
late is still handed on, flagged `late`); a message is acknowledged to the broker only after the callbacks saw
it, so with the persistent session a consumer restart loses nothing. Gaps in a device's seq are reported:
"dropped" when the device itself says it dropped them, "loss" when it did not. Importing this package loads
neither OpenCV, nor LiteRT, nor numpy; install with `pip install 'edge-agent[client]'`.
"""

from edge_agent.client.core import Consumer, Delivery, DeviceState, EpochChange, Invalid
from edge_agent.client.mqtt import AgentClient, ClientConfig, ClientError
from edge_agent.client.records import (
    Audience,
    CameraStatus,
    CommandResult,
    Info,
    Meta,
    ParseError,
    Record,
    Stats,
    Status,
    Summary,
    TrackEvent,
    parse,
)
from edge_agent.client.sequence import SeqRange

__all__ = [
    "AgentClient",
    "Audience",
    "CameraStatus",
    "ClientConfig",
    "ClientError",
    "CommandResult",
    "Consumer",
    "Delivery",
    "DeviceState",
    "EpochChange",
    "Info",
    "Invalid",
    "Meta",
    "ParseError",
    "Record",
    "SeqRange",
    "Stats",
    "Status",
    "Summary",
    "TrackEvent",
    "parse",
]
