"""Inference-identical preprocessing of dataset face chips, shared by quantization calibration and verification."""

from __future__ import annotations

import cv2
import numpy as np

from conversion.data import Sample

# Model input normalisation (MobileNetV2 convention): x = (pixel - MEAN) / STD on RGB values 0..255 → [-1, 1].
MEAN, STD = 127.5, 127.5


def center_crop(rgb: np.ndarray, frac: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = int(round(min(h, w) * frac))
    y0, x0 = (h - side) // 2, (w - side) // 2
    return rgb[y0 : y0 + side, x0 : x0 + side]


def chip_to_input(rgb: np.ndarray, size: int, crop_frac: float) -> np.ndarray:
    """RGB uint8 face chip → float32 (size, size, 3) in [-1, 1]: the centre crop the training used at evaluation."""
    crop = center_crop(rgb, crop_frac)
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return (crop.astype(np.float32) - MEAN) / STD


def stratified_sample(samples: list[Sample], n: int, seed: int) -> list[Sample]:
    """Up to n samples spread evenly over (race, gender, age group) cells, so calibration sees every class."""
    rng = np.random.default_rng(seed)
    cells: dict[tuple[int, int, int], list[Sample]] = {}
    for s in samples:
        cells.setdefault((s.race, s.gender, s.age_group), []).append(s)
    for v in cells.values():
        rng.shuffle(v)  # type: ignore[arg-type]
    out: list[Sample] = []
    keys = sorted(cells)
    i = 0
    while len(out) < n and any(cells.values()):
        k = keys[i % len(keys)]
        if cells[k]:
            out.append(cells[k].pop())
        i += 1
    return out
