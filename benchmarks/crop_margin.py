"""Calibrate the attribute crop margin end to end on the validation split: chip pasted into a 640x480 frame →
detector → crop with each margin → int8 model. Usage: python -m benchmarks.crop_margin [-0.15,-0.07,0]"""

import sys
from pathlib import Path

import cv2
import numpy as np

from conversion.data import content_sha256, read_utkface_dir, split_of
from edge_agent.classify import AttributeClassifier
from edge_agent.classify.preprocess import crop_face
from edge_agent.detect import DetectorConfig, create_detector
from edge_agent.modelmeta import CropSpec

det = create_detector(DetectorConfig())
clf = AttributeClassifier(None)
ds = read_utkface_dir(Path("/work/shared/data/utkface"))
rng = np.random.default_rng(1)
val = [
    s
    for s in (ds.samples[i] for i in rng.choice(len(ds.samples), 3000, replace=False))
    if split_of(content_sha256(s.path)) == "val"
][:250]
margins = [
    float(m)
    for m in (sys.argv[1].split(",") if len(sys.argv) > 1 else ["-0.2", "-0.15", "-0.1", "-0.07", "-0.03", "0", "0.05"])
]
hits = {m: [0, 0, 0, 0.0] for m in margins}
n = 0
for s in val:
    chip = cv2.imread(str(s.path))
    side = int(rng.integers(90, 200))
    chip = cv2.resize(chip, (side, side), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 110, np.uint8)
    x0, y0 = int(rng.integers(0, 640 - side)), int(rng.integers(0, 480 - side))
    canvas[y0 : y0 + side, x0 : x0 + side] = chip
    d = det.detect(canvas)
    if not d:
        continue
    n += 1
    box = d[0].box
    for m in margins:
        a = clf.classify_crop(crop_face(canvas, box, CropSpec(m, True, "none"), 64))
        hits[m][0] += a.gender.labels.index(a.gender.top[0]) == s.gender
        hits[m][1] += a.race.labels.index(a.race.top[0]) == s.race
        hits[m][2] += a.age.labels.index(a.age.top[0]) == s.age_group
        hits[m][3] += abs(a.age_years - s.age)
for m in margins:
    g, r, ag, mae = hits[m]
    print(f"margin {m:+.2f}: gender {g / n:.3f} race {r / n:.3f} age {ag / n:.3f} mae {mae / n:.2f}  (n={n})")
