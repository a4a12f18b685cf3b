"""What training class weights did to a model's age-group and race decisions, measured without retraining.

`python -m benchmarks.class_prior --model edge_agent/models/attributes_int8.tflite --data ../shared/data/utkface
--data ../shared/data/aaf/labels.csv --cache runs/cache --power 0.5`

A head trained with class weights w_c (∝ frequency^-power) learns roughly p(c | x) · w_c. Dividing its outputs by
w_c^k undoes the weighting (k = 1) or half of it (k = 0.5). For each k this prints the exact and one-off accuracy of
the `age` head and the accuracy of the `race` head, per source, on the validation and test splits through the device
path (detector box, shared crop, the model). It is how 2.1.0's weights were found to cost 1-2 points (MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from conversion.data import class_weights, read_sources
from conversion.evalset import device_inputs, load_eval_set
from conversion.labels import AGE_GROUPS, RACES
from conversion.verify import Predictor, by_source
from edge_agent.modelmeta import load_metadata


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help=".tflite model with its metadata sidecar")
    ap.add_argument("--data", type=Path, action="append", required=True)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--power", type=float, default=0.5, help="the class-weight power the model was trained with")
    ap.add_argument("--splits", nargs="+", default=["val", "test"])
    args = ap.parse_args(argv)
    meta, model = load_metadata(args.model), Predictor(args.model)
    samples = read_sources(list(args.data)).samples
    w_age = class_weights(np.array([s.age_group for s in samples]), len(AGE_GROUPS), args.power)
    w_race = class_weights(np.array([s.race for s in samples]), len(RACES), args.power)
    print(f"{args.model}: class weights at power {args.power}: age {[round(float(v), 2) for v in w_age]}")
    print("| split | k | source | age exact | age one-off | race |\n|---|---|---|---|---|---|")
    for split in args.splits:
        ev = load_eval_set(list(args.data), split, args.cache)
        out = model.predict(device_inputs(ev, meta.preprocess, meta.crop.margin))
        for k in (0.0, 0.5, 1.0):
            undone = {"age": out["age"] / w_age**k, "race": out["race"] / w_race**k}
            for name, m in by_source(undone, ev).items():
                race = "—" if m["race_acc"] is None else f"{m['race_acc']:.2%}"
                print(f"| {split} | {k} | {name} | {m['age_acc']:.2%} | {m['age_one_off']:.2%} | {race} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
