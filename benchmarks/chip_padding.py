"""How UTKFace-style tight chips must be presented for the agent's detector to fire, and what framing it gives.

`python -m benchmarks.chip_padding --data ../shared/data/utkface --data ../shared/data/aaf/images -n 300`

For a seeded sample of images per folder: BlazeFace (the agent's default detector) on the image as it is, and on
the image pasted into a canvas with a border of half its side per side (grey, replicated edge, mirrored edge, or
a blurred enlargement). Prints the share of images with a face and the box width as a fraction of the image.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import cv2
import numpy as np

from conversion.boxes import _pick
from edge_agent.detect.base import create_detector
from edge_agent.detect.config import DetectorConfig

MODES = ("as is", "grey", "replicate", "reflect", "blur")


def canvas(img: np.ndarray, mode: str, frac: float = 0.5) -> np.ndarray:
    p = int(img.shape[0] * frac)
    if mode == "as is":
        return img
    if mode == "grey":
        return cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT, value=(127, 127, 127))
    if mode == "replicate":
        return cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REPLICATE)
    if mode == "reflect":
        return cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REFLECT_101)
    big = cv2.resize(cv2.GaussianBlur(img, (0, 0), 8), (img.shape[1] + 2 * p, img.shape[0] + 2 * p))
    big[p : p + img.shape[0], p : p + img.shape[1]] = img
    return big


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", type=Path, required=True, help="a folder of images")
    ap.add_argument("-n", type=int, default=300)
    args = ap.parse_args(argv)
    det = create_detector(DetectorConfig())
    print("| folder | presentation | face found | box width / image side (median, p10-p90) |")
    print("|---|---|---|---|")
    for folder in args.data:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))
        random.Random(0).shuffle(files)
        files = files[: args.n]
        for mode in MODES:
            found, sides = 0, []
            for f in files:
                img = cv2.imread(str(f))
                if img is None:
                    continue
                c = canvas(img, mode)
                d = _pick(det.detect(c), c.shape[1], c.shape[0])
                if d is not None:
                    found += 1
                    sides.append(d.box.width / img.shape[1])  # type: ignore[attr-defined]
            q = np.percentile(sides, [50, 10, 90]) if sides else [float("nan")] * 3
            print(
                f"| {folder.name} | {mode} | {found / len(files) * 100:.1f}% of {len(files)} | "
                f"{q[0]:.2f} ({q[1]:.2f}-{q[2]:.2f}) |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
