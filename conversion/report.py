"""Verification report files: report.json, summary.md, confusion matrices and per-race accuracy plots (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conversion.labels import AGE_GROUPS, GENDERS, RACES

_HEADS = {"age": AGE_GROUPS, "gender": GENDERS, "race": RACES}


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.2f}%"


def markdown(r: dict[str, Any]) -> str:
    f, q = r["float"], r["quant"]
    lines = [
        f"# Verification: {Path(r['quant_model']).name} ({r['quantization']}) vs {Path(r['float_model']).name}",
        "",
        f"{r['n_images']} images, split `{r['split']}` of `{r['data']}`. Gate: quantized may lose at most "
        f"{r['max_drop_points']} points per head → **{'PASSED' if r['passed'] else 'FAILED'}**.",
        "",
        "| measure | float | quantized | drop (points) | argmax agreement |",
        "|---|---|---|---|---|",
    ]
    for h in _HEADS:
        if f"{h}_acc" in q:
            lines.append(f"| {h} accuracy | {_pct(f.get(h + '_acc'))} | {_pct(q.get(h + '_acc'))} | "
                         f"{r['drop_points'].get(h, 0):.2f} | {_pct(r['agreement'].get(h))} |")
    if "age_one_off" in q:
        lines.append(f"| age group one-off | {_pct(f.get('age_one_off'))} | {_pct(q.get('age_one_off'))} | | |")
    if "age_mae" in q:
        lines.append(f"| age MAE (years) | {f.get('age_mae', 0):.2f} | {q.get('age_mae', 0):.2f} | | "
                     f"mean abs diff {r['agreement'].get('age_years_mean_abs_diff', 0):.2f} y |")
    if "gender_race_gap" in q and q["gender_race_gap"] is not None:
        lines.append(f"| gender gap best−worst race | {f['gender_race_gap'] * 100:.2f} pts | {q['gender_race_gap'] * 100:.2f} pts | | |")
    lines += ["", "**Gender accuracy by race group**", "", "| race | n | float | quantized |", "|---|---|---|---|"]
    for race, v in q.get("gender_acc_by_race", {}).items():
        fv = f.get("gender_acc_by_race", {}).get(race, {}).get("acc")
        lines.append(f"| {race} | {v['n']} | {_pct(fv)} | {_pct(v['acc'])} |")
    sz, lat = r["size_bytes"], r["latency_ms_median_1thread"]
    lines += ["", f"Size: float {sz['float'] / 1e6:.2f} MB, quantized {sz['quant'] / 1e6:.2f} MB. "
              f"Latency per face ({r['runtime']}, 1 thread, median): quantized "
              f"{lat['quant']:.3f} ms" + (f", float {lat['float']:.3f} ms" if lat.get("float") else "") + ".", ""]
    if r.get("skipped"):
        lines.append("Skipped inputs: " + ", ".join(f"{n} {k}" for k, n in r["skipped"].items()) + ".")
    return "\n".join(lines) + "\n"


def plots(r: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    for h, labels in _HEADS.items():
        if f"{h}_confusion" not in r["quant"]:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(4 + len(labels) * 1.2, 2.5 + len(labels) * 0.5))
        for ax, which in zip(axes, ("float", "quant")):
            cm = np.array(r[which][f"{h}_confusion"], float)
            norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(len(labels)), labels, fontsize=8)
            for i in range(len(labels)):
                for j in range(len(labels)):
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
            ax.set_title(f"{h} — {which} ({r[which][h + '_acc'] * 100:.1f}%)", fontsize=9)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
        fig.tight_layout()
        p = out / f"confusion_{h}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    by = r["quant"].get("gender_acc_by_race", {})
    if by:
        races = list(by)
        fig, ax = plt.subplots(figsize=(6, 3.2))
        x = np.arange(len(races))
        ax.bar(x - 0.2, [r["float"]["gender_acc_by_race"][k]["acc"] * 100 for k in races], 0.4, label="float")
        ax.bar(x + 0.2, [by[k]["acc"] * 100 for k in races], 0.4, label="quantized")
        ax.set_xticks(x, [f"{k}\n(n={by[k]['n']})" for k in races])
        ax.set_ylabel("gender accuracy %")
        ax.set_ylim(max(0, min(by[k]["acc"] for k in races) * 100 - 10), 100)
        ax.legend()
        ax.set_title("Gender accuracy by race group")
        fig.tight_layout()
        p = out / "gender_by_race.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def write_report(r: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(r, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(r))
    return [out / "report.json", out / "summary.md", *plots(r, out)]
