"""Detector probe: recall per face-width bin, false positives per frame and ms per frame for detector settings.

    python -m benchmarks.detect_probe recall [--frames 400] [--utk ../shared/data/utkface] [--option NAME ...]
    python -m benchmarks.detect_probe speed [--frames 60] [--rounds 5] [--option NAME ...]
    python -m benchmarks.detect_probe chip-box [--count 300] [--utk ../shared/data/utkface]

`recall` pastes held-out faces at face widths 20-320 px onto 640x480 scikit-image photographs (benchmarks/
synth_frames.py) and runs every option on the same frames. A detection matches a face when IoU >= 0.5 (one-to-one,
best first); unmatched detections are false positives. Timing is the median wall time of detect() (preprocessing,
inference and decoding; 1 thread) - a printed figure, not a test.
`chip-box` pastes UTKFace chips at 200 px in the middle of a frame and reports the default detector's box relative
to the chip (for setting the classifier's crop margin).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks import synth_frames as sf
from edge_agent.detect.blazeface import FULL_VIEW, BlazeFaceDetector, View
from edge_agent.detect.config import DetectorConfig
from edge_agent.records import Box, Detection

BINS = (20, 30, 40, 50, 60, 80, 120, 180, 321)
DEFAULT_UTK = Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface"


@dataclass(frozen=True)
class Option:
    name: str
    config: dict
    views: tuple[View, ...] = (FULL_VIEW,)


TILES_2X2: tuple[View, ...] = tuple(
    (r, 128) for r in ((0.0, 0.0, 0.55, 0.55), (0.45, 0.0, 1.0, 0.55), (0.0, 0.45, 0.55, 1.0), (0.45, 0.45, 1.0, 1.0))
)
PLAIN = {"refine_below_px": 0, "score_threshold": 0.5}  # MediaPipe's own threshold
OPTIONS = {
    o.name: o
    for o in (
        Option("short_w128", {"input_width": 128, **PLAIN}),
        Option("full192", {"model": "full_range", **PLAIN}),
        Option("short_w192", {"input_width": 192, **PLAIN}),
        Option("short_w224", {"input_width": 224, **PLAIN}),
        Option("short_w256", {"input_width": 256, **PLAIN}),
        Option("short_w288", {"input_width": 288, **PLAIN}),
        Option("short_w320", {"input_width": 320, **PLAIN}),
        Option("short_w128+tiles2x2", {"input_width": 128, **PLAIN}, (FULL_VIEW, *TILES_2X2)),
        Option("short_w128+band_w256", {"input_width": 128, **PLAIN}, (FULL_VIEW, ((0, 0.2, 1, 0.8), 256))),
        Option("full192+refine", {"model": "full_range"}),
        Option("short_w128+refine", {"input_width": 128}),
        Option("short_w192+refine", {"input_width": 192}),
        Option("default (short_w224+refine)", {}),
        Option("short_w256+refine", {"input_width": 256}),
        Option("short_w288+refine", {"input_width": 288}),
    )
}


def match(dets: list[Detection], truth: list[Box], iou_min: float = 0.5) -> tuple[list[bool], int]:
    """Greedy one-to-one matching, best score first: (found flag per true box, number of false positives)."""
    found = [False] * len(truth)
    fp = 0
    for d in sorted(dets, key=lambda d: -d.score):
        ious = [0.0 if found[i] else d.box.iou(t) for i, t in enumerate(truth)]
        best = int(np.argmax(ious)) if ious else -1
        if best >= 0 and ious[best] >= iou_min:
            found[best] = True
        else:
            fp += 1
    return found, fp


def make_frames(n: int, crops: list[sf.FaceCrop], seed: int) -> list[tuple[np.ndarray, list[Box]]]:
    """n frames with 1-3 faces of log-uniform widths 20-320 px on random views of the photographs."""
    rng = np.random.default_rng(seed)
    photos = sf.load_photos()
    frames: list[tuple[np.ndarray, list[Box]]] = []
    while len(frames) < n:
        k = int(rng.integers(1, 4))
        widths = np.exp(rng.uniform(np.log(20), np.log(320), size=k)).tolist()
        faces = [crops[int(i)] for i in rng.integers(0, len(crops), size=k)]
        bg = sf.random_background(rng, photos)
        try:
            frames.append(sf.make_frame(rng, faces, widths, bg))
        except sf.PlacementError:
            continue
    return frames


def evaluate(det: BlazeFaceDetector, frames: list) -> dict:
    """Recall per bin, FP per frame, median ms per frame."""
    hits = np.zeros(len(BINS) - 1)
    total = np.zeros(len(BINS) - 1)
    fps, times = 0, []
    for frame, truth in frames:
        t0 = time.perf_counter()
        dets = det.detect(frame)
        times.append(time.perf_counter() - t0)
        found, fp = match(dets, truth)
        fps += fp
        for box, ok in zip(truth, found, strict=True):
            b = int(np.searchsorted(BINS, box.width, side="right")) - 1
            if 0 <= b < len(total):
                total[b] += 1
                hits[b] += ok
    refines = getattr(det, "refine_runs", 0) / len(frames)
    return {
        "hits": hits,
        "total": total,
        "fp": fps / len(frames),
        "ms": 1000 * float(np.median(times)),
        "refines": refines,
    }


def parse_sets(items: list[str]) -> dict:
    """`key=value` overrides of DetectorConfig fields; values parsed as int, float or kept as text."""
    out: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def cmd_recall(args: argparse.Namespace) -> None:
    crops = sf.face_crops(args.utk, 400, seed=1)
    frames = make_frames(args.frames, crops, seed=args.seed)
    nfaces = sum(len(t) for _, t in frames)
    print(f"{len(frames)} frames, {nfaces} faces, {len(crops)} distinct face crops, match IoU >= 0.5")
    head = " ".join(f"{f'{a}-{b - 1}':>7}" for a, b in itertools.pairwise(BINS))
    print(f"{'option':28} {head}  >=40px  >=80px  FP/frame  ms/frame  2nd looks/frame")
    for name in args.option or list(OPTIONS):
        opt = OPTIONS[name]
        extra = {"score_threshold": args.threshold} if args.threshold else {}
        extra.update(parse_sets(args.set or []))
        cfg = DetectorConfig(models_dir=args.models_dir, **{**opt.config, **extra})
        with BlazeFaceDetector(cfg, opt.views) as det:
            det.detect(frames[0][0])  # warm-up
            r = evaluate(det, frames)
        rec = " ".join(f"{h / t:7.1%}" if t else "      -" for h, t in zip(r["hits"], r["total"], strict=True))
        i40, i80 = BINS.index(40), BINS.index(80)
        r40 = r["hits"][i40:].sum() / r["total"][i40:].sum()
        r80 = r["hits"][i80:].sum() / r["total"][i80:].sum()
        print(
            f"{name:28} {rec}  {r40:6.1%}  {r80:6.1%}  {r['fp']:8.3f}  {r['ms']:8.2f}  {r['refines']:5.2f}", flush=True
        )


def cmd_speed(args: argparse.Namespace) -> None:
    """Interleave the options round by round on the same frames, so machine load hits every one alike."""
    crops = sf.face_crops(args.utk, 100, seed=1)
    frames = make_frames(args.frames, crops, seed=args.seed)
    names = args.option or ["short_w128", "full192", "default (short_w224+refine)", "short_w256+refine"]
    dets = {n: BlazeFaceDetector(DetectorConfig(models_dir=args.models_dir, **OPTIONS[n].config), OPTIONS[n].views)
            for n in names}  # fmt: skip
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for n in names:
        dets[n].detect(frames[0][0])  # warm-up
    for _ in range(args.rounds):
        for n in names:
            for frame, _truth in frames:
                t0, c0 = time.perf_counter(), time.thread_time()
                dets[n].detect(frame)
                cpu[n].append(time.thread_time() - c0)
                wall[n].append(time.perf_counter() - t0)
    print(f"{len(frames)} frames x {args.rounds} rounds, 1 thread; ms per frame (detect: resize, inference, decode)")
    print(f"{'option':28} {'wall p50':>9} {'wall p95':>9} {'cpu p50':>8} {'cpu mean':>9}")
    for n in names:
        w, c = np.array(wall[n]) * 1000, np.array(cpu[n]) * 1000
        print(f"{n:28} {np.median(w):9.2f} {np.percentile(w, 95):9.2f} {np.median(c):8.2f} {c.mean():9.2f}")
        dets[n].close()


def cmd_chip_box(args: argparse.Namespace) -> None:
    crops = sf.utkface_test_crops(args.utk, args.count, seed=2)
    if not crops:
        raise SystemExit(f"no UTKFace test chips under {args.utk}")
    backgrounds = {
        "grey": np.full((sf.FRAME_H, sf.FRAME_W, 3), 128, np.uint8),
        "coffee": sf.load_backgrounds(["coffee"])[0],
    }
    cfg = (
        DetectorConfig(models_dir=args.models_dir, **OPTIONS[args.option].config)
        if args.option
        else DetectorConfig(models_dir=args.models_dir)
    )
    print(
        f"{len(crops)} held-out UTKFace chips pasted at 200 px, centre of 640x480; detector {cfg.model} "
        f"input_width={cfg.resolved_input_width()} refine_below_px={cfg.refine_below_px}"
    )
    x0, y0 = (sf.FRAME_W - 200) // 2, (sf.FRAME_H - 200) // 2
    with BlazeFaceDetector(cfg) as det:
        for bg_name, bg in backgrounds.items():
            rows, miss = [], 0
            for crop in crops:
                frame = bg.copy()
                frame[y0 : y0 + 200, x0 : x0 + 200] = crop.image
                dets = [d for d in det.detect(frame) if d.box.iou(Box(x0, y0, x0 + 200, y0 + 200)) > 0.1]
                if not dets:
                    miss += 1
                    continue
                b = dets[0].box
                cx, cy = b.center
                rows.append((b.width / 200, b.height / 200, (cx - x0 - 100) / 200, (cy - y0 - 100) / 200))
            a = np.array(rows)
            print(f"background {bg_name}: detected {len(rows)}/{len(crops)} (missed {miss})")
            for i, label in enumerate(("box w/200", "box h/200", "centre dx/200", "centre dy/200")):
                print(f"  {label:14} mean {a[:, i].mean():+.4f}  std {a[:, i].std():.4f}")
            m = a.mean(axis=0)
            box = (0.5 + m[2] - m[0] / 2, 0.5 + m[3] - m[1] / 2, 0.5 + m[2] + m[0] / 2, 0.5 + m[3] + m[1] / 2)
            print("  mean face box in chip fractions (x1, y1, x2, y2): " + ", ".join(f"{v:.3f}" for v in box))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    cv2.setNumThreads(1)  # one thread for the resize too, like the interpreter
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recall")
    r.add_argument("--frames", type=int, default=400)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--option", action="append", choices=list(OPTIONS))
    r.add_argument("--threshold", type=float, default=None, help="score threshold for every option")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="DetectorConfig override for every option")
    sp = sub.add_parser("speed")
    sp.add_argument("--frames", type=int, default=60)
    sp.add_argument("--rounds", type=int, default=5)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--option", action="append", choices=list(OPTIONS))
    c = sub.add_parser("chip-box")
    c.add_argument("--count", type=int, default=300)
    c.add_argument("--option", choices=list(OPTIONS))
    for q in (r, sp, c):
        q.add_argument("--utk", type=Path, default=DEFAULT_UTK)
        q.add_argument("--models-dir", type=Path, default=None)
    args = p.parse_args()
    {"recall": cmd_recall, "speed": cmd_speed, "chip-box": cmd_chip_box}[args.cmd](args)


if __name__ == "__main__":
    main()
