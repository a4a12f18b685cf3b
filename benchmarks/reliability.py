"""Reliability benchmark: broker outages, a kill -9, a full disk and an outbox reset, against a real mosquitto.

Scenarios: `outage` (broker stopped cleanly, then started), `broker_kill9` (broker frozen with SIGSTOP so
messages are in flight unacknowledged, then SIGKILLed and started again), `kill9` (the publisher process is
SIGKILLed and restarted), `disk_full` (the state dir tmpfs filled during an outage, then freed), `reset`
(the outbox database deleted between two runs, its `.seq` sidecar kept).

    python -m benchmarks.reliability [--scenario all|outage|broker_kill9|kill9|disk_full|reset] [--phase-s 8]

A writer process (benchmarks/reliability_writer.py) publishes to three topics; a persistent-session subscriber
records everything under the device. Per scenario one JSON line: messages accepted (committed to the outbox),
delivered (seen by the subscriber), dropped (reported in stats.publish.dropped_seq), lost (accepted, neither
delivered nor reported), out_of_order (a topic's first arrivals not increasing in (epoch, seq)), gaps (numbers
of an epoch neither delivered nor reported), refused (not accepted: full disk), duplicates. The disk-full
scenario needs root (a 4 MiB tmpfs); without it, it is reported as skipped. Exit 1 if anything was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.broker import Broker, Collector, _find_mosquitto, _mosquitto_conf, free_port

REPO = Path(__file__).resolve().parents[1]
DEVICE = "rel-dev"
SCENARIOS = ("outage", "broker_kill9", "kill9", "disk_full", "reset")


@dataclass
class Run:
    """What one scenario saw: writer lines and final stats, and the subscriber's messages."""

    accepted: dict[str, str] = field(default_factory=dict)  # msg_id -> topic suffix
    refused: int = 0
    stats: list[dict[str, Any]] = field(default_factory=list)  # each writer's final stats.publish
    wills: int = 0  # Last Will messages seen
    numbered_status: int = 0  # status messages that carried a seq (the contract says none may)
    status_before_stop: str = ""  # the device's last status state just before the final clean stop


@dataclass(frozen=True)
class Figures:
    """The printed result of one scenario."""

    scenario: str
    accepted: int
    delivered: int
    dropped: int
    lost: int
    out_of_order: int
    gaps: int
    refused: int
    duplicates: int
    epochs: int
    last_wills: int
    numbered_status: int
    status_before_stop: str
    seconds: float


class Writer:
    """One writer subprocess and the lines it printed."""

    def __init__(self, broker: Broker, state: Path, rate: float, run: Run, **kw: int) -> None:
        extra = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
        cmd = [sys.executable, "-m", "benchmarks.reliability_writer", f"--port={broker.port}", f"--state={state}"]
        self.proc = subprocess.Popen(
            [*cmd, f"--rate={rate}", *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.run = run
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        if first != "READY":
            raise RuntimeError(f"writer did not start: {first} {self.proc.stderr.read() if self.proc.stderr else ''}")
        # read while it runs: a full pipe (64 KiB, ~1200 lines) would block the writer in print()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._collect(line)

    def _collect(self, out: str) -> None:
        for line in out.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "A":
                msg_id, _, topic = rest.partition(" ")
                self.run.accepted[msg_id] = topic
            elif kind == "R":
                self.run.refused += 1
            elif kind == "S":
                self.run.stats.append(json.loads(rest))

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Send `sig`, collect everything printed; returns stderr."""
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self._reader.join(10)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return err


def _broker(workdir: Path) -> Broker:
    workdir.mkdir(parents=True, exist_ok=True)
    b = Broker(workdir=workdir, port=free_port(), kind="mosquitto", conf=workdir / "broker.conf")
    # autosave every second: a broker killed with SIGKILL keeps the subscriber's session and queue
    extra = "log_type error\nautosave_interval 1"
    b.conf.write_text(_mosquitto_conf(b, persistence=True, listener="allow_anonymous true", extra=extra))
    b.start()
    return b


def analyse(name: str, run: Run, sub: Collector, seconds: float) -> Figures:
    """Count delivered, dropped, lost, out of order and gaps from what the subscriber saw and the writers said."""
    docs, seen, dups = [], set(), 0
    for m in list(sub.messages):
        doc = m.json()
        if doc.get("schema") == "edge-agent/status/1":  # online, offline, the Last Will: outside the sequence
            run.wills += doc.get("reason") == "connection_lost"
            run.numbered_status += doc.get("seq") is not None
            continue
        if doc["msg_id"] in seen:
            dups += 1
            continue
        seen.add(doc["msg_id"])
        docs.append(doc)
    dropped: dict[int, set[int]] = {}
    for st in run.stats:  # the last stats of each epoch holds every number it dropped
        nums = {n for a, b in st["dropped_seq"]["ranges"] for n in range(a, b + 1)}
        dropped.setdefault(st["epoch"], set()).update(nums)
    last: dict[str, tuple[int, int]] = {}
    out_of_order = 0
    for doc in docs:
        key = (doc["epoch"], doc["seq"])
        topic = doc.get("_topic", "")
        prev = last.get(topic)
        out_of_order += prev is not None and key < prev
        last[topic] = key if prev is None or key > prev else prev
    gaps = 0
    for st in run.stats:
        got = {d["seq"] for d in docs if d["epoch"] == st["epoch"]}
        expected = set(range(st["first_seq"], st["last_seq"] + 1))
        gaps += len(expected - got - dropped.get(st["epoch"], set()))
    lost = len(set(run.accepted) - seen) - sum(len(v) for v in dropped.values())
    return Figures(
        name,
        accepted=len(run.accepted),
        delivered=len(set(run.accepted) & seen),
        dropped=sum(len(v) for v in dropped.values()),
        lost=max(0, lost),
        out_of_order=out_of_order,
        gaps=gaps,
        refused=run.refused,
        duplicates=dups,
        epochs=len({d["epoch"] for d in docs}),
        last_wills=run.wills,
        numbered_status=run.numbered_status,
        status_before_stop=run.status_before_stop,
        seconds=round(seconds, 1),
    )


class TopicCollector(Collector):
    """A Collector that remembers each message's topic inside the parsed JSON (for the per-topic order check)."""

    def _on_message(self, client, userdata, msg):  # type: ignore[no-untyped-def]
        doc = json.loads(msg.payload)
        if isinstance(doc, dict):
            doc["_topic"] = msg.topic
            msg.payload = json.dumps(doc).encode()
        super()._on_message(client, userdata, msg)  # type: ignore[no-untyped-call]


def _drain(sub: Collector, run: Run, timeout: float) -> None:
    sub.wait_for(lambda m: set(run.accepted) <= {x.json()["msg_id"] for x in m}, timeout)


def scenario(name: str, tmp: Path, phase_s: float, rate: float) -> Figures | None:
    """Run one scenario end to end and return its figures (None when it cannot run here)."""
    broker = _broker(tmp / f"broker-{name}")
    sub = TopicCollector(broker, f"edge-agent/{DEVICE}/#", persistent=True)
    state, run, t0 = tmp / f"state-{name}", Run(), time.monotonic()
    mount = None
    try:
        if name == "disk_full":
            mount = _tmpfs(tmp / "tmpfs", "4m")
            if mount is None:
                return None
            state = mount / "state"
        writer = Writer(broker, state, rate, run, min_free_bytes=64 * 1024)
        time.sleep(phase_s)
        writer = _disrupt(name, writer, broker, state, rate, run, phase_s)
        if name == "kill9":  # the broker notices the dead connection 1.5 keepalives later: wait for its will
            sub.wait_for(lambda m: any(b"connection_lost" in x.payload for x in m), 20)
            time.sleep(1.0)
        time.sleep(phase_s)
        states = [x.json() for x in sub.on("status")]
        run.status_before_stop = states[-1]["state"] if states else "none"
        writer.stop()
        _drain(sub, run, 30)
        return analyse(name, run, sub, time.monotonic() - t0)
    finally:
        sub.client.loop_stop()
        broker.stop()
        if mount is not None:
            subprocess.run(["umount", str(mount)], check=False)


def _disrupt(name: str, writer: Writer, broker: Broker, state: Path, rate: float, run: Run, phase_s: float) -> Writer:
    """The fault in the middle of a scenario; returns the writer that runs afterwards."""
    if name == "outage":
        broker.stop()
        time.sleep(phase_s)
        broker.start()
    elif name == "broker_kill9":  # frozen, so messages are in flight unacknowledged, then killed outright
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        broker.proc.send_signal(signal.SIGKILL)
        broker.proc.wait(5)
        broker.proc = None
        time.sleep(1.0)
        broker.start()
    elif name == "kill9":
        writer.stop(signal.SIGKILL)
        writer = Writer(broker, state, rate, run, min_free_bytes=64 * 1024)
    elif name == "reset":
        time.sleep(1.0)
        writer.stop()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{state}/outbox.sqlite3{suffix}").unlink(missing_ok=True)
        writer = Writer(broker, state, rate, run, min_free_bytes=64 * 1024)
    elif name == "disk_full":
        broker.stop()
        filler = state.parent / "filler"
        _fill(filler)
        time.sleep(phase_s)
        filler.unlink()
        time.sleep(phase_s / 2)
        broker.start()
    return writer


def _fill(path: Path) -> None:
    """Write until the file system says it is full (down to the last block)."""
    with open(path, "wb", buffering=0) as fh:
        for chunk in (1 << 16, 1 << 12, 1 << 9):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError:
                continue


def _tmpfs(where: Path, size: str) -> Path | None:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return None
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)]
    res = subprocess.run(cmd, check=False, capture_output=True)
    return where if res.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--scenario", default="all", choices=["all", "outage", "broker_kill9", "kill9", "disk_full", "reset"]
    )
    ap.add_argument("--phase-s", type=float, default=8.0, help="Length of each phase (before, fault, after).")
    ap.add_argument("--rate", type=float, default=60.0, help="Messages per second the writer submits.")
    args = ap.parse_args(argv)
    if _find_mosquitto() is None:
        print("reliability: mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    bad = False
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        for name in names:
            figures = scenario(name, Path(tmp), args.phase_s, args.rate)
            if figures is None:
                print(json.dumps({"scenario": name, "skipped": "needs root for a tmpfs"}), flush=True)
                continue
            bad |= figures.lost > 0 or figures.out_of_order > 0 or figures.gaps > 0
            print(json.dumps(asdict(figures)), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
