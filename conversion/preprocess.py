"""Model input constants and the class-stratified sampling of calibration faces."""

from __future__ import annotations

import numpy as np

from conversion.data import Sample

# Model input normalisation (MobileNetV2 convention): x = (pixel - MEAN) / STD on RGB values 0..255 → [-1, 1].
MEAN, STD = 127.5, 127.5


def stratified_sample(samples: list[Sample], n: int, seed: int) -> list[Sample]:
    """Up to n samples spread evenly over (source, race, gender, age group) cells: calibration sees every class."""
    rng = np.random.default_rng(seed)
    cells: dict[tuple[str, int, int, int], list[Sample]] = {}
    for s in samples:
        cells.setdefault((s.source, s.race, s.gender, s.age_group), []).append(s)
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
