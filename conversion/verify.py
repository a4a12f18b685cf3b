"""`edge-convert verify`: float vs quantized model, side by side on the same held-out images, with a release gate."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conversion.data import MISSING, Sample, content_sha256, load_chip, read_dataset, split_of
from conversion.errors import ConversionError
from conversion.labels import AGE_GROUPS, GENDERS, RACES
from conversion.preprocess import chip_to_input

log = logging.getLogger(__name__)
CLASS_HEADS = {"age": AGE_GROUPS, "gender": GENDERS, "race": RACES}


@dataclass
class VerifyConfig:
    float_model: Path
    quant_model: Path
    data: Path
    report: Path | None = None
    split: str = "test"
    max_drop: float = 0.5  # points of accuracy the quantized model may lose per head before verify fails
    crop_frac: float | None = None  # default: from the quantized model's metadata
    limit: int | None = None
    latency_runs: int = 300


class Predictor:
    """Runs either a Keras (.keras) or a TFLite model on float inputs and returns per-head float outputs."""

    def __init__(self, path: Path) -> None:
        from edge_agent.runtime import ModelLoadError, is_tflite_file

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
            self.heads = self.tfl.available_heads()
            self.size = self.tfl.size
        elif self.path.suffix == ".keras":
            from conversion.quantize import load_keras

            self.keras = load_keras(self.path)
            self.heads = tuple(self.keras.output.keys())
            self.size = int(self.keras.input.shape[1])
        else:
            raise ConversionError(f"not a TFLite model (no TFL3 identifier) nor a .keras file: {self.path}")

    def predict(self, xs: np.ndarray) -> dict[str, np.ndarray]:
        if self.kind == "keras":
            out = self.keras.predict(xs, batch_size=128, verbose=0)
            return {k: np.asarray(v) for k, v in out.items()}
        rows = [self.tfl.predict(x, self.heads) for x in xs]
        return {h: np.stack([r[h] for r in rows]) for h in self.heads}

    def latency_ms(self, x: np.ndarray, runs: int) -> float | None:
        if self.kind != "tflite":
            return None
        for _ in range(20):
            self.tfl.predict(x, self.heads)
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.tfl.predict(x, self.heads)
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts) * 1000.0)


def load_eval_set(cfg: VerifyConfig, size: int, crop_frac: float) -> tuple[np.ndarray, list[Sample], dict[str, int]]:
    ds = read_dataset(cfg.data)
    samples = ds.samples
    if cfg.split != "all":
        samples = [s for s in samples if split_of(content_sha256(s.path)) == cfg.split]
    if cfg.limit and len(samples) > cfg.limit:
        # A seeded random subset: file order is sorted by label (UTKFace names start with the age), so a prefix is biased.
        pick = np.random.default_rng(0).choice(len(samples), size=cfg.limit, replace=False)
        samples = [samples[i] for i in sorted(pick)]
    xs, kept, bad = [], [], 0
    for s in samples:
        rgb = load_chip(s.path)
        if rgb is None:
            bad += 1
            log.warning("skipping unreadable image %s", s.path)
            continue
        xs.append(chip_to_input(rgb, size, crop_frac))
        kept.append(s)
    if not xs:
        raise ConversionError(f"no readable images in {cfg.data} for split {cfg.split!r}")
    skipped = dict(ds.skipped)
    if bad:
        skipped["unreadable image"] = bad
    return np.stack(xs), kept, skipped


def head_metrics(pred: dict[str, np.ndarray], samples: list[Sample]) -> dict[str, Any]:
    m: dict[str, Any] = {}
    truth = {"age": np.array([s.age_group for s in samples]), "gender": np.array([s.gender for s in samples]),
             "race": np.array([s.race for s in samples])}
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
                per_race[name] = {"n": int(sel.sum()),
                                  "acc": float((pred["gender"].argmax(-1)[sel] == truth["gender"][sel]).mean())}
        m["gender_acc_by_race"] = per_race
        accs = [v["acc"] for v in per_race.values() if v["n"] >= 30]
        m["gender_race_gap"] = float(max(accs) - min(accs)) if accs else None
    return m


def agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    out = {h: float((a[h].argmax(-1) == b[h].argmax(-1)).mean()) for h in CLASS_HEADS if h in a and h in b}
    if "age_years" in a and "age_years" in b:
        out["age_years_mean_abs_diff"] = float(np.abs(a["age_years"].reshape(-1) - b["age_years"].reshape(-1)).mean())
    return out


def verify(cfg: VerifyConfig) -> dict[str, Any]:
    """Compute the report (and write it when cfg.report is set). `report["passed"]` is the release gate."""
    from edge_agent.modelmeta import load_metadata

    fl, qt = Predictor(cfg.float_model), Predictor(cfg.quant_model)
    if qt.kind != "tflite":
        raise ConversionError(f"not a TFLite model (no TFL3 identifier): {cfg.quant_model}")
    if fl.size != qt.size:
        raise ConversionError(f"input sizes differ: float {fl.size}px, quantized {qt.size}px")
    meta = load_metadata(cfg.quant_model)
    crop_frac = cfg.crop_frac or float(meta.raw.get("crop", {}).get("training_chip_crop_frac", 0.8))
    xs, samples, skipped = load_eval_set(cfg, qt.size, crop_frac)
    log.info("verifying on %d images (split %s)", len(samples), cfg.split)
    pf, pq = fl.predict(xs), qt.predict(xs)
    mf, mq = head_metrics(pf, samples), head_metrics(pq, samples)
    drops = {h: round((mf[f"{h}_acc"] - mq[f"{h}_acc"]) * 100, 3) for h in CLASS_HEADS if f"{h}_acc" in mq}
    report = {
        "float_model": str(cfg.float_model), "quant_model": str(cfg.quant_model), "data": str(cfg.data),
        "split": cfg.split, "n_images": len(samples), "skipped": skipped,
        "quantization": meta.quantization, "model_version": meta.version, "model_sha256": meta.sha256,
        "float": mf, "quant": mq, "agreement": agreement(pf, pq), "drop_points": drops,
        "size_bytes": {"float": Path(cfg.float_model).stat().st_size, "quant": Path(cfg.quant_model).stat().st_size},
        "latency_ms_median_1thread": {"float": fl.latency_ms(xs[0], cfg.latency_runs),
                                      "quant": qt.latency_ms(xs[0], cfg.latency_runs)},
        "runtime": __import__("edge_agent.runtime", fromlist=["runtime_version"]).runtime_version(),
        "max_drop_points": cfg.max_drop,
    }
    report["passed"] = all(d <= cfg.max_drop for d in drops.values())
    if cfg.report:
        from conversion.report import write_report

        write_report(report, cfg.report)
    return report
