"""Attribute accuracy, ours against the peer, on the same held-out UTKFace images fed the same way.

Each 200x200 chip is pasted in the middle of a 400x400 grey canvas (benchmarks.dataset.chip_canvas) and each
contender runs its own detector and classifier on that canvas. Figures are given twice: on the images where
both found the face, and on all images with a miss counted as a wrong answer. The peer's crop-only path
(`predict_face` on the bare chip, no detection) is reported as well, as its best case.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from benchmarks import ours, venvs
from benchmarks.dataset import CANVAS_SIZE, GENDERS, HeldOut, chip_canvas, read_bgr
from benchmarks.metrics import Prediction, group_of_years, race_gap, summarize

log = logging.getLogger(__name__)


def run_ours(items: HeldOut, model_path: Path, detector_overrides: dict[str, Any] | None = None) -> list[Prediction]:
    """Our detector + classifier on each canvas; the face nearest the centre is the pasted chip."""
    det = ours.detector(detector_overrides)
    clf = ours.classifier(model_path)
    dec = ours.decoder(model_path)
    preds = []
    try:
        for item in items.items:
            chip = read_bgr(item.path)
            if chip is None:
                preds.append(Prediction(None, None, None))
                continue
            canvas, _ = chip_canvas(chip)
            face = ours.nearest(det.detect(canvas), CANVAS_SIZE / 2, CANVAS_SIZE / 2)
            attrs = clf.classify(canvas, [face])[0] if face is not None else None
            preds.append(dec.prediction(attrs))
    finally:
        det.close()
        clf.close()
    return preds


def _peer_prediction(gender: str | None, age: float | None) -> Prediction:
    if gender is None:
        return Prediction(None, None, None)
    return Prediction(GENDERS.index(gender), age, group_of_years(age))


def run_peer(items: HeldOut) -> tuple[list[Prediction], list[Prediction]] | None:
    """(with its own HOG detection, with the chip given as the face) or None when the peer venv is unavailable."""
    py = venvs.ensure_venv("peer")
    if py is None:
        return None
    job = {"job": "accuracy", "canvas": CANVAS_SIZE, "images": [str(i.path) for i in items.items]}
    rows = venvs.run_worker(py, "benchmarks.workers.peer", job)["rows"]
    detected = [_peer_prediction(r.get("gender"), r.get("age")) for r in rows]
    given = [_peer_prediction(r.get("given_gender"), r.get("given_age")) for r in rows]
    return detected, given


def compare(items: HeldOut, model_path: Path, with_peer: bool = True) -> dict[str, Any]:
    """Every accuracy figure, keyed by contender and view; the peer part is absent when its venv is."""
    truth = ([i.age for i in items.items], [i.gender for i in items.items], [i.race for i in items.items])
    mine = run_ours(items, model_path)
    out: dict[str, Any] = {"images": len(items.items), "skipped_files": dict(items.skipped), "rows": {}}
    out["rows"]["ours, all images"] = summarize(*truth, mine, miss_is_wrong=True)
    peer = run_peer(items) if with_peer else None
    if peer is None:
        out["peer"] = "skipped (peer venv unavailable)"
        return _with_gaps(out)
    theirs, given = peer
    both = [
        k for k, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a.gender is not None and b.gender is not None
    ]

    def sub(preds: list[Prediction]) -> dict[str, Any]:
        cols = [[t[k] for k in both] for t in truth]
        return summarize(cols[0], cols[1], cols[2], [preds[k] for k in both], miss_is_wrong=False)

    out["rows"]["peer, all images"] = summarize(*truth, theirs, miss_is_wrong=True)
    out["rows"]["ours, faces both detected"] = sub(mine)
    out["rows"]["peer, faces both detected"] = sub(theirs)
    out["rows"]["peer, chip given (no detection)"] = summarize(*truth, given, miss_is_wrong=True)
    return _with_gaps(out)


def _with_gaps(out: dict[str, Any]) -> dict[str, Any]:
    for row in out["rows"].values():
        row["gender_gap_by_race"] = race_gap(row["gender_acc_by_race"])
    return out
