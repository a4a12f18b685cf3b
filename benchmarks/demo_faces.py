"""What an attribute model says about the demo's own faces: `python -m benchmarks.demo_faces [--model M.tflite ...]`.

Both faces the `demo` source ships are adult women, so the answer is known:
- the presenter (`demo_presenter.mp4`, 120 frames): each frame through the device path (the agent's BlazeFace, the
  shared crop, the model), then a plain mean over the frames, and the labels the agent's own `AttributeAccumulator`
  gives those frames as one visit (weighted by detector score and face size, default `unknown` thresholds; the
  camera loop also weighs pose and classifies only sampled frames, so a live visit can differ a little);
- scikit-image's astronaut portrait (Eileen Collins, public domain): the whole 512x512 photograph, and the 160x160
  crop the demo pastes (`demo_face.jpg`), each also over crop margins -0.10 ... +0.15 around the same box, because
  a live box moves that much.

Prints one table per model (p(female) after the model's temperature, the age group and years, the visit's labels);
exit 0 whatever the answer, 2 on a bad --model. No ../shared needed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

MARGINS = (-0.10, -0.05, 0.0, 0.025, 0.05, 0.10, 0.15)


def demo_images() -> dict[str, list[np.ndarray]]:
    """name → frames (BGR): the presenter's clip, the astronaut photograph, the demo's astronaut crop."""
    from skimage import data

    from edge_agent.capture.demo import load_face, load_presenter

    return {
        "presenter (120 frames)": load_presenter(),
        "astronaut photo 512x512": [cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)],
        "astronaut demo crop 160x160": [load_face()],
    }


def measure(model: Path | None, models_dir: Path | None = None) -> dict[str, Any]:
    """Per demo face: frames with a face, mean p(female), mean age probabilities, years; margins for the stills.

    `models_dir`: where the detector files are (default: the agent's store, `edge-agent models pull`)."""
    from edge_agent.classify.classifier import AttributeClassifier
    from edge_agent.classify.preprocess import crop_face
    from edge_agent.config.model import AgentConfig
    from edge_agent.daemon import builders
    from edge_agent.track.aggregate import AttributeAccumulator
    from edge_agent.track.config import TrackerConfig
    from edge_agent.track.events import HeadSpec

    det_cfg = AgentConfig().detector
    detector = builders.detector(
        det_cfg if models_dir is None else det_cfg.model_copy(update={"models_dir": models_dir})
    )
    clf = AttributeClassifier(model, enabled=("age", "gender"))
    meta = clf.metadata
    female = meta.labels["gender"].index("female")
    spec = HeadSpec.from_metadata(meta, clf.enabled)
    out: dict[str, Any] = {"model": f"{meta.name} {meta.version}", "faces": {}}
    try:
        for name, frames in demo_images().items():
            genders, ages, years, boxes = [], [], [], []
            visit = AttributeAccumulator(spec, TrackerConfig())
            for img in frames:
                dets = detector.detect(img)
                if not dets:
                    continue
                det = max(dets, key=lambda d: d.score)
                a = clf.classify(img, [det])[0]
                assert a.gender is not None and a.age is not None
                genders.append(a.gender.probs[female])
                ages.append(a.age.probs)
                years.append(a.age_years)
                boxes.append((img, det.box))
                visit.add(a, face_px=det.box.width, score=det.score, pose=None)
            row: dict[str, Any] = {"frames": len(frames), "found": len(genders)}
            if genders:
                mean_age = np.mean(ages, axis=0)
                row.update(
                    p_female=float(np.mean(genders)),
                    female_frames=int(sum(g > 0.5 for g in genders)),
                    age_group=meta.labels["age"][int(np.argmax(mean_age))],
                    p_age=float(mean_age.max()),
                    years=float(np.mean(years)),
                    published=_published(visit.estimate()),
                )
            if len(frames) == 1 and boxes:
                img, box = boxes[0]
                row["p_female_by_margin"] = {
                    m: clf.classify_crop(
                        crop_face(img, box, replace(meta.crop, margin=m), meta.preprocess.size)
                    ).gender.probs[female]  # type: ignore[union-attr]
                    for m in MARGINS
                }
            out["faces"][name] = row
    finally:
        clf.close()
        detector.close()
    return out


def _published(est: Any) -> dict[str, str]:
    """A visit's labels as the agent publishes them, per head: `unknown (low_confidence, p 0.56)` where one is held
    back; {"minor": "minor"} for a visitor gated as under age."""
    if est.minor:
        return {"minor": "minor"}

    def one(h: Any) -> str:
        return str(h.label) if h.reason is None else f"{h.label} ({h.reason}, p {h.p:.2f})"

    return {"gender": one(est.gender), "age": one(est.age)}


def render(res: dict[str, Any]) -> str:
    lines = [f"{res['model']}: the demo's faces (all adult women), device path", ""]
    lines.append("| face | found | p(female) | female frames | age group (p) | years | a visit publishes |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, r in res["faces"].items():
        if not r["found"]:
            lines.append(f"| {name} | 0 of {r['frames']} | — | — | — | — | — |")
            continue
        published = "; ".join(f"{head} {label}" for head, label in r["published"].items())
        lines.append(
            f"| {name} | {r['found']} of {r['frames']} | {r['p_female']:.2f} | {r['female_frames']} of {r['found']} "
            f"| {r['age_group']} ({r['p_age']:.2f}) | {r['years']:.1f} | {published} |"
        )
    margins = [(n, r["p_female_by_margin"]) for n, r in res["faces"].items() if "p_female_by_margin" in r]
    if margins:
        lines += ["", "p(female) by crop margin around the same box (the model's rule is the metadata's margin):", ""]
        lines.append("| face | " + " | ".join(f"{m:+.3f}" for m in MARGINS) + " |")
        lines.append("|---|" + "---|" * len(MARGINS))
        for name, by in margins:
            lines.append(f"| {name} | " + " | ".join(f"{by[m]:.2f}" for m in MARGINS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.demo_faces", description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", help="attribute model .tflite (repeat); default packaged")
    args = ap.parse_args(argv)
    models = args.model or [None]
    for m in models:
        if m is not None and not m.is_file():
            print(f"error: --model {m}: not found", file=sys.stderr)
            return 2
    for m in models:
        print(render(measure(m)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
