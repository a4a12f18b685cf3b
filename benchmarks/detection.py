"""Detection range: recall and false positives per face-width bin, and ms per frame, for every face detector.

Frames are 640x480 scikit-image photographs with 1-3 held-out face crops pasted at log-uniform face widths
20-320 px (benchmarks/synth_frames.py, the detection engineer's generator). Detectors draw their boxes
differently (dlib's HOG box is tighter than BlazeFace's), so a detection matches a true face when its centre
lies inside the true face box and its width is 0.5-2x the true width (one-to-one, best score first); the
rest are false positives. Timing is wall time of one detect call on one thread (1 frame, decoding excluded).
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks import ours, venvs
from benchmarks import synth_frames as sf
from benchmarks.workers.common import summarize_ms
from edge_agent.records import Box

log = logging.getLogger(__name__)

BINS: tuple[int, ...] = (20, 30, 40, 50, 60, 80, 120, 180, 321)
YUNET = Path(__file__).resolve().parents[2] / "shared" / "models" / "yunet" / "face_detection_yunet_2026may.onnx"
# Our detector settings, by name; `None` for input_width means the model's native square input.
# Plain variants pin every option that the agent's default may switch on (keys the installed DetectorConfig does
# not know are dropped, so this table works across detector versions).
_PLAIN = {"input_width": None, "refine_below_px": 0.0}
OUR_DETECTORS: dict[str, dict[str, Any]] = {
    "BlazeFace short range (128x128)": {**_PLAIN, "model": "short_range"},
    "BlazeFace full range (192x192)": {**_PLAIN, "model": "full_range"},
    "BlazeFace short range, input 256 wide": {**_PLAIN, "model": "short_range", "input_width": 256},
    "BlazeFace short range, input 320 wide": {**_PLAIN, "model": "short_range", "input_width": 320},
    "agent default config": {},
}
Detect = Callable[[np.ndarray], list[tuple[Box, float]]]


@dataclass(frozen=True, slots=True)
class Frames:
    images: np.ndarray  # (N, 480, 640, 3) BGR uint8
    truth: list[list[Box]]


def make_frames(n: int, utk_dir: Path | None, seed: int = 0) -> Frames:
    """n frames of 1-3 held-out faces with log-uniform widths 20-320 px on rotating, randomly mirrored backgrounds."""
    rng = np.random.default_rng(seed)
    crops = sf.face_crops(utk_dir, 400, seed=seed + 1)
    backgrounds = sf.load_backgrounds()
    images, truth = [], []
    while len(images) < n:
        k = int(rng.integers(1, 4))
        widths = np.exp(rng.uniform(np.log(20), np.log(320), size=k))
        faces = [crops[int(i)] for i in rng.integers(0, len(crops), size=k)]
        bg = backgrounds[len(images) % len(backgrounds)]
        if rng.random() < 0.5:
            bg = np.ascontiguousarray(bg[:, ::-1])
        try:
            frame, boxes = sf.make_frame(rng, faces, widths, bg)
        except sf.PlacementError:
            continue
        images.append(frame)
        truth.append(boxes)
    return Frames(np.stack(images), truth)


def match(dets: list[tuple[Box, float]], truth: list[Box]) -> tuple[list[bool], int]:
    """Found flag per true face and the number of false positives (centre-inside + width-ratio rule)."""
    found = [False] * len(truth)
    fp = 0
    for box, _ in sorted(dets, key=lambda d: -d[1]):
        cx, cy = box.center
        best, best_d = -1, float("inf")
        for i, t in enumerate(truth):
            ratio = box.width / t.width if t.width > 0 else 0.0
            if found[i] or not (t.x1 <= cx <= t.x2 and t.y1 <= cy <= t.y2) or not 0.5 <= ratio <= 2.0:
                continue
            d = (cx - t.center[0]) ** 2 + (cy - t.center[1]) ** 2
            if d < best_d:
                best, best_d = i, d
        if best >= 0:
            found[best] = True
        else:
            fp += 1
    return found, fp


def score(frames: Frames, dets_per_frame: list[list[tuple[Box, float]]]) -> dict[str, Any]:
    """Recall per width bin, recall for faces >= 40 and >= 80 px, and false positives per frame."""
    hits, total = np.zeros(len(BINS) - 1), np.zeros(len(BINS) - 1)
    widths, founds, fps = [], [], 0
    for truth, dets in zip(frames.truth, dets_per_frame, strict=True):
        found, fp = match(dets, truth)
        fps += fp
        for box, ok in zip(truth, found, strict=True):
            widths.append(box.width)
            founds.append(ok)
            b = int(np.searchsorted(BINS, box.width, side="right")) - 1
            if 0 <= b < len(total):
                total[b] += 1
                hits[b] += ok
    w, f = np.asarray(widths), np.asarray(founds, bool)

    def recall_from(px: float) -> float:
        m = w >= px
        return float(f[m].mean()) if m.any() else float("nan")

    return {
        "bins": [f"{a}-{b - 1}" for a, b in itertools.pairwise(BINS)],
        "recall": [float(h / t) if t else float("nan") for h, t in zip(hits, total, strict=True)],
        "faces": [int(t) for t in total],
        "recall_ge40": recall_from(40),
        "recall_ge80": recall_from(80),
        "fp_per_frame": fps / max(1, len(frames.truth)),
    }


def timed(images: np.ndarray, detect: Detect) -> tuple[list[list[tuple[Box, float]]], list[float]]:
    """Detections and seconds per frame; one untimed warm-up call first (first-call allocation is not per-frame)."""
    if len(images):
        detect(images[0])
    dets, times = [], []
    for img in images:
        t0 = time.perf_counter()
        dets.append(detect(img))
        times.append(time.perf_counter() - t0)
    return dets, times


def run_local(frames: Frames, detect: Detect) -> dict[str, Any]:
    dets, times = timed(frames.images, detect)
    return {**score(frames, dets), "ms": summarize_ms(times)}


def our_detect(overrides: dict[str, Any]) -> tuple[Detect, Callable[[], None], str]:
    det = ours.detector(overrides)
    cfg = getattr(det, "config", None)
    desc = ""
    if cfg is not None:
        desc = f"{cfg.model}, input_width={cfg.input_width}, score>={cfg.score_threshold}"
        if getattr(cfg, "refine_below_px", 0):
            desc += f", refine<{cfg.refine_below_px:g}px"
    return (lambda img: [(d.box, d.score) for d in det.detect(img)]), det.close, desc


def yunet_detect(model: Path) -> Detect:
    """YuNet with the OpenCV Zoo demo's settings (score 0.9, NMS 0.3, top_k 5000), one OpenCV thread."""
    cv2.setNumThreads(1)
    yn = cv2.FaceDetectorYN.create(str(model), "", (sf.FRAME_W, sf.FRAME_H), 0.9, 0.3, 5000)

    def detect(img: np.ndarray) -> list[tuple[Box, float]]:
        yn.setInputSize((img.shape[1], img.shape[0]))
        _, faces = yn.detect(img)
        if faces is None:
            return []
        return [(Box(float(f[0]), float(f[1]), float(f[0] + f[2]), float(f[1] + f[3])), float(f[14])) for f in faces]

    return detect


def run_dlib(frames: Frames) -> dict[str, Any] | None:
    """dlib HOG as the peer runs it, in the peer venv; None when that venv is unavailable."""
    py = venvs.ensure_venv("peer")
    if py is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bench-frames-") as tmp:
        path = Path(tmp) / "frames.npy"
        np.save(path, frames.images)
        ans = venvs.run_worker(py, "benchmarks.workers.peer", {"job": "detect", "frames": str(path)})
    dets = [[(Box(*b), 1.0) for b in boxes] for boxes in ans["boxes"]]
    return {**score(frames, dets), "ms": ans["ms"]}


def compare(frames: Frames, yunet: Path | None = YUNET, with_peer: bool = True) -> dict[str, Any]:
    """Every detector on the same frames: name -> figures (or a 'skipped' reason)."""
    out: dict[str, Any] = {}
    for name, overrides in OUR_DETECTORS.items():
        detect, close, desc = our_detect(overrides)
        try:
            out[name] = {**run_local(frames, detect), "settings": desc}
        finally:
            close()
    if yunet is not None and yunet.is_file():
        out["YuNet (OpenCV Zoo 2026may)"] = run_local(frames, yunet_detect(yunet))
    else:
        out["YuNet (OpenCV Zoo 2026may)"] = {"skipped": f"model not found: {yunet}"}
    dlib = run_dlib(frames) if with_peer else None
    out["dlib HOG (peer)"] = dlib if dlib is not None else {"skipped": "peer venv unavailable"}
    return out


VIDEO_SCALES: tuple[float, ...] = (1.0, 0.5, 0.25)


def video_frames(path: Path, step: int = 3, scales: tuple[float, ...] = VIDEO_SCALES) -> dict[float, np.ndarray]:
    """Every `step`-th frame of the clip fitted to 640 px wide, then shrunk by each scale onto a 640x480 photo.

    One person is in every frame, so a frame with no detection is a miss and each extra detection a false
    positive. Shrinking moves the real face farther away (smaller) without a synthetic paste.
    """
    cap = cv2.VideoCapture(str(path))
    raw = []
    i = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if i % step == 0:
            raw.append(img)
        i += 1
    cap.release()
    bg = sf.load_backgrounds(["coffee"])[0]
    out: dict[float, np.ndarray] = {}
    for s in scales:
        frames = []
        for img in raw:
            k = s * sf.FRAME_W / img.shape[1]
            small = cv2.resize(img, (round(img.shape[1] * k), round(img.shape[0] * k)), interpolation=cv2.INTER_AREA)
            frame = bg.copy()
            y0, x0 = (sf.FRAME_H - small.shape[0]) // 2, (sf.FRAME_W - small.shape[1]) // 2
            frame[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
            frames.append(frame)
        out[s] = np.stack(frames) if frames else np.zeros((0, sf.FRAME_H, sf.FRAME_W, 3), np.uint8)
    return out


def _video_score(dets: list[list[Any]]) -> dict[str, float]:
    n = max(1, len(dets))
    return {"found": sum(1 for d in dets if d) / n, "extra_per_frame": sum(max(0, len(d) - 1) for d in dets) / n}


def compare_video(clip: Path, with_peer: bool = True, step: int = 3) -> dict[str, Any]:
    """Per detector and scale: share of frames where the face was found, extra detections per frame, ms/frame."""
    scaled = video_frames(clip, step=step)
    out: dict[str, dict[str, Any]] = {}
    detectors: dict[str, tuple[Detect, Callable[[], None]]] = {}
    for name, overrides in OUR_DETECTORS.items():
        detect, close, _ = our_detect(overrides)
        detectors[name] = (detect, close)
    if YUNET.is_file():
        detectors["YuNet (OpenCV Zoo 2026may)"] = (yunet_detect(YUNET), lambda: None)
    for name, (detect, close) in detectors.items():
        out[name] = {}
        for s, frames in scaled.items():
            dets, times = timed(frames, detect)
            out[name][f"{s:g}"] = {**_video_score(dets), "ms_p50": summarize_ms(times).get("p50", float("nan"))}
        close()
    py = venvs.ensure_venv("peer") if with_peer else None
    if py is not None:
        out["dlib HOG (peer)"] = {}
        with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
            for s, frames in scaled.items():
                path = Path(tmp) / f"v{s:g}.npy"
                np.save(path, frames)
                ans = venvs.run_worker(py, "benchmarks.workers.peer", {"job": "detect", "frames": str(path)})
                out["dlib HOG (peer)"][f"{s:g}"] = {**_video_score(ans["boxes"]), "ms_p50": ans["ms"].get("p50")}
    return {
        "frames_per_scale": len(next(iter(scaled.values()))),
        "step": step,
        "scales": [f"{s:g}" for s in scaled],
        "rows": out,
    }


def plot_recall(results: dict[str, Any], path: Path) -> Path:
    """Recall against face width, one line per detector (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = [np.sqrt(a * (b - 1)) for a, b in itertools.pairwise(BINS)]
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, r in results.items():
        if "recall" in r:
            ax.plot(centres, r["recall"], marker="o", label=f"{name} ({r['ms'].get('p50', float('nan')):.1f} ms)")
    ax.set_xscale("log")
    ax.set_xticks((*BINS[:-1], 320))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.axvline(40, color="grey", ls=":", lw=1)
    ax.set_xlabel("face width in a 640x480 frame (px)")
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Face detection recall against face size (held-out UTKFace faces on real photos)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
