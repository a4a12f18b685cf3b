"""End to end: `edge-agent run` as a real subprocess, a real mosquitto, real models, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_agent.publish.schemas import validate

REPO = Path(__file__).resolve().parents[1]
ATTRIBUTE_MODEL = REPO / "edge_agent" / "models" / "attributes_int8.tflite"
EXE = [sys.executable, "-m", "edge_agent"]
Message = tuple[str, bytes, bool]  # topic, payload, retained

pytestmark = pytest.mark.slow
NO_ATTRIBUTES = "[attributes]\nage = false\ngender = false\nrace = false\n"


@pytest.fixture(scope="session")
def models_dir(detector_models: Path) -> Path:
    """Detector models pulled once per machine (tests/conftest.py)."""
    return detector_models


@pytest.fixture(scope="session")
def attribute_model() -> Path:
    """The packaged attribute model ($EDGE_AGENT_TEST_ATTRIBUTE_MODEL overrides it, e.g. with a test build)."""
    path = attribute_model_path()
    if path is None:
        pytest.skip(f"{ATTRIBUTE_MODEL} is not built yet")
    return path


def attribute_model_path() -> Path | None:
    path = Path(os.environ.get("EDGE_AGENT_TEST_ATTRIBUTE_MODEL", ATTRIBUTE_MODEL))
    return path if path.is_file() else None


class Collector:
    """A real MQTT subscriber recording every message (topic, payload, retained) under a topic filter."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.wait(10), "test subscriber could not subscribe"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[str, dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        """The first message (parsed) whose topic and JSON satisfy `pred`; fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for topic, payload, _ in self.messages[seen:]:
                    doc = _json(payload)
                    if doc is not None and pred(topic, doc):
                        return doc
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({t for t, _, _ in self.messages})
                    raise AssertionError(f"no {what} within {timeout}s; topics seen: {topics}")
                self._cond.wait(left)

    def docs(self) -> list[tuple[str, dict[str, Any]]]:
        with self._cond:
            return [(t, d) for t, p, _ in self.messages if (d := _json(p)) is not None]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _json(payload: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def write_config(tmp_path: Path, broker: Any, extra: str = "", device_id: str | None = None) -> tuple[Path, str]:
    """A config for one demo camera that enters, stays and leaves every 8 s, with stats every second."""
    device_id = device_id or f"e2e-{uuid.uuid4().hex[:8]}"
    text = f"""
[agent]
device_id = "{device_id}"
state_dir = "{tmp_path / "state"}"
stats_interval_s = 1
[[cameras]]
id = "cam0"
max_fps = 10
[cameras.source]
type = "demo"
fps = 10
cycle_s = 8
[tracking]
visit_gap_s = 1.0
min_age_years = 0  # children gating off: every end record carries attributes, whatever the model says
[mqtt]
host = "{broker.host}"
port = {broker.port}
keepalive_s = 5
{extra}
"""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, device_id


def attributes_toml(model: Path) -> str:
    """Age and gender on, race off (so the test can prove a disabled head appears nowhere)."""
    return f'[attributes]\nmodel = "{model}"\nage = true\ngender = true\nrace = false\n'


def agent_env(models_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "EDGE_AGENT_MQTT_PASSWORD", "CREDENTIALS_DIRECTORY")
    }
    env.update(EDGE_AGENT_MODELS_DIR=str(models_dir), PYTHONUNBUFFERED="1", **extra)
    return env


def start_agent(
    config: Path, env: dict[str, str], *args: str, stdout: Any = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*EXE, "run", "--config", str(config), *args],
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
    )


def stop_agent(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 5.0) -> tuple[int, float, str]:
    """Send `sig`, return (exit code, seconds to exit, stderr)."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"agent did not exit within {timeout + 10}s after {signal.Signals(sig).name}") from None
    return proc.returncode, time.monotonic() - t0, err


@pytest.fixture
def running(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Agent processes a test started; any still alive at the end are killed (by pid)."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        try:
            _, err = p.communicate(timeout=10)
        except (ValueError, OSError, subprocess.TimeoutExpired):  # already communicated
            continue
        if err:
            print(f"--- agent pid {p.pid} exit {p.returncode} stderr (tail) ---\n{err[-3000:]}")


# ---- privacy guard ------------------------------------------------------------------------------------------------
FORBIDDEN_KEYS = re.compile(
    r'"(image|images|pixels?|frame_data|jpe?g|png|crop|thumbnail|embedding|embeddings|'
    r'face_image|descriptor|features)"\s*:',
    re.IGNORECASE,
)
BASE64_BLOB = re.compile(rb"[A-Za-z0-9+/=]{120,}")
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"RIFF")


def _longest_number_list(doc: Any) -> int:
    if isinstance(doc, list):
        own = len(doc) if all(isinstance(x, (int, float)) for x in doc) else 0
        return max([own, *(_longest_number_list(x) for x in doc)])
    if isinstance(doc, dict):
        return max([0, *(_longest_number_list(v) for v in doc.values())])
    return 0


def assert_no_image_data(messages: list[Message], state_dir: Path) -> None:
    """Nothing published or written carries pixels or embeddings; the state dir holds only the outbox."""
    for topic, payload, _ in messages:
        assert not BASE64_BLOB.search(payload), f"base64-looking blob on {topic}"
        assert not FORBIDDEN_KEYS.search(payload.decode("utf-8", "replace")), f"image/embedding key on {topic}"
        doc = _json(payload)
        assert doc is not None, f"non-JSON payload on {topic}"
        assert _longest_number_list(doc) <= 16, f"array of numbers (pixels/embedding?) on {topic}"
    files = [p for p in state_dir.rglob("*") if p.is_file()]
    assert files, "the outbox should exist in the state dir"
    for f in files:
        assert re.fullmatch(r"outbox\.sqlite3(-wal|-shm|-journal|\.lock|\.seq)?", f.name), (
            f"unexpected file in state dir: {f}"
        )
        data = f.read_bytes()
        for magic in (b"\xff\xd8\xff", b"\x89PNG\r\n"):
            assert magic not in data, f"image bytes in {f}"


# Today's cost model, for comparison: a full scan on every frame and a classification of every big-enough face.
EVERY_FRAME = '[detector.schedule]\nmode = "every_frame"\n[tracking.sampling]\nmode = "every_frame"\n'


# ---- tests ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["", EVERY_FRAME], ids=["scheduled", "every-frame"])
def test_demo_run_publishes_online_info_tracks_with_attributes_stats_and_sigterm_gives_offline(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,
    attribute_model: Path,
    running: list[subprocess.Popen[str]],
    schedule: str,
) -> None:
    config, dev = write_config(tmp_path, broker, attributes_toml(attribute_model) + schedule)
    sub = Collector(broker.host, broker.port, f"edge-agent/{dev}/#")
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    try:
        base = f"edge-agent/{dev}"
        on = sub.wait_for(lambda t, d: t == f"{base}/status" and d.get("state") == "online", 30, "status online")
        info = sub.wait_for(lambda t, d: t == f"{base}/info", 10, "info")
        assert info["attributes"] == ["age", "gender"] and info["models"]["attributes"]["sha256"]
        new = sub.wait_for(lambda t, d: t.endswith("/tracks") and d.get("event") == "new", 30, "track new")
        end = sub.wait_for(
            lambda t, d: t.endswith("/tracks") and d.get("event") == "end" and d.get("track_id") == new["track_id"],
            30,
            "track end of that track",
        )
        stats = sub.wait_for(
            lambda t, d: t == f"{base}/stats" and d["cameras"]["cam0"]["frames_processed"] > 0,
            10,
            "stats with processed frames",
        )
        code, took, err = stop_agent(proc)
        offline = sub.wait_for(lambda t, d: t == f"{base}/status" and d.get("state") == "offline", 10, "offline")
    finally:
        sub.close()
    assert code == 0 and took < 5.0, (code, took, err[-2000:])
    assert on["camera_id"] is None and offline["reason"] == "shutdown"
    attrs = end.get("attributes") or {}
    assert "age" in attrs and "gender" in attrs, end
    assert stats["inference_ms"]["detector"]["count"] > 0
    for topic, doc in sub.docs():
        if not topic.endswith("/cmd/#"):
            validate(doc)  # every message is schema-valid
    everything = b"".join(p for _, p, _ in sub.messages)
    assert b'"race"' not in everything, "a disabled head must appear nowhere"
    ends = [d for t, d in sub.docs() if t.endswith("/tracks") and d.get("event") == "end"]
    summaries = [d for t, d in sub.docs() if t.endswith("/summary")]
    assert summaries and summaries[-1]["partial"] is True  # the interval in progress is flushed at shutdown
    assert sum(s["opportunities_to_see"] for s in summaries) == len(ends)  # every ended visit counted once
    for s in summaries:
        minors = s["minors"]["viewers"] + s["minors"]["passers_by"]
        assert s["viewers"] + s["passers_by"] + minors == s["opportunities_to_see"]
    assert_no_image_data(sub.messages, tmp_path / "state")
    assert "Traceback" not in err


def _drain(sock: socket.socket) -> list[bytes]:
    sock.settimeout(0.5)
    out = []
    try:
        while True:
            out.append(sock.recv(4096))
    except TimeoutError:
        pass
    sock.close()
    return out


def test_sigkill_leaves_the_brokers_last_will_offline(
    tmp_path: Path, broker: Any, models_dir: Path, running: list[subprocess.Popen[str]]
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    sub = Collector(broker.host, broker.port, f"edge-agent/{dev}/status")
    proc = start_agent(config, agent_env(models_dir))
    running.append(proc)
    try:
        sub.wait_for(lambda t, d: d.get("state") == "online", 30, "status online")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        will = sub.wait_for(lambda t, d: d.get("state") == "offline", 15, "Last Will offline")
    finally:
        sub.close()
    assert will["reason"] == "connection_lost"
    validate(will)


def test_remote_pause_resume_and_bad_commands_keep_the_agent_running(
    tmp_path: Path, broker: Any, models_dir: Path, running: list[subprocess.Popen[str]]
) -> None:
    config, dev = write_config(tmp_path, broker, NO_ATTRIBUTES)
    base = f"edge-agent/{dev}"
    sub = Collector(broker.host, broker.port, f"{base}/#")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    env = agent_env(models_dir, NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="1000000")
    proc = start_agent(config, env)
    running.append(proc)

    def command(name: str, payload: bytes) -> None:
        sub.client.publish(f"{base}/cmd/{name}", payload, qos=1).wait_for_publish(5)

    def result(name: str, rid: str | None) -> dict[str, Any]:
        return sub.wait_for(
            lambda t, d: t == f"{base}/cmd/{name}/result" and d.get("request_id") == rid, 15, f"{name} result"
        )

    try:
        sub.wait_for(lambda t, d: t == f"{base}/cameras/cam0/status" and d.get("state") == "online", 30, "online")
        command("pause", b'{"id": "p1"}')
        assert result("pause", "p1")["ok"] is True
        sub.wait_for(
            lambda t, d: t == f"{base}/cameras/cam0/status" and "paused" in (d.get("reason") or ""),
            10,
            "camera status saying paused",
        )
        paused = result("pause", "p1")["ts"]
        time.sleep(2.5)
        late = [d for t, d in sub.docs() if t.endswith("/tracks") and d["ts"] > paused]
        assert not late, f"no analysis while paused: {late[:1]}"  # visits open at pause ended before the result
        command("nonsense", b'{"id": "x1"}')
        assert "unknown command" in result("nonsense", "x1")["error"]
        command("status", b"{not json")
        assert result("status", None)["ok"] is False
        command("resume", b'{"id": "r1"}')
        assert result("resume", "r1")["ok"] is True
        command("status", b'{"id": "s1"}')
        status = result("status", "s1")
        assert status["ok"] and status["result"]["paused"] is False
        text = config.read_text()
        config.write_text(
            text.replace("stats_interval_s = 1", "stats_interval_s = 2").replace("keepalive_s = 5", "keepalive_s = 7")
        )
        command("reload", b'{"id": "L1"}')
        reloaded = result("reload", "L1")
        assert reloaded["ok"] is True, reloaded
        assert reloaded["result"]["applied"] == ["agent.stats_interval_s"]
        assert reloaded["result"]["restart_required"] == ["mqtt.keepalive_s"]
        sub.wait_for(
            lambda t, d: t == f"{base}/info" and d["config_sha256"] == reloaded["result"]["config_hash"],
            10,
            "info re-published with the new config hash",
        )
        config.write_text(text + "\n[agent]\nnot_a_key = 1\n")
        command("reload", b'{"id": "L2"}')
        broken = result("reload", "L2")
        assert broken["ok"] is False and "config.toml" in broken["error"]
        assert proc.poll() is None, "bad commands must not stop the agent"
        for topic, doc in sub.docs():
            if "/cmd/" not in topic or topic.endswith("/result"):
                validate(doc)
        code, took, err = stop_agent(proc)
    finally:
        sub.close()
    assert code == 0 and took < 5.0, err[-2000:]
    datagrams = _drain(notify)  # systemd notify protocol on a real AF_UNIX datagram socket
    assert datagrams[0] == b"READY=1\nSTATUS=first frame analysed", datagrams[:3]
    assert b"WATCHDOG=1" in datagrams and datagrams[-1] == b"STOPPING=1"


def test_face_clip_runs_to_its_end_with_attributes_printed_and_published(
    tmp_path: Path,
    broker: Any,
    models_dir: Path,
    attribute_model: Path,
    face_video: Path,
    running: list[subprocess.Popen[str]],
) -> None:
    """The real clip from ../shared: the run ends by itself at end of file (exit 0); --print shows the visits."""
    config, dev = write_config(tmp_path, broker, attributes_toml(attribute_model))
    sub = Collector(broker.host, broker.port, f"edge-agent/{dev}/#")
    proc = start_agent(config, agent_env(models_dir), "--source", str(face_video), "--print", stdout=subprocess.PIPE)
    running.append(proc)
    try:
        out, err = proc.communicate(timeout=120)
        sub.wait_for(lambda t, d: t.endswith("/status") and d.get("state") == "offline", 10, "offline")
    finally:
        sub.close()
    assert proc.returncode == 0, err[-3000:]
    printed = [json.loads(line) for line in out.splitlines()]
    assert {"new", "end"} <= {p["event"] for p in printed}
    end = next(p for p in printed if p["event"] == "end")
    assert {"age", "gender"} <= set(end.get("attributes", {})) or end.get("minor") is True, end
    published = [d for t, d in sub.docs() if t.endswith("/tracks")]
    assert [d["msg_id"] for d in published] and len(published) == len(printed)
    for _, doc in sub.docs():
        validate(doc)
    assert_no_image_data(sub.messages, tmp_path / "state")
