"""Held-out faces through the device path: the agent's detector box, the agent's crop function, the model's input.

Used by calibration (quantize), temperature fitting and verification, so every figure is measured on crops cut the
way `edge-agent` cuts them on a camera. The *dataset crop* (each source's median detector box, no detector) is kept
beside it, so the cost or gain of real detector framing is visible.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from conversion.boxes import detect_boxes
from conversion.crops import face_box, fallback_boxes
from conversion.data import Sample, content_sha256, read_sources, split_of
from conversion.errors import ConversionError
from edge_agent.classify.preprocess import crop_face, to_input
from edge_agent.modelmeta import CropSpec, Preprocess
from edge_agent.records import Box

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    """Decoded BGR images of one split with their detector box (or the fallback) and their dataset-crop box."""

    samples: list[Sample]
    images: list[np.ndarray]
    boxes: list[Box]
    dataset_boxes: list[Box]
    detected: np.ndarray
    skipped: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def sources(self) -> np.ndarray:
        return np.array([s.source for s in self.samples])

    def take(self, idx: np.ndarray | list[int]) -> EvalSet:
        idx = list(np.asarray(idx, int))
        return EvalSet(
            [self.samples[i] for i in idx],
            [self.images[i] for i in idx],
            [self.boxes[i] for i in idx],
            [self.dataset_boxes[i] for i in idx],
            self.detected[idx],
            self.skipped,
        )

    def truth(self) -> dict[str, np.ndarray]:
        return {
            "age": np.array([s.age_group for s in self.samples]),
            "gender": np.array([s.gender for s in self.samples]),
            "race": np.array([s.race for s in self.samples]),
            "age_years": np.array([s.age for s in self.samples]),
        }


def load_eval_set(
    data: list[Path],
    split: str,
    cache_dir: Path | None,
    limit: int | None = None,
    seed: int = 0,
    stratify: int | None = None,
) -> EvalSet:
    """Samples of `split` (or "all") from every source, with detector boxes from the shared box cache.

    `stratify=n` keeps n samples spread over (source, race, gender, age group) cells *before* anything is decoded
    (calibration needs 300 faces, not the whole training split in memory).
    """
    from conversion.preprocess import stratified_sample

    ds = read_sources(list(data))
    shas = [content_sha256(s.path) for s in ds.samples]
    pick = [i for i, h in enumerate(shas) if split == "all" or split_of(h) == split]
    if stratify:
        # Twice as many as needed, in stratified order, so unreadable files can be skipped and the cut taken later.
        index = {id(ds.samples[i]): i for i in pick}
        pick = [index[id(s)] for s in stratified_sample([ds.samples[i] for i in pick], stratify * 2, seed)]
    if limit and len(pick) > limit:
        # Seeded random subset: files are sorted by label (UTKFace names start with the age), a prefix is biased.
        pick = sorted(np.random.default_rng(seed).choice(pick, size=limit, replace=False).tolist())
    skipped = Counter(ds.skipped)
    samples, images, kept_shas = [], [], []
    for i in pick:
        bgr = cv2.imread(str(ds.samples[i].path), cv2.IMREAD_COLOR)
        if bgr is None or min(bgr.shape[:2]) < 8:
            skipped["unreadable image"] += 1
            log.warning("skipping unreadable image %s", ds.samples[i].path)
            continue
        samples.append(ds.samples[i])
        images.append(bgr)
        kept_shas.append(shas[i])
    if not samples:
        raise ConversionError(f"no readable images in {', '.join(map(str, data))} for split {split!r}")
    found, _ = detect_boxes([(h, s.path, s.tight) for h, s in zip(kept_shas, samples, strict=False)], cache_dir)
    sizes = [(im.shape[1], im.shape[0]) for im in images]
    fb = fallback_boxes(samples, kept_shas, sizes, found)
    boxes, dboxes = [], []
    for s, h, (w, hh) in zip(samples, kept_shas, sizes, strict=False):
        boxes.append(face_box(found.get(h), fb[s.source], w, hh))
        dboxes.append(face_box(None, fb[s.source], w, hh))
    detected = np.array([found.get(h) is not None for h in kept_shas])
    log.info(
        "eval set %s: %d images, detector found %d (%d use the dataset crop)",
        split,
        len(samples),
        int(detected.sum()),
        int((~detected).sum()),
    )
    return EvalSet(samples, images, boxes, dboxes, detected, skipped)


def shifted(box: Box, dx: float, dy: float) -> Box:
    """The box moved by fractions of its own width/height (a detector box wandering between frames)."""
    return box.translate(dx * box.width, dy * box.height)


def device_inputs(
    ev: EvalSet, pre: Preprocess, margin: float, dataset_crop: bool = False, dx: float = 0.0, dy: float = 0.0
) -> np.ndarray:
    """Model inputs exactly as the agent makes them: crop_face(frame, box, margin) then to_input."""
    spec = CropSpec(margin, True, "none")
    boxes = ev.dataset_boxes if dataset_crop else ev.boxes
    return np.stack(
        [
            to_input(crop_face(im, shifted(b, dx, dy), spec, pre.size), pre)
            for im, b in zip(ev.images, boxes, strict=False)
        ]
    )
