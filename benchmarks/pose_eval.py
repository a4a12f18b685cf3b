"""Yaw accuracy of the keypoint head-pose estimator: `python -m benchmarks.pose_eval [--faces N] [--shared DIR]`.

Two evaluations, both printing mean absolute yaw error (MAE):
1. Geometry: the generic 3-D face with +-10 % per-coordinate person-to-person variation and 1 % keypoint jitter,
   rotated by known yaw/pitch/roll and projected -- the estimator alone, with perfect keypoint semantics.
2. Real faces turned by a known yaw: real photographs (scikit-image's astronaut, plus adult UTKFace crops and
   frames of face.mp4 when ../shared is present) are mapped onto a 3-D head (an ellipsoid fitted to BlazeFace's
   keypoints, with a nose) and re-rendered at yaw -40..40 deg by a piecewise-affine warp; BlazeFace then finds
   the keypoints and the estimator gives the yaw. The error is measured on the *change* of the estimate against
   the applied rotation, so each photo's unknown original pose cancels out. The warp is an approximation of a
   real head turn (no hidden-surface removal, a smooth head shape), so read this as the detector+estimator's
   response to a turn, not as a benchmark on a labelled pose dataset (no such dataset ships in a registry package).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge_agent.analytics.pose import FACE_MODEL_MM, estimate_pose
from edge_agent.analytics.synthetic import face_keypoints

YAWS = (-40, -30, -20, -10, 0, 10, 20, 30, 40)


def geometry_eval(n: int = 1000, seed: int = 0) -> dict[str, float]:
    """MAE of yaw/pitch on randomly varied generic faces (estimator only)."""
    rng = np.random.default_rng(seed)
    err_yaw, err_pitch, failed = [], [], 0
    for _ in range(n):
        yaw, pitch, roll = rng.uniform(-45, 45), rng.uniform(-25, 25), rng.uniform(-15, 15)
        model = FACE_MODEL_MM * (1.0 + rng.normal(0.0, 0.10, FACE_MODEL_MM.shape))
        kp = face_keypoints(yaw, pitch, roll, width_px=120.0, model=model)
        pose = estimate_pose(kp + rng.normal(0.0, 1.2, kp.shape))
        if pose is None:
            failed += 1
            continue
        err_yaw.append(abs(pose.yaw - yaw))
        err_pitch.append(abs(pose.pitch - pitch))
    return {
        "n": n,
        "failed": failed,
        "yaw_mae": float(np.mean(err_yaw)),
        "yaw_p90": float(np.percentile(err_yaw, 90)),
        "pitch_mae": float(np.mean(err_pitch)),
    }


def head_surface(kp: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, float]:
    """Depth (towards the camera, px) of an ellipsoidal head with a nose, at image points; and its centre x."""
    ears = kp[4:6]
    cx = float(ears[:, 0].mean())
    cy = float(kp[:2, 1].mean() + 0.5 * (kp[3, 1] - kp[:2, 1].mean()))
    # Anthropometric proportions: head half-breadth ~75 mm where BlazeFace puts its ear points at ~64 mm, the
    # face front ~85 mm ahead of the ear plane, the nose another ~20 mm.
    a = 0.5 * float(abs(ears[1, 0] - ears[0, 0])) * 75.0 / 64.3
    b, c = 1.35 * a, 85.0 / 75.0 * a
    inside = np.clip(1.0 - ((xs - cx) / a) ** 2 - ((ys - cy) / b) ** 2, 0.0, None)
    z = c * np.sqrt(inside)
    nx, ny = kp[2]
    nose = 0.27 * a * np.exp(-(((xs - nx) / (0.16 * a)) ** 2 + ((ys - (ny - 0.25 * a)) / (0.35 * a)) ** 2) / 2)
    return z + nose, cx


def render_yaw(image: np.ndarray, kp: np.ndarray, yaw: float) -> np.ndarray:
    """The photo re-rendered with the head turned by `yaw` degrees (positive: nose to image right).

    Turning about the vertical axis moves points only along their row: x' = cx + (x - cx) cos t + z sin t. Scanning
    each row from the near side, a point whose x' falls behind an earlier one is hidden (the far cheek, the far
    flank of the nose), so a running maximum makes the row map monotonic and np.interp inverts it for cv2.remap.
    """
    h, w = image.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    z, cx = head_surface(kp, xs, ys)
    t = np.radians(yaw)
    xd = cx + (xs - cx) * np.cos(t) + z * np.sin(t)
    map_x = np.empty((h, w), dtype=np.float32)
    out_x = np.arange(w, dtype=np.float64)
    ramp = np.arange(w) * 1e-6
    for row in range(h):
        fwd, src = (xd[row], xs[row]) if t >= 0 else (-xd[row][::-1], xs[row][::-1])
        mono = np.maximum.accumulate(fwd) + ramp
        query = out_x if t >= 0 else -out_x
        map_x[row] = np.interp(query, mono, src)
    map_y = ys.astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def real_faces(shared: Path | None, n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """Photos with one clear face: the astronaut, then adult UTKFace crops and face.mp4 frames if present."""
    from skimage import data

    faces = [("astronaut", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 110:340])]
    if shared is not None and (shared / "data" / "utkface").is_dir():
        files = sorted((shared / "data" / "utkface").glob("*.jpg"))
        rnd = random.Random(seed)
        adults = [f for f in files if f.name.split("_")[0].isdigit() and int(f.name.split("_")[0]) >= 18]
        for f in rnd.sample(adults, min(len(adults), n)):
            img = cv2.imread(str(f))
            if img is not None:
                faces.append((f.name[:24], cv2.copyMakeBorder(img, 60, 60, 60, 60, cv2.BORDER_REPLICATE)))
    video = None if shared is None else shared / "data" / "video" / "face.mp4"
    if video is not None and video.is_file():
        cap = cv2.VideoCapture(str(video))
        for idx in (30, 150, 300):
            cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
            ok, frame = cap.read()
            if ok:
                faces.append((f"face.mp4#{idx}", frame))
        cap.release()
    return faces


def best_face(detector, image: np.ndarray) -> np.ndarray | None:
    dets = detector.detect(image)
    if not dets:
        return None
    return max(dets, key=lambda d: d.score * d.box.area).keypoints.astype(np.float64)


def real_eval(detector, faces: list[tuple[str, np.ndarray]]) -> dict[str, object]:
    """Per applied yaw: MAE of (estimate - estimate at 0) against the applied yaw; also the overall slope."""
    per_yaw: dict[int, list[float]] = {y: [] for y in YAWS}
    pairs: list[tuple[float, float]] = []
    lost = 0
    used = 0
    for name, image in faces:
        kp0 = best_face(detector, image)
        base = None if kp0 is None else estimate_pose(kp0)
        if base is None:
            print(f"  {name}: no face/pose in the original, skipped", file=sys.stderr)
            continue
        used += 1
        for yaw in YAWS:
            kp = best_face(detector, render_yaw(image, kp0, yaw)) if yaw else kp0
            pose = None if kp is None else estimate_pose(kp)
            if pose is None:
                lost += 1
                continue
            change = pose.yaw - base.yaw
            per_yaw[yaw].append(abs(change - yaw))
            pairs.append((yaw, change))
    applied, measured = np.array(pairs).T if pairs else (np.zeros(1), np.zeros(1))
    slope = float(np.polyfit(applied, measured, 1)[0]) if len(pairs) > 2 else float("nan")
    all_err = [e for y in YAWS if y for e in per_yaw[y]]
    return {
        "faces": used,
        "lost": lost,
        "slope": slope,
        "yaw_mae": float(np.mean(all_err)) if all_err else float("nan"),
        "per_yaw": {y: float(np.mean(v)) if v else float("nan") for y, v in per_yaw.items() if y},
        "within_25": {y: float(np.mean(v)) if v else float("nan") for y, v in per_yaw.items() if y and abs(y) <= 20},
    }


def make_detector(models_dir: Path | None):
    import edge_agent.detect.blazeface  # noqa: F401 - registers the detector
    from edge_agent import models_store
    from edge_agent.detect.base import create_detector
    from edge_agent.detect.config import DetectorConfig

    cache = models_dir or Path.home() / ".cache" / "edge-agent-test-models"
    models_store.pull(cache)
    return create_detector(DetectorConfig(models_dir=cache))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=20, help="UTKFace photos to turn (when ../shared is present)")
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    geo = geometry_eval(seed=args.seed)
    print(
        f"geometry: {geo['n']} varied generic faces, yaw MAE {geo['yaw_mae']:.2f} deg "
        f"(p90 {geo['yaw_p90']:.2f}), pitch MAE {geo['pitch_mae']:.2f} deg, {geo['failed']} failed fits"
    )
    kp = face_keypoints(15.0, 5.0)
    t1 = time.perf_counter()
    for _ in range(2000):
        estimate_pose(kp)
    print(f"estimate_pose: {(time.perf_counter() - t1) / 2000 * 1e6:.0f} us per face")

    shared = args.shared if args.shared.is_dir() else None
    detector = make_detector(args.models_dir)
    res = real_eval(detector, real_faces(shared, args.faces, args.seed))
    detector.close()
    per = "  ".join(f"{y:+d}:{e:.1f}" for y, e in res["per_yaw"].items())
    print(
        f"real faces turned by a known yaw: {res['faces']} photos x {len(YAWS) - 1} yaws, "
        f"{res['lost']} renders without a face"
    )
    print(
        f"  yaw MAE {res['yaw_mae']:.2f} deg over +-10..40; MAE within +-20: "
        f"{np.nanmean(list(res['within_25'].values())):.2f} deg; slope measured/applied {res['slope']:.2f}"
    )
    print(f"  MAE by applied yaw: {per}")
    print(f"({time.perf_counter() - t0:.0f} s; shared data {'used' if shared else 'absent: astronaut only'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
