"""Pure-numpy detector parts: anchors, score sigmoid, box/keypoint decoding, NMS, refine geometry (no model)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edge_agent.detect.anchors import FULL_RANGE, SHORT_RANGE, anchor_count, generate_anchors
from edge_agent.detect.postprocess import Candidates, decode, iou_one_to_many, logit, nms, sigmoid_scores
from edge_agent.detect.refine import best_overlap, refine_region


def test_short_range_has_896_anchors_512_on_the_16x16_grid_then_384_on_the_8x8_grid() -> None:
    a = generate_anchors(SHORT_RANGE)
    assert a.shape == (896, 2) == (anchor_count(SHORT_RANGE), 2)
    # Stride 8: two anchors per cell of a 16x16 grid, row-major, x fastest.
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[32], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(a[511], [15.5 / 16, 15.5 / 16])
    # Three stride-16 layers share an 8x8 grid: six anchors per cell.
    np.testing.assert_allclose(a[512:518], np.tile([[0.5 / 8, 0.5 / 8]], (6, 1)))
    np.testing.assert_allclose(a[518], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_full_range_has_2304_anchors_one_per_cell_of_a_48x48_grid() -> None:
    a = generate_anchors(FULL_RANGE)
    assert a.shape == (2304, 2) == (anchor_count(FULL_RANGE), 2)
    np.testing.assert_allclose(a[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(a[1], [1.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(a[48], [0.5 / 48, 1.5 / 48])
    np.testing.assert_allclose(a[-1], [47.5 / 48, 47.5 / 48])


def test_short_range_anchors_follow_a_resized_input() -> None:
    spec = SHORT_RANGE.with_input(192, 256)
    a = generate_anchors(spec)
    assert len(a) == anchor_count(spec) == 24 * 32 * 2 + 12 * 16 * 6
    np.testing.assert_allclose(a[0] * [256, 192], [4.0, 4.0])  # centre of the first stride-8 cell, in pixels


def test_sigmoid_clips_raw_scores_at_100_without_overflow() -> None:
    raw = np.array([-1e6, -100.0, 0.0, 2.0, 100.0, 1e6], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp would raise here
        p = sigmoid_scores(raw)
    assert p.dtype == np.float32
    assert p[0] == p[1] and p[-1] == p[-2] == pytest.approx(1.0)
    assert p[2] == pytest.approx(0.5)
    assert p[3] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert logit(0.5) == pytest.approx(0.0) and sigmoid_scores(np.array([logit(0.7)]))[0] == pytest.approx(0.7)


def test_decoding_a_known_regression_gives_the_known_box_and_keypoints() -> None:
    # Anchor at (64, 32) input px; the face centre is 10 px right and 4 px up of it, 40 x 30 px.
    raw = np.zeros((1, 16), np.float32)
    raw[0, :4] = [10.0, -4.0, 40.0, 30.0]
    raw[0, 4:] = np.arange(12, dtype=np.float32) - 6.0  # keypoint offsets from the anchor
    c = decode(raw, np.array([[64.0, 32.0]], np.float32), np.array([0.9], np.float32))
    np.testing.assert_allclose(c.boxes[0], [74 - 20, 28 - 15, 74 + 20, 28 + 15])
    np.testing.assert_allclose(c.keypoints[0], (np.arange(12) - 6.0).reshape(6, 2) + np.array([64.0, 32.0]))
    assert c.scores[0] == pytest.approx(0.9)


def _cands(boxes: list[list[float]], scores: list[float]) -> Candidates:
    b = np.array(boxes, np.float32)
    kps = np.repeat(((b[:, :2] + b[:, 2:]) / 2)[:, None, :], 6, axis=1)
    return Candidates(b, np.array(scores, np.float32), kps)


def test_hard_nms_keeps_the_best_of_each_overlapping_group_and_separate_faces() -> None:
    c = _cands([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], [0.6, 0.9, 0.7, 0.5])
    out = nms(c, 0.3, weighted=False)
    np.testing.assert_allclose(out.scores, [0.9, 0.7])
    np.testing.assert_allclose(out.boxes, [[1, 1, 11, 11], [50, 50, 60, 60]])


def test_weighted_nms_averages_the_cluster_by_score_and_keeps_the_top_score() -> None:
    c = _cands([[0, 0, 10, 10], [2, 0, 12, 10], [100, 0, 110, 10]], [0.75, 0.25, 0.5])
    out = nms(c, 0.3, weighted=True)
    np.testing.assert_allclose(out.scores, [0.75, 0.5])
    np.testing.assert_allclose(out.boxes[0], [0.5, 0, 10.5, 10])  # 0.75 * 0 + 0.25 * 2 = 0.5
    np.testing.assert_allclose(out.keypoints[0, 0], [5.5, 5.0])
    np.testing.assert_allclose(out.boxes[1], [100, 0, 110, 10])


def test_nms_threshold_is_strict_and_max_out_stops_early() -> None:
    # IoU of these two is exactly 1/3.
    c = _cands([[0, 0, 10, 10], [5, 0, 15, 10]], [0.9, 0.8])
    assert iou_one_to_many(c.boxes[0], c.boxes[1:])[0] == pytest.approx(1 / 3)
    assert len(nms(c, 0.34, weighted=False)) == 2
    assert len(nms(c, 0.33, weighted=False)) == 1
    assert len(nms(c, 0.5, weighted=False, max_out=1)) == 1
    assert len(nms(Candidates.empty(), 0.3)) == 0


def test_iou_of_degenerate_boxes_is_zero_not_nan() -> None:
    ious = iou_one_to_many(np.zeros(4, np.float32), np.zeros((3, 4), np.float32))
    assert np.all(ious == 0)


def test_refine_region_is_a_square_around_the_box_shifted_inside_the_frame() -> None:
    assert refine_region(np.array([100, 100, 140, 140.0]), 2.0, 640, 480) == (80, 80, 80, 80)
    # At the left/top edge the square is shifted in, not clipped.
    assert refine_region(np.array([0, 2, 40, 42.0]), 2.0, 640, 480) == (0, 0, 80, 80)
    assert refine_region(np.array([620, 460, 640, 480.0]), 2.0, 640, 480) == (600, 440, 40, 40)
    # A square larger than the frame is cut to the frame.
    assert refine_region(np.array([0, 0, 400, 400.0]), 2.0, 640, 480) == (0, 0, 640, 480)


def test_best_overlap_picks_the_highest_score_among_overlapping_candidates() -> None:
    found = _cands([[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40]], [0.6, 0.8, 0.99])
    assert best_overlap(found, np.array([0, 0, 10, 10.0]), 0.3) == 1
    assert best_overlap(found, np.array([200, 200, 210, 210.0]), 0.3) == -1
    assert best_overlap(Candidates.empty(), np.array([0, 0, 1, 1.0]), 0.3) == -1
