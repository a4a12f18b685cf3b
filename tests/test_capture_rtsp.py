"""RTSP against a real server: GStreamer's RTSP server on loopback, killed and restarted under a running daemon.

The server is Debian's gst-rtsp-server run by the system Python (`tests/fixtures/rtsp_server.py`); `.ci/run`
installs it. The agent runs as a subprocess with a real broker; the test watches the retained camera status go
online → stalled (server killed) → online (server back), and the analysed-frame count grow again after that.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.media import free_port
from tests.test_e2e import EXE, NO_ATTRIBUTES, Collector, agent_env, models_dir, start_agent, stop_agent  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = REPO / "tests" / "fixtures" / "rtsp_server.py"


def _rtsp_unavailable() -> str | None:
    """Why a GStreamer RTSP server cannot run here, or None."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} not found (the GStreamer bindings are Debian packages for the system Python)"
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import Gst, GstRtspServer;"
        "Gst.init(None); assert Gst.ElementFactory.find('x264enc'), 'x264enc'"
    )
    res = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        return (
            "GStreamer RTSP server not installed (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
            f"gstreamer1.0-plugins-ugly): {last}"
        )
    return None


class RtspServer:
    """The server subprocess; `kill()` is SIGKILL (a camera losing power), `start()` brings it back on its port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        # stderr goes to a file (GStreamer may warn at length; a full pipe would block the server)
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER), "--port", str(self.port)], stdout=subprocess.PIPE, stderr=err, text=True
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once the server listens; nothing is printed after it
        self.proc.stdout.close()
        if not line.startswith("rtsp://"):
            raise AssertionError(f"RTSP server did not start: {line!r} {self.log.read_text()[-500:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def rtsp_server(tmp_path: Path) -> Any:
    reason = _rtsp_unavailable()
    if reason:
        pytest.skip(reason)
    server = RtspServer(free_port(), tmp_path / "rtsp-server.log")
    server.start()
    yield server
    server.kill()


def _config(tmp_path: Path, broker: Any, url: str) -> tuple[Path, str]:
    device = f"rtsp-{uuid.uuid4().hex[:8]}"
    text = f"""
[agent]
device_id = "{device}"
state_dir = "{tmp_path / "state"}"
stats_interval_s = 1
[[cameras]]
id = "cam0"
max_fps = 10
[cameras.source]
type = "stream"
url = "{url}"
open_timeout_s = 3
read_timeout_s = 2
[cameras.watchdog]
stall_timeout_s = 2
backoff_min_s = 0.2
backoff_max_s = 1
[mqtt]
host = "{broker.host}"
port = {broker.port}
keepalive_s = 5
{NO_ATTRIBUTES}
"""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, device


def _processed(sub: Collector) -> int:
    frames = [d["cameras"]["cam0"].get("frames_processed", 0) for t, d in sub.docs() if t.endswith("/stats")]
    return max(frames, default=0)


@pytest.mark.slow
def test_rtsp_camera_goes_stalled_when_the_server_dies_and_online_with_frames_when_it_returns(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,  # noqa: F811
    rtsp_server: RtspServer,
) -> None:
    config, dev = _config(tmp_path, broker, rtsp_server.url)
    sub = Collector(broker.host, broker.port, f"edge-agent/{dev}/#")
    proc = start_agent(config, agent_env(models_dir))
    try:
        status = f"edge-agent/{dev}/cameras/cam0/status"
        sub.wait_for(lambda t, d: t == status and d.get("state") == "online", 30, "camera online")
        sub.wait_for(lambda t, d: t.endswith("/stats") and _processed(sub) >= 10, 20, "frames analysed")
        rtsp_server.kill()
        killed = time.time()
        stalled = sub.wait_for(lambda t, d: t == status and d.get("state") == "stalled", 20, "camera stalled")
        before = _processed(sub)
        rtsp_server.start()
        back = sub.wait_for(
            lambda t, d: t == status and d.get("state") == "online" and d["ts"] > stalled["ts"],
            40,
            "camera online again",
        )
        sub.wait_for(lambda t, d: t.endswith("/stats") and _processed(sub) >= before + 10, 30, "frames again")
    finally:
        code, _, err = stop_agent(proc)
        sub.close()
    assert code == 0, err[-3000:]
    assert stalled["reason"], stalled  # says why: no frame for N s, or the read failed
    assert "Traceback" not in err
    print(f"stalled {stalled['ts']} ({stalled['reason']}), online again {back['ts']}, killed at {killed:.1f}")


def test_annotate_writes_an_rtsp_stream_at_the_streams_own_frame_rate(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    rtsp_server: RtspServer,
) -> None:
    import cv2

    out = tmp_path / "stream.mp4"
    res = subprocess.run(
        [*EXE, "annotate", rtsp_server.url, "--out", str(out), "--max-frames", "20"],
        env=agent_env(models_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0, abs=0.01)  # the server's 15 fps, not a guess
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    cap.release()
