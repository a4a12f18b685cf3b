"""Pure metric functions for the accuracy comparison (numpy only, no models)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.dataset import RACES, age_group


@dataclass(frozen=True, slots=True)
class Prediction:
    """One contender's answer for one image; gender None when nothing was detected (a miss)."""

    gender: int | None  # 0 male, 1 female
    age_years: float | None
    age_group: int | None  # FairFace group index


def group_of_years(age: float | None) -> int | None:
    return None if age is None else age_group(age)


def summarize(
    truth_age: Sequence[float],
    truth_gender: Sequence[int],
    truth_race: Sequence[int],
    preds: Sequence[Prediction],
    miss_is_wrong: bool,
) -> dict[str, float | int | dict[str, float]]:
    """Gender accuracy (overall, per race), age MAE, age-group exact / one-off on the images given.

    With miss_is_wrong, a missed face counts as a wrong answer for every accuracy and is left out of the MAE
    (there is no age to compare); without it, misses are dropped from every figure.
    """
    ta, tg, tr = np.asarray(truth_age, float), np.asarray(truth_gender, int), np.asarray(truth_race, int)
    hit = np.array([p.gender is not None for p in preds], bool)
    keep = np.ones_like(hit) if miss_is_wrong else hit
    g = np.array([-1 if p.gender is None else p.gender for p in preds], int)
    grp = np.array([-9 if p.age_group is None else p.age_group for p in preds], int)
    yrs = np.array([np.nan if p.age_years is None else p.age_years for p in preds], float)
    tgrp = np.array([age_group(a) for a in ta], int)
    n = int(keep.sum())

    def rate(ok: np.ndarray, mask: np.ndarray) -> float:
        m = mask & keep
        return float(ok[m].mean()) if m.any() else float("nan")

    everything = np.ones_like(hit)
    have_age = keep & ~np.isnan(yrs)
    return {
        "n": n,
        "misses": int((~hit).sum()),
        "gender_acc": rate(g == tg, everything),
        "gender_acc_by_race": {name: rate(g == tg, tr == i) for i, name in enumerate(RACES)},
        "age_mae": float(np.abs(yrs[have_age] - ta[have_age]).mean()) if have_age.any() else float("nan"),
        "age_group_exact": rate(grp == tgrp, everything),
        "age_group_one_off": rate(np.abs(grp - tgrp) <= 1, everything),
    }


def race_gap(by_race: dict[str, float]) -> float:
    """Best minus worst per-race gender accuracy, in the same unit (NaN groups ignored)."""
    vals = [v for v in by_race.values() if not np.isnan(v)]
    return float(max(vals) - min(vals)) if vals else float("nan")
