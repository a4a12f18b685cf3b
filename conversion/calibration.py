"""Probability calibration: expected calibration error, reliability bins, and a per-head temperature fit.

The agent's `unknown` thresholds and its per-visit averaging read the probabilities, so "p = 0.8" has to mean right
four times out of five. A single temperature per head (Guo et al., 2017) fixes most of a CNN's over-confidence
without changing any argmax. It is fitted on the validation split of the int8 model's own outputs and stored in
the model's metadata; the agent applies it (`edge_agent.classify.classifier.calibrated`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-6


def apply_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    """Row-wise softmax(log p / t): the same formula the agent uses."""
    p = np.power(np.maximum(probs.astype(np.float64), EPS), 1.0 / t)
    return p / p.sum(axis=-1, keepdims=True)


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.maximum(probs[np.arange(len(y)), y], EPS)).mean())


def fit_temperature(probs: np.ndarray, y: np.ndarray, lo: float = 0.1, hi: float = 10.0) -> float:
    """The temperature minimising validation NLL (golden-section search on log t; NLL is unimodal in t)."""
    ok = y >= 0
    p, y = probs[ok], y[ok]
    if len(y) == 0:
        return 1.0
    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(60):
        if nll(apply_temperature(p, np.exp(c)), y) < nll(apply_temperature(p, np.exp(d)), y):
            b = d
        else:
            a = c
        c, d = b - g * (b - a), a + g * (b - a)
    return float(np.exp((a + b) / 2))


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Confidence (max p) against accuracy in equal-width bins, and the expected calibration error."""
    ok = y >= 0
    p, y = probs[ok], y[ok]
    if len(y) == 0:
        return {"ece": None, "bins": []}
    conf = p.max(axis=-1)
    hit = (p.argmax(axis=-1) == y).astype(np.float64)
    edges = np.linspace(1.0 / p.shape[1], 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    out, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        acc, c = float(hit[m].mean()), float(conf[m].mean())
        ece += m.mean() * abs(acc - c)
        out.append(
            {"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int(m.sum()), "confidence": c, "accuracy": acc}
        )
    return {"ece": float(ece), "bins": out}
