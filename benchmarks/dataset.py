"""The held-out UTKFace test split, labels from file names, a tiny stand-in dataset, and canvases for the detectors."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

# FairFace's 9 age groups, lower bound in years (0-2, 3-9, 10-19, ..., 70+).
AGE_GROUP_MIN: tuple[int, ...] = (0, 3, 10, 20, 30, 40, 50, 60, 70)
AGE_GROUP_LABELS: tuple[str, ...] = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
RACES: tuple[str, ...] = ("white", "black", "asian", "indian", "other")
GENDERS: tuple[str, ...] = ("male", "female")
_UTK_RE = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d+)\.jpg\.chip\.jpg$")
TEST_PERCENT_FROM = 85  # a file is held out iff int(sha256[:8], 16) % 100 >= 85


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled face chip of the held-out split."""

    path: Path
    age: int
    gender: int  # index into GENDERS
    race: int  # index into RACES


@dataclass
class HeldOut:
    items: list[Item]
    skipped: Counter[str] = field(default_factory=Counter)
    total_files: int = 0


def age_group(age: float) -> int:
    """Index of the FairFace age group holding `age` years."""
    return int(np.searchsorted(np.asarray(AGE_GROUP_MIN), age, side="right") - 1)


def split_of(sha_hex: str) -> str:
    """'test' or 'train' for a file's sha256, the toolchain's duplicate-safe rule (identical bytes share a side)."""
    try:
        from conversion.data import split_of as toolchain_split_of

        return str(toolchain_split_of(sha_hex))
    except ImportError:
        return "test" if int(sha_hex[:8], 16) % 100 >= TEST_PERCENT_FROM else "train"


def is_held_out(sha_hex: str) -> bool:
    return split_of(sha_hex) == "test"


def parse_name(name: str) -> tuple[int, int, int] | None:
    """(age, gender, race) from a UTKFace file name, or None when the name is malformed."""
    m = _UTK_RE.match(name)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def held_out_items(root: Path, limit: int | None = None, seed: int = 0) -> HeldOut:
    """Held-out items of a UTKFace folder; malformed names and unreadable files are skipped and counted."""
    root = Path(root)
    out = HeldOut([])
    for p in sorted(root.iterdir()):
        if not p.is_file():
            continue
        out.total_files += 1
        labels = parse_name(p.name)
        if labels is None:
            out.skipped["malformed name"] += 1
            continue
        if not is_held_out(hashlib.sha256(p.read_bytes()).hexdigest()):
            continue
        out.items.append(Item(p, *labels))
    if limit is not None and len(out.items) > limit:
        # A seeded sample, sorted again so runs with the same limit see the same images in the same order.
        idx = np.random.default_rng(seed).choice(len(out.items), size=limit, replace=False)
        out.items = [out.items[i] for i in sorted(idx)]
    log.info(
        "held-out split: %d of %d files (%s)", len(out.items), out.total_files, dict(out.skipped) or "none skipped"
    )
    return out


def read_bgr(path: Path) -> np.ndarray | None:
    """Decode an image as BGR uint8, or None (logged) when it is not a readable image."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        log.warning("skipping unreadable image %s", path)
        return None
    return img


CANVAS_SIZE = 400
CANVAS_FILL = (128, 128, 128)


def chip_canvas(chip_bgr: np.ndarray, size: int = CANVAS_SIZE) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Paste a 200x200 UTKFace chip in the middle of a flat grey square so every detector sees context around it.

    UTKFace chips are cropped so tightly that no detector (BlazeFace, dlib HOG) fires on the bare chip; with a
    100 px grey border the face sits where a detector expects one. Returns the canvas and the chip's box.
    """
    h, w = chip_bgr.shape[:2]
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = CANVAS_FILL
    x0, y0 = (size - w) // 2, (size - h) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = chip_bgr
    return canvas, (x0, y0, x0 + w, y0 + h)


def write_tiny_dataset(out_dir: Path, n: int = 12, seed: int = 0) -> list[Path]:
    """A dozen UTKFace-named 200x200 chips cut from scikit-image's public-domain astronaut photo (for smoke tests).

    Names are chosen so that every file lands in the held-out split (the split rule hashes the bytes, so a
    tiny pixel change is retried until the hash says 'test'). Labels are the astronaut's (female, white).
    """
    from skimage import data

    out_dir.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(seed)
    paths: list[Path] = []
    while len(paths) < n:
        side = int(rng.integers(120, 160))
        x0, y0 = int(rng.integers(165, 190)), int(rng.integers(15, 45))
        chip = cv2.resize(bgr[y0 : y0 + side, x0 : x0 + side], (200, 200), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", chip, [cv2.IMWRITE_JPEG_QUALITY, 90])
        blob = buf.tobytes()
        if not ok or not is_held_out(hashlib.sha256(blob).hexdigest()):
            continue
        age = 35 + len(paths) % 10
        p = out_dir / f"{age}_1_0_2017011217{len(paths):07d}.jpg.chip.jpg"
        p.write_bytes(blob)
        paths.append(p)
    (out_dir / "39_1_20170116174525125.jpg.chip.jpg").write_bytes(blob)  # malformed name, as in UTKFace
    return paths
