"""Small parts of the daemon pinned exactly: what mutation testing found the other tests let change (TESTING.md)."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.capture.config import CameraConfig
from edge_agent.capture.status import CaptureSnapshot
from edge_agent.config import parse_config
from edge_agent.daemon import builders, messages
from edge_agent.daemon.camera import CameraRunner, CameraStages, Timings
from edge_agent.daemon.sinks import Outgoing, Sink
from edge_agent.daemon.stats import RunnerSnapshot, camera_stats, detection_stats
from edge_agent.detect.base import FaceDetector
from edge_agent.detect.config import DetectorConfig
from edge_agent.detect.guided import ScheduleStats
from edge_agent.modelmeta import file_sha256
from edge_agent.records import Frame
from tests.test_daemon_camera import ListFeed, Recording, Spy, detector, frames  # noqa: F401 - fixtures
from tests.test_e2e import models_dir  # noqa: F401

MODEL = Path(__file__).resolve().parents[1] / "edge_agent" / "models" / "attributes_int8.tflite"


# ---- camera loop ------------------------------------------------------------------------------------------------


def test_the_guided_loop_without_a_classifier_never_classifies(models_dir: Path) -> None:  # noqa: F811
    from edge_agent.analytics.config import AnalyticsConfig
    from edge_agent.track.config import TrackerConfig

    det_cfg = DetectorConfig(models_dir=models_dir)
    full, region = builders.detector(det_cfg), builders.region_finder(det_cfg)
    cam = CameraConfig.model_validate({"id": "cam0", "source": {"type": "demo"}})
    guide = builders.guided_detector(det_cfg, cam, full, region)
    assert guide is not None and region is not None
    analytics = builders.camera_analytics("cam0", TrackerConfig(), AnalyticsConfig(), None, ())
    runner = CameraRunner(
        "cam0", ListFeed(frames(10)), CameraStages(full, None, analytics, None), Timings(), lambda m: None, guide=guide
    )
    try:
        while runner.poll(0.0, paused=False):
            pass
    finally:
        full.close()
        region.close()
    assert runner.processed_total == 10 and runner.faces_total > 0
    assert not runner.errors.counts and runner.classified_total == 0


def test_bad_frames_are_all_counted_and_logged_once_per_interval(
    detector: FaceDetector,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    empty = np.zeros((0, 0, 3), np.uint8)
    bad = [Frame("cam0", i, time.time(), time.monotonic(), empty) for i in range(3)]
    stages = CameraStages(detector, None, Recording(), None)
    runner = CameraRunner("door", ListFeed(bad), stages, Timings(), lambda m: None)
    with caplog.at_level(logging.WARNING, logger="edge_agent.daemon.camera"):
        while runner.poll(0.0, paused=False):
            pass
    assert runner.bad_total == 3
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("camera door: frame 0 unusable: ") and "(1 so far)" in lines[0]
    assert "empty" in lines[0] or "shape" in lines[0] or "0x0" in lines[0] or "size" in lines[0]


def test_guided_loop_timings_are_milliseconds_per_stage(models_dir: Path) -> None:  # noqa: F811
    from edge_agent.analytics.config import AnalyticsConfig
    from edge_agent.classify.config import AttributesConfig
    from edge_agent.track.config import TrackerConfig

    det_cfg = DetectorConfig(models_dir=models_dir)
    full, region = builders.detector(det_cfg), builders.region_finder(det_cfg)
    cam = CameraConfig.model_validate({"id": "cam0", "source": {"type": "demo"}})
    guide = builders.guided_detector(det_cfg, cam, full, region)
    clf, meta = builders.classifier(AttributesConfig(model=MODEL, race=False))
    assert guide is not None and clf is not None and region is not None
    spy = Spy(builders.camera_analytics("cam0", TrackerConfig(), AnalyticsConfig(), meta, ("age", "gender")))
    tm = Timings()
    runner = CameraRunner(
        "cam0", ListFeed(frames(20)), CameraStages(full, clf, spy, None), tm, lambda m: None, guide=guide
    )
    try:
        while runner.poll(0.0, paused=False):
            pass
    finally:
        clf.close()
        full.close()
        region.close()
    snap = tm.snapshot()
    for name in ("detect", "full_scan", "classify", "classify_face", "pose", "analytics", "total"):
        p = snap[name]
        assert p.n > 0 and p.p50 is not None and 0.0 <= p.p50 < 2000.0, (name, p)  # ms: not s, not µs
    assert snap["detect"].n == snap["full_scan"].n + snap["region_search"].n  # each look is one or the other
    assert snap["detect"].p50 is not None and snap["detect"].p50 > 0.05  # a BlazeFace look takes well over 50 µs
    assert snap["full_scan"].p50 is not None and snap["full_scan"].p50 > 0.05
    assert snap["classify"].p50 is not None and snap["classify"].p50 < 500.0  # ms per frame, not faces x 1000
    assert snap["classify_face"].p50 is not None and snap["classify_face"].p50 > 0.05  # one inference: > 50 µs
    assert snap["capture_to_publish"].n > 0  # frames whose messages were sent are timed end to end
    assert snap["classify_face"].p50 is not None and snap["classify"].p95 is not None
    assert snap["classify_face"].p50 <= snap["classify"].p95 + 1e-9  # per face never more than per frame
    assert snap["classify_face"].n == snap["classify"].n  # one sample per frame that classified
    assert snap["total"].n == 20 and snap["pose"].n == 20
    assert all(f.pose is None for batch in spy.faces for f in batch)  # no pose function: none computed
    faces = [f for batch in spy.faces for f in batch]
    assert faces and all(f.sharpness is not None and f.sharpness > 0 and 0 < f.visible <= 1 for f in faces)


# ---- stats ------------------------------------------------------------------------------------------------------


def _runner(
    processed: int, dropped: int, detection: ScheduleStats | None = None, classified: int = 0
) -> RunnerSnapshot:
    cap = CaptureSnapshot("online", processed + dropped, dropped, 0, 0, 10.0)
    return RunnerSnapshot("cam0", cap, processed, 0, 0, 0, 0, classified=classified, detection=detection)


def test_camera_rates_round_to_hundredths_and_count_only_new_drops() -> None:
    out = camera_stats(_runner(10, 5), _runner(9, 5), elapsed_s=3.0)
    assert out["processed_fps"] == 0.33 and out["dropped_fps"] == 0.0
    out = camera_stats(_runner(11, 7), _runner(10, 5), elapsed_s=3.0)
    assert out["processed_fps"] == 0.33 and out["dropped_fps"] == 0.67


def sched(full: int, region: int, still: int, misses: int = 0) -> ScheduleStats:
    return ScheduleStats(
        frames=full + region + still,
        full_scans=full,
        full_by_reason={"cadence": full},
        region_searches=region,
        region_misses=misses,
        still_frames=still,
        between_frames=0,
        motion_frames=0,
        lighting_changes=0,
    )


def test_detection_figures_are_rates_over_the_interval_and_totals() -> None:
    prev = _runner(100, 0, sched(10, 60, 30), classified=5)
    cur = _runner(130, 0, sched(13, 80, 37, misses=2), classified=8)
    assert detection_stats(cur, prev, 10.0) == {
        "full_scans_per_s": 0.3,
        "region_searches_per_s": 2.0,
        "still_frames_per_s": 0.7,
        "classifications_per_s": 0.3,
        "full_scans": 13,
        "region_searches": 80,
        "still_frames": 37,
        "classifications": 8,
        "region_misses": 2,
        "full_scans_by_reason": {"cadence": 13},
    }


def test_without_scheduling_every_analysed_frame_is_a_full_scan() -> None:
    out = detection_stats(_runner(30, 0), _runner(20, 0), 5.0)
    assert out == {
        "full_scans_per_s": 2.0,
        "region_searches_per_s": 0.0,
        "still_frames_per_s": 0.0,
        "classifications_per_s": 0.0,
        "full_scans": 30,
        "region_searches": 0,
        "still_frames": 0,
        "classifications": 0,
    }
    first = detection_stats(_runner(30, 0, classified=3), None, 10.0)
    assert first["full_scans_per_s"] == 3.0 and first["classifications_per_s"] == 0.3


def test_detection_rates_round_to_hundredths() -> None:
    out = detection_stats(_runner(31, 0, sched(11, 0, 0)), _runner(30, 0, sched(10, 0, 0)), 3.0)
    assert out["full_scans_per_s"] == 0.33


def test_camera_entry_carries_the_interval_detection_figures() -> None:
    prev = _runner(100, 0, sched(10, 60, 30))
    cur = _runner(130, 0, sched(13, 80, 37))
    assert camera_stats(cur, prev, 10.0)["detection"]["full_scans_per_s"] == 0.3


# ---- messages ---------------------------------------------------------------------------------------------------


def test_detector_model_of_an_explicit_file_is_its_name_and_hash(tmp_path: Path) -> None:
    model = tmp_path / "my_detector.tflite"
    model.write_bytes(b"not really a model, but bytes to hash")
    cfg = parse_config(f'[detector]\nmodel_path = "{model}"\n')
    det = messages.models_info(cfg, None)["detector"]
    assert det == {"name": "my_detector.tflite", "version": None, "sha256": file_sha256(model)}


def test_detector_model_by_default_is_the_pinned_mediapipe_file() -> None:
    from edge_agent.detect.blazeface import MODEL_NAMES
    from edge_agent.models_store import PINS

    cfg = parse_config("")
    det = messages.models_info(cfg, None)["detector"]
    name = MODEL_NAMES[cfg.detector.model]
    assert det == {"name": name, "version": "mediapipe", "sha256": PINS[name].sha256}


def test_a_missing_explicit_detector_file_falls_back_to_the_name() -> None:
    cfg = parse_config('[detector]\nmodel_path = "/nonexistent/x.tflite"\n')
    from edge_agent.detect.blazeface import MODEL_NAMES
    from edge_agent.models_store import PINS

    det = messages.models_info(cfg, None)["detector"]
    name = MODEL_NAMES[cfg.detector.model]
    assert det == {"name": name, "version": "mediapipe", "sha256": PINS[name].sha256}


def test_info_names_the_python_version() -> None:
    import platform

    assert messages.info(parse_config(""), None, 0.0).payload["software"]["python"] == platform.python_version()


def test_a_reload_of_an_unchanged_config_with_paths_changes_nothing(tmp_path: Path) -> None:
    from edge_agent.daemon import reload

    text = f'[agent]\nstate_dir = "{tmp_path}"\n[attributes]\nmodel = "{MODEL}"\n'
    plan = reload.plan(parse_config(text), parse_config(text))
    assert plan.live == () and plan.restart == ()
    assert reload.pipeline_changed(("analytics.summary.interval_s",))
    assert reload.pipeline_changed(("tracking.visit_gap_s",)) and reload.pipeline_changed(("attributes.age",))


def test_info_says_unknown_when_the_runtime_cannot_tell(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_agent.runtime

    def broken() -> str:
        raise RuntimeError("no runtime")

    monkeypatch.setattr(edge_agent.runtime, "runtime_version", broken)  # the edge: which runtime is installed
    assert messages.info(parse_config(""), None, 0.0).payload["software"]["runtime"] == "unknown"


# ---- builders ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "stills"),
    [
        ({"type": "folder", "path": "x"}, True),
        ({"type": "folder", "path": "x", "sequence": True}, False),
        ({"type": "demo"}, False),
        ({"type": "file", "path": "x.mp4"}, False),
    ],
)
def test_a_folder_of_independent_photos_is_stills(source: dict[str, Any], stills: bool) -> None:
    cams = [CameraConfig.model_validate({"id": "a", "source": {"type": "demo"}})]
    cams.append(CameraConfig.model_validate({"id": "cam", "source": source}))
    assert builders.is_stills(cams, "cam") is stills
    assert builders.is_stills(cams, "nope") is False


def test_guided_detection_is_off_for_stills_and_for_every_frame_mode(
    detector: FaceDetector,  # noqa: F811
    models_dir: Path,  # noqa: F811
) -> None:
    cfg = DetectorConfig(models_dir=models_dir)
    region = builders.region_finder(cfg)
    assert region is not None
    try:
        stills = CameraConfig.model_validate({"id": "cam", "source": {"type": "folder", "path": "x"}})
        seq = CameraConfig.model_validate({"id": "cam", "source": {"type": "folder", "path": "x", "sequence": True}})
        assert builders.guided_detector(cfg, stills, detector, region) is None
        assert builders.guided_detector(cfg, seq, detector, region) is not None
    finally:
        region.close()
    every = DetectorConfig.model_validate({"schedule": {"mode": "every_frame"}})
    assert builders.region_finder(every) is None


def test_metadata_without_a_classifier_is_read_if_the_model_is_there(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from edge_agent.classify.config import AttributesConfig

    clf, meta = builders.classifier(AttributesConfig(model=MODEL, age=False, gender=False))
    assert clf is None and meta is not None and meta.name
    assert builders.classifier(AttributesConfig(model=tmp_path / "none.tflite", age=False, gender=False)) == (
        None,
        None,
    )
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"x")
    broken.with_suffix(".json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="edge_agent.daemon.builders"):
        assert builders.classifier(AttributesConfig(model=broken, age=False, gender=False)) == (None, None)
    assert any("metadata unusable" in r.getMessage() for r in caplog.records)


def test_publisher_and_camera_worker_are_built_from_their_sections(tmp_path: Path) -> None:
    cfg = parse_config(
        '[mqtt]\nhost = "127.0.0.1"\nport = 1\n[[cameras]]\nid = "door"\n[cameras.source]\ntype = "demo"\n'
    )
    pub = builders.publisher(cfg.mqtt, cfg.outbox, "dev1", tmp_path)
    try:
        assert pub.stats()["queue_depth"] == 0 and (tmp_path / cfg.outbox.file_name).exists()
    finally:
        pub.close(0.5)
    seen: list[str] = []
    worker = builders.camera_worker(cfg.cameras[0], lambda cid, st: seen.append(cid))
    try:
        assert worker.camera_id == "door" and worker.snapshot().captured == 0
    finally:
        worker.close(0.5)


# ---- sinks ------------------------------------------------------------------------------------------------------


class Refusing:
    def submit(self, topic_suffix: str, payload: dict[str, Any], **kw: Any) -> str:
        raise ValueError("payload too large")


def test_print_events_writes_track_messages_as_json_lines_only() -> None:
    out = io.StringIO()
    sink = Sink(None, print_events=True, out=out)
    sink.send(Outgoing("cameras/door/tracks", {"event": "new", "track_id": "t1"}, "edge-agent/tracks/1", "door"))
    sink.send(Outgoing("stats", {"uptime_s": 1}, "edge-agent/stats/1"))
    lines = out.getvalue().splitlines()
    assert [json.loads(x) for x in lines] == [{"camera_id": "door", "event": "new", "track_id": "t1"}]
    assert "," in lines[0] and ", " not in lines[0]  # compact separators


def test_a_closed_stdout_stops_printing_and_a_refused_message_is_counted() -> None:
    out = io.StringIO()
    out.close()
    sink = Sink(Refusing(), print_events=True, out=out)  # type: ignore[arg-type]
    msg = Outgoing("cameras/door/tracks", {"event": "new"}, "edge-agent/tracks/1", "door")
    sink.send(msg)
    sink.send(msg)
    assert sink.failed == 2 and sink.submitted == 0 and sink._print is False


def test_error_log_tracebacks_the_first_of_each_type_then_rate_limits_per_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from edge_agent.daemon.camera import ErrorLog

    errors = ErrorLog("door", every_s=30.0)
    with caplog.at_level(logging.ERROR, logger="edge_agent.daemon.camera"):
        errors.report(1, TypeError("a"), now=100.0)
        errors.report(2, TypeError("b"), now=110.0)  # within 30 s of the first: counted, not logged
        errors.report(3, KeyError("k"), now=111.0)  # another type: its own first occurrence
        errors.report(4, TypeError("c"), now=130.0)  # 30 s after the last line of its type: logged, no traceback
        errors.report(5, TypeError("d"), now=140.0)
    got = [(r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert got == [
        ("camera door: frame 1 failed: TypeError: a", True),
        ("camera door: frame 3 failed: KeyError: 'k'", True),
        ("camera door: frame 4 failed: TypeError: c (3 so far)", False),
    ]
    assert errors.counts == {"TypeError": 4, "KeyError": 1}
    assert errors.last == "TypeError: d"
    assert caplog.records[0].exc_info is not None and caplog.records[0].exc_info[0] is TypeError


# ---- what the runner and the adapter hand on ---------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def submit(self, topic_suffix: str, payload: dict[str, Any], **kw: Any) -> str:
        self.calls.append((topic_suffix, payload, kw))
        return "id"


def test_the_sink_hands_every_field_to_the_publisher_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    sink = Sink(rec)  # type: ignore[arg-type]
    sink.send(Outgoing("cameras/door/status", {"state": "online"}, "edge-agent/camera_status/1", "door", retain=True))
    sink.send(Outgoing("stats", {"uptime_s": 1}, "edge-agent/stats/1"))
    assert rec.calls == [
        (
            "cameras/door/status",
            {"state": "online"},
            {"schema": "edge-agent/camera_status/1", "camera_id": "door", "retain": True},
        ),
        ("stats", {"uptime_s": 1}, {"schema": "edge-agent/stats/1", "camera_id": None, "retain": False}),
    ]
    assert (sink.submitted, sink.failed) == (2, 0)
    bad = Sink(Refusing())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="edge_agent.daemon.sinks"):
        bad.send(Outgoing("stats", {}, "edge-agent/stats/1"))
        bad.send(Outgoing("stats", {}, "edge-agent/stats/1"))
    assert (bad.submitted, bad.failed) == (0, 2)
    assert caplog.records[0].getMessage() == "cannot publish stats: payload too large"


def test_the_every_frame_loop_times_each_stage_in_ms_and_snapshots_its_totals(
    detector: FaceDetector,  # noqa: F811
) -> None:
    from edge_agent.classify.config import AttributesConfig

    clf, _ = builders.classifier(AttributesConfig(model=MODEL, race=False))
    assert clf is not None
    tm = Timings()
    pose = builders.pose_fn()
    runner = CameraRunner(
        "cam0", ListFeed(frames(4)), CameraStages(detector, clf, Recording(), pose), tm, lambda m: None
    )
    try:
        while runner.poll(0.0, paused=False):
            pass
        plain = CameraRunner(
            "cam1", ListFeed(frames(2)), CameraStages(detector, None, Recording(), pose), Timings(), print
        )
        while plain.poll(0.0, paused=False):
            pass
    finally:
        clf.close()
    snap = tm.snapshot()
    assert snap["detect"].n == 4 and snap["detect"].p50 is not None and 0.05 < snap["detect"].p50 < 2000
    assert snap["classify"].n == 4 and snap["classify"].p50 is not None and 0.05 < snap["classify"].p50 < 500
    assert snap["classify_face"].n == 4 and snap["total"].n == 4
    assert plain.timings.classify.count == 0  # no classifier: no classification timing at all
    s = runner.snapshot(time.monotonic())
    assert (s.processed, s.faces, s.classified, s.detection) == (4, 4, 4, None)


def test_reconfigure_keeps_detector_and_pose(detector: FaceDetector) -> None:  # noqa: F811
    pose = builders.pose_fn()
    runner = CameraRunner("cam0", ListFeed([]), CameraStages(detector, None, Recording(), pose), Timings(), print)
    new = Recording()
    runner.reconfigure(None, new)
    assert runner.stages.detector is detector and runner.stages.pose_fn is pose and runner.stages.analytics is new


def test_the_adapter_addresses_its_camera_and_keeps_each_schema() -> None:
    from edge_agent.analytics.config import AnalyticsConfig
    from edge_agent.analytics.synthetic import make_face
    from edge_agent.track.config import TrackerConfig

    adapter = builders.camera_analytics("door", TrackerConfig(), AnalyticsConfig(), None, ())
    out: list[Outgoing] = []
    t0, m0 = 1_800_000_000.0, 500.0
    img = np.zeros((8, 8, 3), np.uint8)
    for i in range(8):
        out += adapter.update([make_face(300.0)], Frame("door", i, t0 + i * 0.1, m0 + i * 0.1, img))
    out += adapter.flush("shutdown")
    assert out and all(m.camera_id == "door" and m.topic_suffix.startswith("cameras/door/") for m in out)
    schemas = {m.topic_suffix.rsplit("/", 1)[1]: m.schema for m in out}
    assert schemas["tracks"] == "edge-agent/tracks/1"
    ends = [m.payload for m in out if m.payload.get("event") == "end"]
    assert ends and ends[0]["dwell_s"] == pytest.approx(0.7, abs=0.01)  # from the frames' own clock
