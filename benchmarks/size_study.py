"""Input size against accuracy and per-face cost, on the same data and the same (short) schedule for every size.

`python -m benchmarks.size_study --data ../shared/data/utkface --data ../shared/data/aaf/labels.csv \
    --seed-model models/v1/attributes_float32.tflite --sizes 64 80 96 112 --samples 8000 --epochs 2`

Each size: `edge-convert train` on the same seeded random subset of the sources (same seed, schedule and
augmentation), `quantize` to int8 with the same calibration, then the validation split through the device path
(never the test split: this chooses the shipped size) and LiteRT latency on 1 thread. A short schedule ranks the
sizes; it does not reach the accuracy of the full run. Prints a markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("benchmarks.size_study")


def one_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    from conversion.quantize import QuantizeConfig, quantize
    from conversion.train import TrainConfig, train
    from conversion.verify import VerifyConfig, verify

    run = args.out / f"s{size}"
    t0 = time.monotonic()
    keras_path = train(
        TrainConfig(
            data=list(args.data),
            out=run,
            alpha=1.0,
            input_size=size,
            epochs=args.epochs,
            lr=args.lr,
            imagenet=args.seed_model,
            cache_dir=args.cache,
            max_samples=args.samples,
            seed=args.seed,
        )
    )
    train_s = time.monotonic() - t0
    tfl = quantize(
        QuantizeConfig(
            model=keras_path,
            out=run / "int8.tflite",
            calibration=list(args.data),
            cache_dir=args.cache,
            temperature_split=None,
        )
    )
    rep = verify(
        VerifyConfig(
            float_model=keras_path,
            quant_model=tfl,
            data=list(args.data),
            split="val",
            limit=args.eval_limit,
            cache_dir=args.cache,
            sweep=False,
            max_drop=100,
            latency_runs=500,
        )
    )
    per = rep["per_source"]["quant"]
    return {
        "size": size,
        "train_s": round(train_s),
        "latency_ms": rep["latency_ms_median_1thread"]["quant"],
        "size_mb": rep["size_bytes"]["quant"] / 1e6,
        "all": {k: rep["quant"].get(k) for k in ("gender_acc", "race_acc", "age_acc", "age_mae")},
        "per_source": {
            s: {k: m.get(k) for k in ("gender_acc", "race_acc", "age_acc", "age_mae")} for s, m in per.items()
        },
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    def p(v: float | None) -> str:
        return "—" if v is None else f"{v * 100:.1f}%"

    srcs = sorted({s for r in rows for s in r["per_source"]})
    head = "| input | int8 ms/face | MB | " + " | ".join(f"{s} gender | {s} race | {s} age | {s} MAE" for s in srcs)
    lines = [head + " |", "|" + "---|" * (3 + 4 * len(srcs))]
    for r in rows:
        cells = []
        for s in srcs:
            m = r["per_source"].get(s, {})
            mae = "—" if m.get("age_mae") is None else f"{m['age_mae']:.2f}"
            cells += [p(m.get("gender_acc")), p(m.get("race_acc")), p(m.get("age_acc")), mae]
        lines.append(f"| {r['size']} px | {r['latency_ms']:.2f} | {r['size_mb']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", type=Path, required=True)
    ap.add_argument("--seed-model", type=Path, default=REPO / "models" / "v1" / "attributes_float32.tflite")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 80, 96, 112])
    ap.add_argument("--samples", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--eval-limit", type=int, default=1500)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/edge-agent/datasets")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "size_study")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    rows = []
    for size in args.sizes:
        rows.append(one_size(size, args))
        log.info("size %d: %s", size, rows[-1])
        (args.out / "size_study.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
