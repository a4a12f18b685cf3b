"""Golden outputs of the detector, region search and classifier, compared between x86-64 and aarch64.

Int8 (and XNNPACK float) kernels differ between ARM and x86, so the same model on the same input can give
slightly different numbers. `write` runs the device path here and stores inputs (PNG) and outputs (JSON);
`check` runs it again, typically on aarch64 (a Raspberry Pi, or Debian's arm64 Python under qemu-user-static,
see docs/aarch64.md), and compares within tolerances. It imports only the device install's packages (numpy,
OpenCV, LiteRT, pydantic), never scikit-image or TensorFlow. Timings are not taken: under emulation they mean
nothing.

    python -m benchmarks.arm_golden write DIR [--utkface ../shared/data/utkface]
    python -m benchmarks.arm_golden check DIR        # exit 1 when an output is outside tolerance
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

TOL = {"box_px": 2.0, "keypoint_px": 2.0, "score": 0.03, "prob": 0.04, "age_years": 1.5}


def _inputs(out: Path, utk: Path | None) -> None:
    """Frames to run: the astronaut photograph, and held-out chips pasted at 3 sizes on a grey frame."""
    out.mkdir(parents=True, exist_ok=True)
    from skimage import data  # only when writing the inputs (x86 side)

    cv2.imwrite(str(out / "astronaut.png"), data.astronaut()[:, :, ::-1])
    chips = []
    if utk is not None and utk.is_dir():
        from benchmarks.synth_frames import utkface_test_crops

        chips = [c.image for c in utkface_test_crops(utk, 6, seed=3)]
    for i, chip in enumerate(chips):
        frame = np.full((480, 640, 3), 120, np.uint8)
        for j, side in enumerate((180, 110, 64)):
            c = cv2.resize(chip, (side, side), interpolation=cv2.INTER_AREA)
            x, y = 20 + j * 220, 140
            frame[y : y + side, x : x + side] = c
        cv2.imwrite(str(out / f"utk_{i}.png"), frame)
        cv2.imwrite(str(out / f"chip_{i}.png"), chip)


def run(inputs: Path) -> dict[str, Any]:
    """Detector, region search (around each full-scan box) and classifier outputs for every input frame."""
    from edge_agent.classify import PACKAGED_MODEL, AttributeClassifier
    from edge_agent.detect.blazeface import BlazeFaceDetector
    from edge_agent.detect.config import DetectorConfig
    from edge_agent.detect.region import RegionFinder
    from edge_agent.records import TrackHint

    cfg = DetectorConfig()
    det, region = BlazeFaceDetector(cfg), RegionFinder(cfg)
    clf = AttributeClassifier(PACKAGED_MODEL, ("age", "gender", "race"))
    out: dict[str, Any] = {"machine": platform.machine(), "python": platform.python_version(), "frames": {}}
    try:
        for path in sorted(inputs.glob("*.png")):
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if path.name.startswith("chip_"):
                out["frames"][path.name] = {"crop": _attrs(clf.classify_crop(cv2.resize(img, (64, 64))))}
                continue
            faces = det.detect(img)
            hints = [TrackHint(str(i), f.box, 0.0) for i, f in enumerate(faces)]
            refound, _ = region.search(img, hints)
            attrs = clf.classify(img, faces)
            out["frames"][path.name] = {
                "faces": [_det(f) | {"attributes": _attrs(a)} for f, a in zip(faces, attrs, strict=True)],
                "region": [_det(f) for f in refound],
            }
    finally:
        for part in (clf, region, det):
            part.close()
    return out


def _det(d: Any) -> dict[str, Any]:
    return {"box": [d.box.x1, d.box.y1, d.box.x2, d.box.y2], "score": d.score, "keypoints": d.keypoints.tolist()}


def _attrs(a: Any) -> dict[str, Any]:
    return {
        "age": list(a.age.probs) if a.age else None,
        "gender": list(a.gender.probs) if a.gender else None,
        "race": list(a.race.probs) if a.race else None,
        "age_years": a.age_years,
    }


def compare(ref: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Every difference beyond tolerance, as one line each (empty: they agree)."""
    bad: list[str] = []
    for name, r in ref["frames"].items():
        g = got["frames"].get(name)
        if g is None:
            bad.append(f"{name}: missing")
            continue
        if "crop" in r:
            bad += [f"{name} crop: {m}" for m in _cmp_attrs(r["crop"], g["crop"])]
            continue
        for kind in ("faces", "region"):
            if len(r[kind]) != len(g[kind]):
                bad.append(f"{name} {kind}: {len(r[kind])} faces on x86, {len(g[kind])} here")
                continue
            for i, (a, b) in enumerate(_pairs(r[kind], g[kind])):
                where = f"{name} {kind}[{i}]"
                bad += [f"{where}: {m}" for m in _cmp_det(a, b)]
                if "attributes" in a:
                    bad += [f"{where}: {m}" for m in _cmp_attrs(a["attributes"], b["attributes"])]
    return bad


def _pairs(ref: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each reference face with the face here that overlaps it most (order by score can swap on near-ties)."""

    def iou(a: list[float], b: list[float]) -> float:
        ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    return [(a, max(got, key=lambda b: iou(a["box"], b["box"]))) for a in ref] if got else []


def _cmp_det(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    if (d := float(np.abs(np.subtract(a["box"], b["box"])).max())) > TOL["box_px"]:
        out.append(f"box differs by {d:.2f} px")
    if (d := float(np.abs(np.subtract(a["keypoints"], b["keypoints"])).max())) > TOL["keypoint_px"]:
        out.append(f"keypoints differ by {d:.2f} px")
    if (d := abs(a["score"] - b["score"])) > TOL["score"]:
        out.append(f"score differs by {d:.3f}")
    return out


def _cmp_attrs(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for head in ("age", "gender", "race"):
        if a[head] is None:
            continue
        d = float(np.abs(np.subtract(a[head], b[head])).max())
        if d > TOL["prob"]:
            out.append(f"{head} probabilities differ by {d:.3f}")
        if (
            int(np.argmax(a[head])) != int(np.argmax(b[head]))
            and sorted(a[head])[-1] - sorted(a[head])[-2] > TOL["prob"]
        ):
            out.append(f"{head} top class differs")
    if a["age_years"] is not None and abs(a["age_years"] - b["age_years"]) > TOL["age_years"]:
        out.append(f"age_years differs by {abs(a['age_years'] - b['age_years']):.2f}")
    return out


def max_diffs(ref: dict[str, Any], got: dict[str, Any]) -> dict[str, float]:
    """The largest difference of each kind, for the record (docs/aarch64.md)."""
    m = dict.fromkeys(("box_px", "keypoint_px", "score", "prob", "age_years"), 0.0)
    for name, r in ref["frames"].items():
        g = got["frames"].get(name, {})
        pairs = [(r["crop"], g.get("crop"))] if "crop" in r else []
        for kind in ("faces", "region"):
            for a, b in _pairs(r.get(kind, []), g.get(kind, [])):
                m["box_px"] = max(m["box_px"], float(np.abs(np.subtract(a["box"], b["box"])).max()))
                m["keypoint_px"] = max(
                    m["keypoint_px"], float(np.abs(np.subtract(a["keypoints"], b["keypoints"])).max())
                )
                m["score"] = max(m["score"], abs(a["score"] - b["score"]))
                if "attributes" in a:
                    pairs.append((a["attributes"], b["attributes"]))
        for a, b in pairs:
            if b is None:
                continue
            for head in ("age", "gender", "race"):
                if a[head] is not None:
                    m["prob"] = max(m["prob"], float(np.abs(np.subtract(a[head], b[head])).max()))
            if a["age_years"] is not None:
                m["age_years"] = max(m["age_years"], abs(a["age_years"] - b["age_years"]))
    return {k: round(v, 4) for k, v in m.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.arm_golden", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["write", "check"])
    p.add_argument("dir", type=Path)
    p.add_argument("--utkface", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface")
    a = p.parse_args(argv)
    if a.action == "write":
        _inputs(a.dir / "inputs", a.utkface)
        (a.dir / "reference.json").write_text(json.dumps(run(a.dir / "inputs")))
        print(f"wrote {a.dir / 'reference.json'}")
        return 0
    ref = json.loads((a.dir / "reference.json").read_text())
    got = run(a.dir / "inputs")
    (a.dir / f"outputs_{got['machine']}.json").write_text(json.dumps(got))
    bad = compare(ref, got)
    print(
        json.dumps(
            {
                "reference": ref["machine"],
                "here": got["machine"],
                "frames": len(ref["frames"]),
                "max_diff": max_diffs(ref, got),
                "tolerance": TOL,
                "outside_tolerance": bad,
            },
            indent=1,
        )
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
