"""Switch the content on a screen when the live audience's dominant group changes (edge_agent.client example).

    python examples/switch_content.py --host broker --device sign-lobby-1

The agent sends `cameras/<id>/audience` on change: who is present, who is looking, and per attribute head the
most frequent label among the lookers (`dominant`). This player picks a clip for that group, and switches only
once a group has held for `--settle` seconds, so one passer-by glancing over does not make the screen flicker.
When the device goes offline (its Last Will), it falls back to the default clip. It prints one JSON line per
switch; replace `play()` with your player's API.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Mapping

from edge_agent.client import AgentClient, Audience, ClientConfig, Delivery, DeviceState

DEFAULT = "house-brand-loop.mp4"
# (head, label) → clip; the first rule that matches the dominant group wins. Labels come from the model card.
RULES: tuple[tuple[str, str, str], ...] = (
    ("age", "20-29", "festival-tickets.mp4"),
    ("age", "60-69", "river-cruises.mp4"),
    ("gender", "female", "spring-collection-w.mp4"),
    ("gender", "male", "spring-collection-m.mp4"),
)


def choose(dominant: Mapping[str, str] | None) -> str:
    """The clip for a dominant group (None: nobody is looking)."""
    for head, label, clip in RULES:
        if dominant and dominant.get(head) == label:
            return clip
    return DEFAULT


class Switcher:
    """Per camera: the clip on screen, and the candidate waiting to settle."""

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self.playing: dict[str, str] = {}
        self._candidate: dict[str, tuple[str, float, Mapping[str, str] | None]] = {}
        self._lock = threading.Lock()

    def on_audience(self, delivery: Delivery) -> None:
        record = delivery.record
        if not isinstance(record, Audience) or delivery.late or record.meta.buffered:
            return  # an old snapshot says nothing about who stands there now
        camera = record.meta.camera_id or "?"
        clip = choose(record.dominant)
        with self._lock:
            if clip == self.playing.get(camera):
                self._candidate.pop(camera, None)
                return
            since = self._candidate.get(camera, (None, time.monotonic(), None))
            if since[0] != clip:
                self._candidate[camera] = (clip, time.monotonic(), record.dominant)
        self.tick()

    def tick(self) -> None:
        """Switch cameras whose candidate clip has held long enough (also called on a timer)."""
        now = time.monotonic()
        with self._lock:
            ready = [(cam, c) for cam, c in self._candidate.items() if now - c[1] >= self.settle_s]
            for cam, (clip, _, dominant) in ready:
                del self._candidate[cam]
                self.playing[cam] = clip
                play(cam, clip, dict(dominant or {}))

    def on_device(self, state: DeviceState) -> None:
        if not state.online:
            with self._lock:
                for cam in list(self.playing):
                    if self.playing[cam] != DEFAULT:
                        self.playing[cam] = DEFAULT
                        play(cam, DEFAULT, {"device": "offline"})


def play(camera: str, clip: str, because: dict[str, str]) -> None:
    print(json.dumps({"camera": camera, "play": clip, "because": because}), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--device", required=True, help="the sign's device id")
    ap.add_argument("--client-id", default=None, help="fixed id for a persistent session (default: per device)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds a new group must hold before switching")
    ap.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = ap.parse_args(argv)
    switcher = Switcher(args.settle)
    cfg = ClientConfig(client_id=args.client_id or f"player-{args.device}", host=args.host, port=args.port,
                       devices=(args.device,), session_expiry_s=60)  # fmt: skip
    client = AgentClient(cfg).on(Audience, switcher.on_audience).on("device", switcher.on_device)
    client.start()
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            switcher.tick()
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
