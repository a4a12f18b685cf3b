"""The stats reporter: frozen snapshots in, interval rates and totals out (pure functions), plus real capture drops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge_agent.capture.status import CaptureSnapshot
from edge_agent.daemon.stats import (
    LatencyWindow,
    Percentiles,
    ProcessSnapshot,
    RunnerSnapshot,
    StatsReporter,
    StatsSnapshot,
    camera_stats,
    latency_payload,
)


def runner(
    processed: int, dropped: int, paused: int = 0, bad: int = 0, errors: int = 0, cap_bad: int = 0
) -> RunnerSnapshot:
    cap = CaptureSnapshot(
        "online", captured=processed + dropped, dropped=dropped, bad=cap_bad, reopens=1, capture_fps=9.5
    )
    return RunnerSnapshot("cam0", cap, processed=processed, faces=0, paused=paused, bad=bad, errors=errors)


def snapshot(mono: float, cpu: float, cam: RunnerSnapshot) -> StatsSnapshot:
    proc = ProcessSnapshot(mono=mono, cpu_s=cpu, rss_mb=80.0, threads=7, open_fds=12)
    window = LatencyWindow()
    for ms in (1.0, 2.0, 3.0):
        window.add_ms(ms)
    return StatsSnapshot(proc, uptime_s=mono, cameras=(cam,), timings={"detect": window.percentiles()}, publish={})


def test_camera_entry_reports_totals_and_rates_over_the_interval() -> None:
    prev = runner(processed=100, dropped=10, paused=2)
    cur = runner(processed=150, dropped=30, paused=5, bad=3, errors=4, cap_bad=2)
    out = camera_stats(cur, prev, elapsed_s=10.0)
    assert out["frames_dropped"] == 35  # capture drops + frames taken while paused
    assert out["dropped_fps"] == pytest.approx((35 - 12) / 10.0)
    assert out["processed_fps"] == pytest.approx(5.0)
    assert out["frames_processed"] == 150 and out["frames_captured"] == 180
    assert out["frames_bad"] == 5 and out["errors"] == 4  # bad input and errors are counted apart
    assert out["reopens"] == 1 and out["capture_fps"] == 9.5 and out["healthy"] is True


def test_first_interval_counts_from_start() -> None:
    out = camera_stats(runner(processed=40, dropped=8), None, elapsed_s=4.0)
    assert out["processed_fps"] == 10.0 and out["dropped_fps"] == 2.0


def test_reporter_keeps_the_previous_snapshot_so_rates_cover_one_interval() -> None:
    started = ProcessSnapshot(mono=0.0, cpu_s=0.0, rss_mb=50.0, threads=5, open_fds=10)
    rep = StatsReporter(started)
    first = rep.report(snapshot(10.0, 1.0, runner(processed=100, dropped=0)))
    second = rep.report(snapshot(20.0, 1.5, runner(processed=300, dropped=50)))
    assert first["interval_s"] == 10.0 and first["cpu_percent"] == 10.0
    assert first["cameras"]["cam0"]["processed_fps"] == 10.0
    assert second["interval_s"] == 10.0 and second["cpu_percent"] == 5.0
    assert second["cameras"]["cam0"]["processed_fps"] == 20.0 and second["cameras"]["cam0"]["dropped_fps"] == 5.0
    assert second["inference_ms"]["detector"] == {"count": 3, "p50": 2.0, "p95": 2.9}
    assert second["inference_ms"]["attributes"] == {"count": 0}  # no window: empty, not missing


def test_latency_payload_of_an_empty_window_has_only_the_count() -> None:
    assert latency_payload(Percentiles(None, None, 0)) == {"count": 0}
    assert latency_payload(Percentiles(1.5, 4.0, 7)) == {"count": 7, "p50": 1.5, "p95": 4.0}


def test_capture_snapshot_counts_the_frames_a_slow_consumer_never_took(tmp_path: Path) -> None:
    """A real paced demo camera read slower than it delivers: the drops are real and the snapshot reports them."""
    from edge_agent.capture.config import CameraConfig
    from edge_agent.capture.worker import CameraWorker

    cam = CameraConfig.model_validate(
        {"id": "cam0", "max_fps": 0, "source": {"type": "demo", "fps": 50, "width": 64, "height": 64}}
    )
    with CameraWorker(cam).start() as worker:
        taken = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            if worker.latest(0.5) is not None:
                taken += 1
            time.sleep(0.1)  # 10 frames/s taken of 50 delivered
        snap = worker.snapshot()
        legacy = worker.stats()
    assert snap.dropped > 20 and snap.dropped == legacy["dropped"]
    assert snap.captured >= snap.dropped + taken - 1  # every grabbed frame was taken, dropped or is pending


def test_stats_payload_is_exactly_the_schema_fields_with_their_rounding() -> None:
    started = ProcessSnapshot(mono=100.0, cpu_s=2.0, rss_mb=50.0, threads=5, open_fds=10)
    cap = CaptureSnapshot("online", captured=90, dropped=7, bad=1, reopens=2, capture_fps=29.97)
    cam = RunnerSnapshot("cam0", cap, processed=80, faces=3, paused=2, bad=1, errors=0)
    window = LatencyWindow()
    for ms in (1.23456, 2.34567, 9.87654):
        window.add_ms(ms)
    proc = ProcessSnapshot(mono=103.3333, cpu_s=2.4583, rss_mb=81.2, threads=9, open_fds=14)
    snap = StatsSnapshot(
        proc,
        uptime_s=3.3333,
        cameras=(cam,),
        timings={"detect": window.percentiles(), "capture_to_publish": window.percentiles()},
        publish={"connected": True, "queue_depth": 0, "dropped": {}},
    )
    out = StatsReporter(started).report(snap)
    lat = {"count": 3, "p50": 2.346, "p95": 9.123}
    out["cameras"]["cam0"].pop("detection", None)  # the scheduling figures have their own tests
    assert out == {
        "uptime_s": 3.3,
        "interval_s": 3.333,
        "cameras": {
            "cam0": {
                "status": "online",
                "healthy": True,
                "capture_fps": 29.97,
                "processed_fps": 24.0,
                "dropped_fps": 2.7,
                "frames_captured": 90,
                "frames_processed": 80,
                "frames_dropped": 9,
                "frames_bad": 2,
                "errors": 0,
                "reopens": 2,
            }
        },
        "inference_ms": {
            "detector": lat,
            "attributes": {"count": 0},
            "attributes_frame": {"count": 0},
            "pose": {"count": 0},
            "analytics": {"count": 0},
            "publish": {"count": 0},
            "frame": {"count": 0},
        },
        "latency_ms": lat,
        "publish": {"connected": True, "queue_depth": 0, "dropped": {}},
        "memory_rss_mb": 81.2,
        "threads": 9,
        "open_fds": 14,
        "cpu_percent": 13.7,
    }


def test_a_zero_length_interval_does_not_divide_by_zero() -> None:
    p = ProcessSnapshot(mono=5.0, cpu_s=1.0, rss_mb=1.0, threads=1, open_fds=1)
    cam = runner(processed=3, dropped=0)
    out = StatsReporter(p).report(StatsSnapshot(p, 0.0, (cam,), {}, {}))
    assert out["interval_s"] == 0.001 and out["cameras"]["cam0"]["processed_fps"] == 3000.0


def test_latency_window_keeps_the_last_samples_and_counts_all() -> None:
    w = LatencyWindow(size=3)
    assert w.percentiles() == Percentiles(None, None, 0) and w.count == 0
    for ms in (100.0, 1.0, 2.0, 3.0):
        w.add_ms(ms)
    assert w.count == 4 and w.percentiles() == Percentiles(2.0, 2.9, 3)  # the 100 ms sample fell out
    one = LatencyWindow()
    one.add_ms(1.23456)
    assert one.percentiles() == Percentiles(1.235, 1.235, 1)


def test_process_snapshot_reads_this_process() -> None:
    import os
    import time as _time

    snap = ProcessSnapshot.now()
    assert abs(snap.mono - _time.monotonic()) < 1.0 and 0 < snap.cpu_s <= _time.process_time()
    assert snap.rss_mb > 20 and snap.threads == len(os.listdir("/proc/self/task"))
    assert abs(snap.open_fds - len(os.listdir("/proc/self/fd"))) <= 2
