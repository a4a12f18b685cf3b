"""Unit tests of the benchmark building blocks: synthetic frames, split and labels, metrics, matching, soak maths."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks import detection, soak, venvs
from benchmarks import synth_frames as sf
from benchmarks.dataset import age_group, chip_canvas, held_out_items, parse_name, split_of, write_tiny_dataset
from benchmarks.metrics import Prediction, race_gap, summarize
from edge_agent.records import Box

FACE = (0, 0, 255)  # red in BGR
CHIP = (255, 0, 0)  # blue


def _marked_crop() -> sf.FaceCrop:
    """A 200x200 chip that is blue everywhere except a red rectangle exactly where its face box says."""
    img = np.zeros((200, 200, 3), np.uint8)
    img[:] = CHIP
    fx1, fy1, fx2, fy2 = sf.UTKFACE_FACE_BOX
    img[round(fy1 * 200) : round(fy2 * 200), round(fx1 * 200) : round(fx2 * 200)] = FACE
    return sf.FaceCrop(img)


@pytest.mark.parametrize("seed", range(6))
def test_synthetic_frame_puts_each_face_box_where_it_says(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bg = np.zeros((sf.FRAME_H, sf.FRAME_W, 3), np.uint8)  # black: neither face nor chip colour
    k = 1 + seed % 3
    widths = list(np.exp(rng.uniform(np.log(40), np.log(200), size=k)))
    frame, boxes = sf.make_frame(rng, [_marked_crop()] * k, widths, bg)
    assert len(boxes) == k
    for box, width in zip(boxes, widths, strict=True):
        assert box.width == pytest.approx(width, rel=0.03)
        inner = frame[int(box.y1) + 2 : int(box.y2) - 2, int(box.x1) + 2 : int(box.x2) - 2].reshape(-1, 3)
        assert np.mean(np.all(inner == FACE, axis=1)) > 0.97, "the box interior is the pasted face"
        # Just outside the box (2-3 px) there is no face colour: the box is not larger than the face.
        ring = [
            (int(box.x1) - 3, int(box.center[1])),
            (int(box.x2) + 3, int(box.center[1])),
            (int(box.center[0]), int(box.y1) - 3),
            (int(box.center[0]), int(box.y2) + 3),
        ]
        for x, y in ring:
            if 0 <= x < sf.FRAME_W and 0 <= y < sf.FRAME_H:
                assert tuple(frame[y, x]) != FACE


def test_age_groups_follow_fairface_bins() -> None:
    ages = [0, 2, 3, 9, 10, 19, 20, 29, 30, 69, 70, 116]
    assert [age_group(a) for a in ages] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 7, 8, 8]


def test_split_rule_is_the_toolchains_hash_bucket() -> None:
    for n in range(200):
        h = hashlib.sha256(str(n).encode()).hexdigest()
        assert (split_of(h) == "test") == (int(h[:8], 16) % 100 >= 85)


def test_utkface_names_parse_and_malformed_ones_are_skipped_and_counted(tmp_path: Path) -> None:
    assert parse_name("26_0_1_20170116234741401.jpg.chip.jpg") == (26, 0, 1)
    for bad in (
        "39_1_20170116174525125.jpg.chip.jpg",
        "61_1_20170109150557335.jpg .chip.jpg",
        "61_3_20170109150557335jpg.chip.jpg",
    ):
        assert parse_name(bad) is None
    paths = write_tiny_dataset(tmp_path, n=5)
    held = held_out_items(tmp_path)
    assert [i.path for i in held.items] == sorted(paths)
    assert held.skipped["malformed name"] == 1
    assert all(split_of(hashlib.sha256(p.read_bytes()).hexdigest()) == "test" for p in paths)


def test_chip_canvas_centres_the_chip_on_grey() -> None:
    chip = np.full((200, 200, 3), 7, np.uint8)
    canvas, (x1, y1, x2, y2) = chip_canvas(chip)
    assert canvas.shape == (400, 400, 3) and (x1, y1, x2, y2) == (100, 100, 300, 300)
    assert np.all(canvas[y1:y2, x1:x2] == 7) and np.all(canvas[:100] == 128)


def test_summary_counts_misses_as_wrong_or_leaves_them_out() -> None:
    preds = [Prediction(0, 25.0, 3), Prediction(1, 40.0, 4), Prediction(None, None, None)]
    truth = ([25, 30, 50], [0, 0, 1], [0, 1, 2])
    all_images = summarize(*truth, preds, miss_is_wrong=True)
    detected = summarize(*truth, preds, miss_is_wrong=False)
    assert all_images["misses"] == detected["misses"] == 1
    assert all_images["gender_acc"] == pytest.approx(1 / 3) and detected["gender_acc"] == pytest.approx(1 / 2)
    assert all_images["age_mae"] == pytest.approx(5.0)  # (0 + 10) / 2: a miss has no age to compare
    assert detected["age_group_exact"] == pytest.approx(1.0)  # 30 y is group 4; 40 y predicted group 4
    assert detected["age_group_one_off"] == pytest.approx(1.0)
    assert race_gap(detected["gender_acc_by_race"]) == pytest.approx(1.0)


def test_detection_match_needs_centre_inside_and_similar_width() -> None:
    truth = [Box(100, 100, 200, 200), Box(400, 100, 440, 140)]
    dets = [
        (Box(110, 110, 190, 190), 0.9),  # tighter box, centre inside: a hit (dlib-style)
        (Box(405, 105, 435, 135), 0.8),  # second face
        (Box(120, 120, 180, 180), 0.7),  # duplicate of the first: a false positive
        (Box(300, 300, 500, 470), 0.6),  # nowhere near: a false positive
        (Box(395, 95, 445, 145), 0.5),  # second face again: a false positive
    ]
    found, fp = detection.match(dets, truth)
    assert found == [True, True] and fp == 3
    found, fp = detection.match([(Box(0, 0, 600, 400), 0.9)], truth)  # centre inside, but 6x too wide
    assert found == [False, False] and fp == 1


def test_detection_score_bins_recall_by_face_width() -> None:
    frames = detection.Frames(np.zeros((2, 480, 640, 3), np.uint8), [[Box(0, 0, 45, 45)], [Box(0, 0, 100, 100)]])
    r = detection.score(frames, [[(Box(0, 0, 45, 45), 1.0)], []])
    assert r["faces"][r["bins"].index("40-49")] == 1 and r["recall"][r["bins"].index("40-49")] == 1.0
    assert r["recall"][r["bins"].index("80-119")] == 0.0
    assert r["recall_ge40"] == 0.5 and r["recall_ge80"] == 0.0 and r["fp_per_frame"] == 0.0


def test_soak_growth_is_measured_after_warm_up() -> None:
    samples = [
        {"t": float(t), "rss_mb": 100.0 + (50 if t < 10 else t * 0.01), "fds": 11, "threads": 9}
        for t in range(0, 600, 5)
    ]
    r = soak.summarize(samples, 10, 60.0, 1000, None, "cmd")
    assert r["rss_growth_mb"] == pytest.approx(5.9 - 0.65, abs=0.06)
    assert (r["fds_min"], r["fds_max"], r["threads_first"], r["threads_last"]) == (11, 11, 9, 9)


def test_soak_samples_a_live_process() -> None:
    s = soak.sample(os.getpid())
    assert s is not None and s["rss_mb"] > 10 and s["fds"] >= 3 and s["threads"] >= 1


def test_worker_failure_is_one_line(tmp_path: Path) -> None:
    import sys

    with pytest.raises(venvs.WorkerError) as err:
        venvs.run_worker(sys.executable, "benchmarks.workers.peer", {"job": "no-such-job"})
    assert "\n" not in str(err.value) and "no-such-job" in str(err.value)
