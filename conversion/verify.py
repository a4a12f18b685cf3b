"""`edge-convert verify`: float vs quantized model, side by side on the same held-out images, with a release gate."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conversion.data import MISSING, Sample
from conversion.errors import ConversionError
from conversion.labels import AGE_GROUPS, GENDERS, RACES

log = logging.getLogger(__name__)
CLASS_HEADS = {"age": AGE_GROUPS, "gender": GENDERS, "race": RACES}


@dataclass
class VerifyConfig:
    float_model: Path
    quant_model: Path
    data: list[Path]
    report: Path | None = None
    split: str = "test"
    max_drop: float = 0.5  # points of accuracy the quantized model may lose per head before verify fails
    limit: int | None = None
    latency_runs: int = 300
    cache_dir: Path | None = None  # the detector-box cache shared with training
    sweep: bool = True  # framing sweep and test-time-flip check (one int8 pass per setting)


class Predictor:
    """Runs either a Keras (.keras) or a TFLite model on float inputs and returns per-head float outputs.

    `flip`: average each input and its mirror image, as the agent does when the metadata's `inference.flip` is on."""

    def __init__(self, path: Path, flip: bool = False) -> None:
        from edge_agent.runtime import ModelLoadError, is_tflite_file

        self.flip = flip
        self.path = Path(path)
        if not self.path.is_file():
            raise ConversionError(f"model not found: {self.path}")
        self.kind = "tflite" if is_tflite_file(self.path) else "keras"
        if self.kind == "tflite":
            from edge_agent.classify.model import AttributeModel

            try:
                self.tfl = AttributeModel(self.path, num_threads=1)
            except ModelLoadError as exc:
                raise ConversionError(str(exc)) from None
            self.heads = tuple(self.tfl.outputs)  # every named output, DEX age included when present
            self.size = self.tfl.size
        elif self.path.suffix == ".keras":
            from conversion.quantize import load_keras

            self.keras = load_keras(self.path)
            self.heads = tuple(self.keras.output.keys())
            self.size = int(self.keras.input.shape[1])
        else:
            raise ConversionError(f"not a TFLite model (no TFL3 identifier) nor a .keras file: {self.path}")

    def predict(self, xs: np.ndarray, flip: bool | None = None) -> dict[str, np.ndarray]:
        """Per-head outputs; with flip (default: the predictor's), the mean over each input and its mirror."""
        from edge_agent.classify.model import views_mean

        return views_mean(self._predict, xs, self.flip if flip is None else flip)

    def _predict(self, xs: np.ndarray) -> dict[str, np.ndarray]:
        if self.kind == "keras":
            out = self.keras.predict(xs, batch_size=128, verbose=0)
            return {k: np.asarray(v) for k, v in out.items()}
        rows = [self.tfl.predict(x, self.heads) for x in xs]
        return {h: np.stack([r[h] for r in rows]) for h in self.heads}

    def latency_ms(self, x: np.ndarray, runs: int) -> float | None:
        if self.kind != "tflite":
            return None
        from edge_agent.classify.model import mirrored

        views = (x, mirrored(x)) if self.flip else (x,)  # a flip model runs twice per face
        for _ in range(20):
            self.tfl.predict(x, self.heads)
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            for v in views:
                self.tfl.predict(v, self.heads)
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts) * 1000.0)


def head_metrics(pred: dict[str, np.ndarray], samples: list[Sample]) -> dict[str, Any]:
    m: dict[str, Any] = {}
    truth = {
        "age": np.array([s.age_group for s in samples]),
        "gender": np.array([s.gender for s in samples]),
        "race": np.array([s.race for s in samples]),
    }
    for head, labels in CLASS_HEADS.items():
        if head not in pred:
            continue
        y, p = truth[head], pred[head].argmax(-1)
        ok = y != MISSING
        m[f"{head}_acc"] = float((p[ok] == y[ok]).mean()) if ok.any() else None
        cm = np.zeros((len(labels), len(labels)), int)
        np.add.at(cm, (y[ok], p[ok]), 1)
        m[f"{head}_confusion"] = cm.tolist()
    if "age" in pred:
        y, p = truth["age"], pred["age"].argmax(-1)
        ok = y != MISSING
        m["age_one_off"] = float((np.abs(p[ok] - y[ok]) <= 1).mean()) if ok.any() else None
    if "age_years" in pred:
        ya = np.array([s.age for s in samples], np.float64)
        ok = ya >= 0
        m["age_mae"] = float(np.abs(pred["age_years"].reshape(-1)[ok] - ya[ok]).mean()) if ok.any() else None
    if "gender" in pred:
        per_race = {}
        for r, name in enumerate(RACES):
            sel = (truth["race"] == r) & (truth["gender"] != MISSING)
            if sel.any():
                per_race[name] = {
                    "n": int(sel.sum()),
                    "acc": float((pred["gender"].argmax(-1)[sel] == truth["gender"][sel]).mean()),
                }
        m["gender_acc_by_race"] = per_race
        accs = [v["acc"] for v in per_race.values() if v["n"] >= 30]
        m["gender_race_gap"] = float(max(accs) - min(accs)) if accs else None
        per_age = {}
        for g, name in enumerate(AGE_GROUPS):
            sel = (truth["age"] == g) & (truth["gender"] != MISSING)
            if sel.any():
                per_age[name] = {
                    "n": int(sel.sum()),
                    "acc": float((pred["gender"].argmax(-1)[sel] == truth["gender"][sel]).mean()),
                }
        m["gender_acc_by_age"] = per_age
    m["n"] = len(samples)
    return m


def agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    out = {h: float((a[h].argmax(-1) == b[h].argmax(-1)).mean()) for h in CLASS_HEADS if h in a and h in b}
    if "age_years" in a and "age_years" in b:
        out["age_years_mean_abs_diff"] = float(np.abs(a["age_years"].reshape(-1) - b["age_years"].reshape(-1)).mean())
    return out


MARGINS = (-0.15, -0.10, -0.05, 0.0, 0.05, 0.10, 0.15, 0.20)
SHIFTS = ((-0.1, 0.0), (0.1, 0.0), (0.0, -0.1), (0.0, 0.1))


def calibration_report(
    pred: dict[str, np.ndarray], truth: dict[str, np.ndarray], temps: dict[str, float]
) -> dict[str, Any]:
    """ECE and reliability bins per head, with the raw softmax and with the metadata's temperature."""
    from conversion.calibration import apply_temperature, reliability

    out: dict[str, Any] = {}
    for h in CLASS_HEADS:
        if h in pred:
            t = temps.get(h, 1.0)
            out[h] = {
                "temperature": t,
                "raw": reliability(pred[h], truth[h]),
                "calibrated": reliability(apply_temperature(pred[h], t), truth[h]),
            }
    return out


def by_source(pred: dict[str, np.ndarray], ev: Any) -> dict[str, Any]:
    src = ev.sources
    return {
        name: head_metrics({h: v[src == name] for h, v in pred.items()}, ev.take(np.flatnonzero(src == name)).samples)
        for name in sorted(set(src.tolist()))
    }


def framing_sweep(qt: Predictor, ev: Any, pre: Any, margin: float) -> list[dict[str, Any]]:
    """Each head's accuracy as the crop margin and the box position move the way detector boxes do."""
    from conversion.evalset import device_inputs

    rows = []
    for m in MARGINS:
        rows.append({"margin": m, "dx": 0.0, "dy": 0.0, **_accs(qt.predict(device_inputs(ev, pre, m)), ev)})
    for dx, dy in SHIFTS:
        rows.append(
            {
                "margin": margin,
                "dx": dx,
                "dy": dy,
                **_accs(qt.predict(device_inputs(ev, pre, margin, dx=dx, dy=dy)), ev),
            }
        )
    return rows


def _accs(pred: dict[str, np.ndarray], ev: Any) -> dict[str, Any]:
    m = head_metrics(pred, ev.samples)
    out = {k: m.get(k) for k in ("age_acc", "gender_acc", "race_acc", "age_mae")}
    src = ev.sources
    for name in sorted(set(src.tolist())):
        sm = head_metrics({h: v[src == name] for h, v in pred.items()}, ev.take(np.flatnonzero(src == name)).samples)
        out[name] = {k: sm.get(k) for k in ("age_acc", "gender_acc", "race_acc", "age_mae")}
    return out


def flip_gain(qt: Predictor, xs: np.ndarray, ev: Any, pred: dict[str, np.ndarray], flipped: bool) -> dict[str, Any]:
    """Accuracy with test-time flip (mean of face and mirror) against without: is it worth twice the cost?

    `pred` is `qt`'s output on `xs` that verify already has (with the flip when `flipped`): only the other runs."""
    other = qt.predict(xs, flip=not flipped)
    plain, both = (other, pred) if flipped else (pred, other)
    keys = ("age_acc", "gender_acc", "race_acc", "age_mae")
    a, b = head_metrics(plain, ev.samples), head_metrics(both, ev.samples)
    out: dict[str, Any] = {k: {"plain": a.get(k), "flip": b.get(k)} for k in keys}
    sa, sb = by_source(plain, ev), by_source(both, ev)
    out["per_source"] = {src: {k: {"plain": sa[src].get(k), "flip": sb[src].get(k)} for k in keys} for src in sa}
    return out


def verify(cfg: VerifyConfig) -> dict[str, Any]:
    """Compute the report (and write it when cfg.report is set). `report["passed"]` is the release gate.

    Every figure goes through the device path: the agent's detector box, its crop function, then the model.
    """
    from conversion.evalset import device_inputs, load_eval_set
    from edge_agent.modelmeta import load_metadata

    fl, qt = Predictor(cfg.float_model), Predictor(cfg.quant_model)
    if qt.kind != "tflite":
        raise ConversionError(f"not a TFLite model (no TFL3 identifier): {cfg.quant_model}")
    if fl.size != qt.size:
        raise ConversionError(f"input sizes differ: float {fl.size}px, quantized {qt.size}px")
    meta = load_metadata(cfg.quant_model)
    # Every figure is what the agent would see: with the metadata's test-time flip on, face and mirror, averaged.
    flip = fl.flip = qt.flip = meta.flip
    ev = load_eval_set(list(cfg.data), cfg.split, cfg.cache_dir, cfg.limit)
    log.info("verifying on %d images (split %s, crop margin %.3f)", len(ev), cfg.split, meta.crop.margin)
    xs = device_inputs(ev, meta.preprocess, meta.crop.margin)
    pf, pq = fl.predict(xs), qt.predict(xs)
    mf, mq = head_metrics(pf, ev.samples), head_metrics(pq, ev.samples)
    drops = {
        h: round((mf[f"{h}_acc"] - mq[f"{h}_acc"]) * 100, 3)
        for h in CLASS_HEADS
        if mq.get(f"{h}_acc") is not None and mf.get(f"{h}_acc") is not None
    }
    pd = qt.predict(device_inputs(ev, meta.preprocess, meta.crop.margin, dataset_crop=True))
    report: dict[str, Any] = {
        "float_model": str(cfg.float_model),
        "quant_model": str(cfg.quant_model),
        "data": [str(p) for p in cfg.data],
        "split": cfg.split,
        "n_images": len(ev),
        "skipped": dict(ev.skipped),
        "detector_found": int(ev.detected.sum()),
        "crop_margin": meta.crop.margin,
        "flip_applied": flip,
        "quantization": meta.quantization,
        "model_version": meta.version,
        "model_sha256": meta.sha256,
        "float": mf,
        "quant": mq,
        "agreement": agreement(pf, pq),
        "drop_points": drops,
        "per_source": {"float": by_source(pf, ev), "quant": by_source(pq, ev), "quant_dataset_crop": by_source(pd, ev)},
        "quant_dataset_crop": head_metrics(pd, ev.samples),
        "calibration": calibration_report(pq, ev.truth(), meta.temperature),
        "size_bytes": {"float": Path(cfg.float_model).stat().st_size, "quant": Path(cfg.quant_model).stat().st_size},
        "latency_ms_median_1thread": {
            "float": fl.latency_ms(xs[0], cfg.latency_runs),
            "quant": qt.latency_ms(xs[0], cfg.latency_runs),
        },
        "runtime": __import__("edge_agent.runtime", fromlist=["runtime_version"]).runtime_version(),
        "max_drop_points": cfg.max_drop,
    }
    if "age_years_dex" in pq:
        report["dex"] = {
            "regression_mae": mq.get("age_mae"),
            "dex_mae": dex_mae(pq, ev.samples),
            "float_regression_mae": mf.get("age_mae"),
            "float_dex_mae": dex_mae(pf, ev.samples),
        }
    if cfg.sweep:
        report["framing"] = framing_sweep(qt, ev, meta.preprocess, meta.crop.margin)
        report["flip"] = flip_gain(qt, xs, ev, pq, flip)
    report["passed"] = all(d <= cfg.max_drop for d in drops.values())
    if cfg.report:
        from conversion.report import write_report

        write_report(report, cfg.report)
    return report


def dex_mae(pred: dict[str, np.ndarray], samples: list[Sample]) -> float | None:
    ya = np.array([s.age for s in samples], np.float64)
    ok = ya >= 0
    return (
        float(np.abs(pred["age_years_dex"].reshape(-1)[ok] - ya[ok]).mean())
        if ok.any() and "age_years_dex" in pred
        else None
    )
