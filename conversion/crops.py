"""Training chips cut the way the device cuts faces: detector box → the agent's own crop function.

Each training image is stored as a *context chip*: the square the device would crop (`crop_box`, the model's
margin) grown by CONTEXT, cut and resized by `edge_agent.classify.preprocess.crop_face`, the function the agent runs
on every face. Its central 1/CONTEXT is exactly the device crop; the margin around it is real image (or the device's
replicated border), so augmentation can move, scale and rotate the window the way a detector box wanders.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from conversion.boxes import FaceBox, detect_boxes
from conversion.data import Arrays, DataError, Dataset, Sample, content_sha256, split_of
from edge_agent.classify.preprocess import crop_box, crop_face
from edge_agent.modelmeta import CropSpec
from edge_agent.records import Box

log = logging.getLogger(__name__)

# Context chip side / device crop side. Covers each augmentation alone (±25% scale, ±10% shift, ±20° rotation); the
# rare worst case of all three at once reaches ~0.9 of the crop side per side, beyond 0.8, and its corners are filled
# with the chip's edge pixels.
CONTEXT = 1.6


def chip_size(input_size: int, context: float = CONTEXT) -> int:
    return round(input_size * context)


def fallback_boxes(
    samples: list[Sample], shas: list[str], sizes: list[tuple[int, int]], boxes: dict[str, FaceBox | None]
) -> dict[str, tuple[float, float, float, float]]:
    """Per source, the median detector box relative to the image (x1/w, y1/h, x2/w, y2/h): the 'dataset crop' used
    where the detector finds nothing, framed like the boxes it does find."""
    rel: dict[str, list[tuple[float, ...]]] = {}
    for s, sha, (w, h) in zip(samples, shas, sizes, strict=False):
        fb = boxes.get(sha)
        if fb is not None and w > 0:
            x1, y1, x2, y2 = fb.box
            rel.setdefault(s.source, []).append((x1 / w, y1 / h, x2 / w, y2 / h))
    out = {k: tuple(float(v) for v in np.median(np.array(v), axis=0)) for k, v in rel.items()}
    for s in samples:
        out.setdefault(s.source, (0.035, 0.035, 0.965, 0.965))  # UTKFace-like chip: the box covers ~93% of it
    return out  # type: ignore[return-value]


def face_box(fb: FaceBox | None, fallback: tuple[float, float, float, float], w: int, h: int) -> Box:
    if fb is not None:
        return Box(*fb.box)
    return Box(fallback[0] * w, fallback[1] * h, fallback[2] * w, fallback[3] * h)


def context_chip(rgb: np.ndarray, box: Box, margin: float, size: int, context: float = CONTEXT) -> np.ndarray:
    """The device crop of `box` (margin per side), grown by `context`, through the agent's crop function."""
    window = crop_box(box, CropSpec(margin, True, "none"))
    return crop_face(rgb, window.expand_square((context - 1.0) / 2.0), CropSpec(0.0, True, "none"), size)


def _read(s: Sample) -> tuple[str, np.ndarray | None]:
    try:
        sha = content_sha256(s.path)
    except OSError:
        return "", None
    bgr = cv2.imread(str(s.path), cv2.IMREAD_COLOR)
    if bgr is None or min(bgr.shape[:2]) < 8:
        return sha, None
    return sha, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def build_arrays(
    ds: Dataset,
    input_size: int,
    margin: float,
    cache_dir: Path | None,
    workers: int = 2,
    context: float = CONTEXT,
    images_out: Path | None = None,
) -> tuple[Arrays, Counter[str]]:
    """Detector boxes for every sample (cached), then context chips cut by the device crop. Returns the arrays and
    detector counts per source ("aaf: found as is", "utkface: not found", ...).

    Memory: the chips go straight into one preallocated array, in split order (train, val, test), so a split is a
    contiguous slice and `Arrays.subset` a view, not a copy. With `images_out` that array is a .npy file on disk,
    memory-mapped (at 160 px input 33k chips are 6.6 GB; a list, a stack and per-split copies held them three times).
    """

    def probe(s: Sample) -> tuple[str, tuple[int, int] | None]:
        sha, rgb = _read(s)
        return sha, (None if rgb is None else (rgb.shape[1], rgb.shape[0]))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        probed = list(pool.map(probe, ds.samples))
    skipped = Counter(ds.skipped)
    ok = []
    for i, (_sha, wh) in enumerate(probed):
        if wh is None:
            skipped["unreadable image"] += 1
            log.warning("skipping unreadable image %s", ds.samples[i].path)
        else:
            ok.append(i)
    read = [sha for sha, _ in probed]
    ok.sort(key=lambda i: SPLIT_ORDER.get(split_of(read[i]), 3))  # stable: file order within a split
    boxes, _ = detect_boxes([(read[i], ds.samples[i].path, ds.samples[i].tight) for i in ok], cache_dir)
    fallback = fallback_boxes([ds.samples[i] for i in ok], [read[i] for i in ok], [probed[i][1] for i in ok], boxes)  # type: ignore[misc]
    size = chip_size(input_size, context)

    def chip(i: int) -> np.ndarray | None:
        rgb = _read(ds.samples[i])[1]
        if rgb is None:
            return None
        h, w = rgb.shape[:2]
        return context_chip(
            rgb, face_box(boxes.get(read[i]), fallback[ds.samples[i].source], w, h), margin, size, context
        )

    shape = (len(ok), size, size, 3)
    if images_out is not None:
        images = np.lib.format.open_memmap(images_out, mode="w+", dtype=np.uint8, shape=shape)
    else:
        images = np.empty(shape, np.uint8)
    keep: list[int] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, c in zip(ok, pool.map(chip, ok), strict=True):
            if c is None:  # unreadable on the second read (the file changed): skipped, the rest moves up
                skipped["unreadable image"] += 1
                log.warning("skipping unreadable image %s", ds.samples[i].path)
                continue
            images[len(keep)] = c
            keep.append(i)
    if isinstance(images, np.memmap):
        images.flush()
    if not keep:
        raise DataError(f"no readable images ({sum(skipped.values())} skipped)")
    ss = [ds.samples[i] for i in keep]
    counts: Counter[str] = Counter()
    for i in keep:
        fb = boxes.get(read[i])
        counts[
            f"{ds.samples[i].source}: "
            + ("not found" if fb is None else "found on padded canvas" if fb.padded else "found as is")
        ] += 1
    arr = Arrays(
        images=images[: len(keep)],
        age=np.array([s.age for s in ss], np.float32),
        age_group=np.array([s.age_group for s in ss], np.int32),
        gender=np.array([s.gender for s in ss], np.int32),
        race=np.array([s.race for s in ss], np.int32),
        split=np.array([split_of(read[i]) for i in keep]),
        paths=[str(s.path) for s in ss],
        skipped=skipped,
        source=np.array([s.source for s in ss]),
        detected=np.array([boxes.get(read[i]) is not None for i in keep]),
    )
    return arr, counts
