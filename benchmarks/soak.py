"""Soak (issue 4): `edge-agent run` on a looping clip at the maximum frame rate; RSS, fds and threads over time.

The agent runs as a real subprocess with a generated config (file source, loop, realtime=false, no fps cap),
publishing to a mosquitto started on a free port when one is installed (else into its outbox only). Every
`interval` seconds /proc/<pid> is sampled. RSS growth compares the median of the first three samples after
warm-up with the median of the last three.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = REPO.parent / "shared" / "data" / "video" / "face.mp4"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: Path, clip: Path | None, port: int | None) -> Path:
    if clip is not None:
        source = f'type = "file"\npath = "{clip}"\nloop = true\nrealtime = false\n'
    else:  # no clip: the built-in synthetic demo at its highest rate
        source = 'type = "demo"\nfps = 1000\n'
    mqtt = f'[mqtt]\nhost = "127.0.0.1"\nport = {port if port else 9}\n'
    text = (
        f'[agent]\nstate_dir = "{tmp / "state"}"\nstats_interval_s = 10\nlog_level = "warning"\n\n'
        f'[[cameras]]\nid = "soak"\nmax_fps = 0\n\n[cameras.source]\n{source}\n{mqtt}'
    )
    path = tmp / "soak.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sample(pid: int) -> dict[str, float] | None:
    """RSS (MB), open fds and threads of a live process from /proc, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024.0, "fds": fds, "threads": int(fields["Threads"])}


def _broker(tmp: Path) -> tuple[subprocess.Popen[bytes] | None, int | None]:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        log.warning("mosquitto not found: the agent keeps its messages in the outbox during the soak")
        return None, None
    port = _free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n", encoding="utf-8")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def _frames_counter(port: int | None) -> tuple[Any, dict[str, int]]:
    """Subscribe to the agent's stats to count processed frames (best effort)."""
    seen = {"frames": 0}
    if port is None:
        return None, seen
    import paho.mqtt.client as mqtt

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        try:
            cams = json.loads(msg.payload).get("cameras", {})
            seen["frames"] = max(seen["frames"], sum(int(c.get("frames_processed", 0)) for c in cams.values()))
        except (ValueError, AttributeError, TypeError):
            pass

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("+/+/stats")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client, seen


def run_soak(
    minutes: float, clip: Path | None = DEFAULT_CLIP, interval_s: float = 5.0, warmup_s: float | None = None
) -> dict[str, Any]:
    clip = clip if clip is not None and clip.is_file() else None
    duration = minutes * 60.0
    warmup_s = min(60.0, 0.1 * duration) if warmup_s is None else warmup_s
    with tempfile.TemporaryDirectory(prefix="edge-agent-soak-") as tmp_s:
        tmp = Path(tmp_s)
        broker, port = _broker(tmp)
        cfg = _config(tmp, clip, port)
        cmd = [sys.executable, "-m", "edge_agent", "run", "--config", str(cfg)]
        agent = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client, seen = _frames_counter(port)
        samples: list[dict[str, float]] = []
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < duration:
                time.sleep(interval_s)
                s = sample(agent.pid)
                if s is None:
                    break
                samples.append({"t": time.monotonic() - t0, **s})
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                _, err = agent.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                agent.kill()
                _, err = agent.communicate()
            if client is not None:
                client.loop_stop()
            if broker is not None:
                broker.terminate()
                broker.wait(timeout=5)
    if len(samples) < 2:
        tail = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the agent stopped during the soak (exit {agent.returncode}): {tail}")
    return summarize(samples, minutes, warmup_s, seen["frames"], clip, " ".join(sys.argv) or "soak")


def summarize(
    samples: list[dict[str, float]], minutes: float, warmup_s: float, frames: int, clip: Path | None, command: str
) -> dict[str, Any]:
    after = [s for s in samples if s["t"] >= warmup_s] or samples
    first = float(np.median([s["rss_mb"] for s in after[:3]]))
    last = float(np.median([s["rss_mb"] for s in after[-3:]]))
    wall = samples[-1]["t"]
    return {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "minutes": round(wall / 60.0, 2),
        "requested_minutes": minutes,
        "clip": str(clip or "demo source"),
        "frames": frames,
        "fps": frames / wall if wall else 0.0,
        "warmup_s": warmup_s,
        "rss_first_mb": first,
        "rss_last_mb": last,
        "rss_growth_mb": last - first,
        "fds_first": int(after[0]["fds"]),
        "fds_last": int(after[-1]["fds"]),
        "fds_min": int(min(s["fds"] for s in after)),
        "fds_max": int(max(s["fds"] for s in after)),
        "threads_first": int(after[0]["threads"]),
        "threads_last": int(after[-1]["threads"]),
        "threads_min": int(min(s["threads"] for s in after)),
        "threads_max": int(max(s["threads"] for s in after)),
        "samples": samples,
    }


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in result["samples"]]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(t, [s["rss_mb"] for s in result["samples"]], label="RSS (MB)")
    ax2 = ax.twinx()
    ax2.plot(t, [s["fds"] for s in result["samples"]], color="tab:orange", label="open fds")
    ax2.plot(t, [s["threads"] for s in result["samples"]], color="tab:green", label="threads")
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MB)")
    ax2.set_ylabel("count")
    fig.legend(loc="lower right", fontsize=8)
    ax.set_title(f"soak: {result['minutes']:g} min on {Path(result['clip']).name}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
