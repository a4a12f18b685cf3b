"""Letterboxing a frame region into the model input and mapping points back to frame pixels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.detect.letterbox import fit, render, shrink


def test_a_4_3_frame_in_a_square_input_is_scaled_by_width_and_padded_top_and_bottom() -> None:
    lb = fit((0, 0, 640, 480), 128, 128)
    assert (lb.new_w, lb.new_h, lb.pad_x, lb.pad_y) == (128, 96, 0, 16)
    assert lb.scale_x == lb.scale_y == pytest.approx(0.2)
    np.testing.assert_allclose(lb.to_input(np.array([[320.0, 240.0]])), [[64.0, 64.0]])
    np.testing.assert_allclose(lb.to_frame(np.array([[0.0, 16.0], [128.0, 112.0]])), [[0, 0], [640, 480]])


@settings(max_examples=200, deadline=None)
@given(
    x0=st.integers(0, 500),
    y0=st.integers(0, 500),
    w=st.integers(1, 2000),
    h=st.integers(1, 2000),
    in_w=st.sampled_from([64, 128, 192, 224, 256]),
    in_h=st.sampled_from([64, 96, 128, 176, 192]),
    px=st.floats(-50, 2050),
    py=st.floats(-50, 2050),
)
def test_frame_to_input_to_frame_is_the_identity(
    x0: int, y0: int, w: int, h: int, in_w: int, in_h: int, px: float, py: float
) -> None:
    lb = fit((x0, y0, w, h), in_w, in_h)
    assert lb.new_w <= in_w and lb.new_h <= in_h and (lb.new_w == in_w or lb.new_h == in_h or min(w, h) < 2)
    p = np.array([[px, py]], np.float32)
    np.testing.assert_allclose(lb.to_frame(lb.to_input(p)), p, rtol=1e-4, atol=2e-2)


@pytest.mark.parametrize(("in_w", "in_h"), [(128, 128), (224, 176), (256, 192), (64, 64)])
def test_a_bright_square_lands_where_the_mapping_says_in_the_rendered_input(in_w: int, in_h: int) -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[200:300, 400:500] = 255  # frame box (400, 200)-(500, 300)
    region = (100, 50, 480, 420)
    lb = fit(region, in_w, in_h)
    out = np.empty((in_h, in_w, 3), np.float32)
    render(frame, lb, out)
    # The bright area's edges in the input, found where the signal crosses half level.
    col = out[:, :, 0].max(axis=0) > 0.0
    row = out[:, :, 0].max(axis=1) > 0.0
    xs, ys = np.flatnonzero(col), np.flatnonzero(row)
    (ex1, ey1), (ex2, ey2) = lb.to_input(np.array([[400.0, 200.0], [500.0, 300.0]]))
    assert abs(xs[0] - ex1) <= 1.0 and abs(xs[-1] + 1 - ex2) <= 1.0
    assert abs(ys[0] - ey1) <= 1.0 and abs(ys[-1] + 1 - ey2) <= 1.0
    # Padding is black (-1) and image values stay in [-1, 1].
    assert out.min() >= -1.0 and out.max() <= 1.0
    if lb.pad_y:
        assert np.all(out[: lb.pad_y] == -1.0)


def test_rendering_converts_bgr_to_rgb_in_minus_one_to_one() -> None:
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[..., 0] = 255  # pure blue in BGR
    lb = fit((0, 0, 64, 64), 64, 64)
    out = np.empty((64, 64, 3), np.float32)
    render(frame, lb, out)
    np.testing.assert_allclose(out[10, 10], [-1.0, -1.0, 1.0])


def test_shrinking_keeps_the_centre_of_mass_of_a_spot_where_the_scale_puts_it() -> None:
    # An exact mapping: no half-pixel shift from the integer pre-shrink.
    img = np.zeros((480, 640, 3), np.uint8)
    img[237:243, 317:323] = 255  # centred on (320, 240)
    small = shrink(img, 224, 168).astype(np.float64)[..., 0]
    ys, xs = np.indices(small.shape)
    cx, cy = (small * (xs + 0.5)).sum() / small.sum(), (small * (ys + 0.5)).sum() / small.sum()
    assert cx == pytest.approx(320 * 224 / 640, abs=0.05) and cy == pytest.approx(240 * 168 / 480, abs=0.05)
